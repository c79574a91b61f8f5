//! JSON Web Keys (RFC 7517) as verification keys: RSA (`n`/`e`), EC P-256 and
//! P-384 (`x`/`y`) and OKP Ed25519 (`x`), parsed once into aws-lc-rs keys.
//!
//! Each key has exactly one algorithm ([`Jwk::algorithm`]): its `alg` member
//! if present (checked against the key type), otherwise the only algorithm its
//! curve allows, and `RS256` for an RSA key without `alg` (the OpenID Connect
//! default). A JWS header never chooses the algorithm; see [`crate::jws`].

use std::collections::HashMap;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Map, Value};

use crate::digest::sha256;
use crate::error::{JwsError, KeyError};
use crate::json::{StrictJsonError, parse_object};
use crate::jws::Algorithm;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Members that only a private JWK carries.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// An elliptic curve of an `EC` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (`ES256`).
    P256,
    /// NIST P-384 (`ES384`).
    P384,
}

impl Curve {
    /// The JWK `crv` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    /// Length in bytes of one coordinate.
    pub fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
}

/// The public numbers of a key, as carried in a JWK.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// EC point coordinates, each exactly the curve's coordinate length.
    Ec {
        /// Curve.
        curve: Curve,
        /// X coordinate.
        x: Vec<u8>,
        /// Y coordinate.
        y: Vec<u8>,
    },
    /// Ed25519 public key (32 bytes).
    Ed25519 {
        /// The encoded point.
        x: Vec<u8>,
    },
}

impl PublicKey {
    /// Reads a DER SubjectPublicKeyInfo: RSA, EC P-256 or P-384 (uncompressed
    /// point), or Ed25519.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        // The fixed DER prefixes of the EC and Ed25519 SubjectPublicKeyInfo
        // forms (algorithm identifiers and BIT STRING header).
        const P256: &[u8] = &[
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
        ];
        const P384: &[u8] = &[
            0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04,
        ];
        const ED25519: &[u8] = &[
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        for (prefix, curve) in [(P256, Curve::P256), (P384, Curve::P384)] {
            if let Some(point) = der.strip_prefix(prefix)
                && point.len() == 2 * curve.coordinate_len()
            {
                let (x, y) = point.split_at(curve.coordinate_len());
                return Ok(Self::Ec {
                    curve,
                    x: x.to_vec(),
                    y: y.to_vec(),
                });
            }
        }
        if let Some(x) = der.strip_prefix(ED25519)
            && x.len() == sig::ED25519_PUBLIC_KEY_LEN
        {
            return Ok(Self::Ed25519 { x: x.to_vec() });
        }
        let rsa = sig::RsaSubjectPublicKey::from_der(der)
            .map_err(|e| KeyError::Rejected(e.to_string()))?;
        let c = RsaPublicKeyComponents::<Vec<u8>>::from(&rsa);
        Ok(Self::Rsa { n: c.n, e: c.e })
    }

    /// Reads the first `PUBLIC KEY` block of a PEM document.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem)
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        Self::from_spki_der(&der)
    }

    /// The algorithm used when the JWK has no `alg` member.
    fn default_algorithm(&self) -> Algorithm {
        match self {
            Self::Rsa { .. } => Algorithm::Rs256,
            Self::Ec {
                curve: Curve::P256, ..
            } => Algorithm::Es256,
            Self::Ec {
                curve: Curve::P384, ..
            } => Algorithm::Es384,
            Self::Ed25519 { .. } => Algorithm::EdDsa,
        }
    }

    fn kty_label(&self) -> String {
        match self {
            Self::Rsa { .. } => "RSA".to_owned(),
            Self::Ec { curve, .. } => format!("EC {}", curve.name()),
            Self::Ed25519 { .. } => "OKP Ed25519".to_owned(),
        }
    }

    /// RFC 7638 JWK thumbprint: unpadded base64url of SHA-256 over the
    /// required members in lexicographic order, without whitespace.
    pub fn thumbprint(&self) -> String {
        let b = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
        let canonical = match self {
            Self::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b(e), b(n)),
            Self::Ec { curve, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.name(),
                b(x),
                b(y)
            ),
            Self::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b(x)),
        };
        URL_SAFE_NO_PAD.encode(sha256(&[canonical.as_bytes()]))
    }

    /// The public members of the JWK (`kty`, `crv`, `n`, `e`, `x`, `y`).
    fn write_members(&self, out: &mut Map<String, Value>) {
        let b = |v: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(v));
        match self {
            Self::Rsa { n, e } => {
                out.insert("kty".into(), "RSA".into());
                out.insert("n".into(), b(n));
                out.insert("e".into(), b(e));
            }
            Self::Ec { curve, x, y } => {
                out.insert("kty".into(), "EC".into());
                out.insert("crv".into(), curve.name().into());
                out.insert("x".into(), b(x));
                out.insert("y".into(), b(y));
            }
            Self::Ed25519 { x } => {
                out.insert("kty".into(), "OKP".into());
                out.insert("crv".into(), "Ed25519".into());
                out.insert("x".into(), b(x));
            }
        }
    }
}

/// A public key bound to exactly one signature algorithm, parsed and ready
/// to verify.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    algorithm: Algorithm,
    public: PublicKey,
    parsed: ParsedPublicKey,
}

impl VerifyingKey {
    /// Checks `public` against `algorithm` and parses it.
    ///
    /// RSA moduli under [`MIN_RSA_BITS`] and exponents that are even or below
    /// 65537 are refused; EC points must be on the curve.
    pub fn new(public: PublicKey, algorithm: Algorithm) -> Result<Self, KeyError> {
        let mismatch = || KeyError::AlgorithmMismatch {
            alg: algorithm.name().to_owned(),
            kty: public.kty_label(),
        };
        let parsed = match (&public, algorithm) {
            (PublicKey::Rsa { n, e }, alg) if alg.is_rsa() => {
                check_rsa(n, e)?;
                let params = alg.rsa_params().ok_or_else(mismatch)?;
                RsaPublicKeyComponents { n, e }
                    .to_parsed_public_key(params)
                    .map_err(|e| KeyError::Rejected(e.to_string()))?
            }
            (PublicKey::Ec { curve, x, y }, alg) => {
                let verifier = match (curve, alg) {
                    (Curve::P256, Algorithm::Es256) => &sig::ECDSA_P256_SHA256_FIXED,
                    (Curve::P384, Algorithm::Es384) => &sig::ECDSA_P384_SHA384_FIXED,
                    _ => return Err(mismatch()),
                };
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                ParsedPublicKey::new(verifier, point)
                    .map_err(|e| KeyError::Rejected(e.to_string()))?
            }
            (PublicKey::Ed25519 { x }, Algorithm::EdDsa) => ParsedPublicKey::new(&sig::ED25519, x)
                .map_err(|e| KeyError::Rejected(e.to_string()))?,
            _ => return Err(mismatch()),
        };
        Ok(Self {
            algorithm,
            public,
            parsed,
        })
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key's public numbers.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Verifies `signature` over `message` with the key's algorithm.
    ///
    /// ECDSA signatures are the fixed-length `r‖s` form JWS uses.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JwsError> {
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| JwsError::BadSignature)
    }
}

fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), KeyError> {
    let bits = bit_len(n);
    if bits < MIN_RSA_BITS {
        return Err(KeyError::RsaTooSmall(bits));
    }
    // e is odd and >= 65537 = 0x010001: at least three significant bytes,
    // or exactly 0x01 0x00 0x01 and above.
    let odd = e.last().is_some_and(|b| b & 1 == 1);
    let big_enough = e.len() > 3 || (e.len() == 3 && e >= [0x01, 0x00, 0x01].as_slice());
    if !odd || !big_enough || e.len() > 8 {
        return Err(KeyError::RsaExponent);
    }
    Ok(())
}

fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

/// A parsed JSON Web Key: the verification key plus the metadata members a
/// key set keeps (`kid`, `use`, `alg`).
#[derive(Debug, Clone)]
pub struct Jwk {
    kid: Option<String>,
    key_use: Option<String>,
    alg: Option<Algorithm>,
    key: VerifyingKey,
}

impl Jwk {
    /// Parses one JWK from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyError> {
        Self::from_map(&parse_object(bytes).map_err(key_json_error)?)
    }

    /// Parses one JWK from an already parsed JSON object.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, KeyError> {
        if PRIVATE_MEMBERS.iter().any(|m| map.contains_key(*m)) {
            return Err(KeyError::PrivateMaterial);
        }
        let kty = str_member(map, "kty")?;
        let public = match kty {
            "RSA" => PublicKey::Rsa {
                n: strip_leading_zeros(b64_member(map, "n")?),
                e: strip_leading_zeros(b64_member(map, "e")?),
            },
            "EC" => {
                let curve = match str_member(map, "crv")? {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    other => return Err(KeyError::UnsupportedCurve(other.to_owned())),
                };
                let x = b64_member(map, "x")?;
                let y = b64_member(map, "y")?;
                if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
                    return Err(KeyError::Rejected(format!(
                        "{} coordinates must be {} bytes",
                        curve.name(),
                        curve.coordinate_len()
                    )));
                }
                PublicKey::Ec { curve, x, y }
            }
            "OKP" => match str_member(map, "crv")? {
                "Ed25519" => {
                    let x = b64_member(map, "x")?;
                    if x.len() != sig::ED25519_PUBLIC_KEY_LEN {
                        return Err(KeyError::Rejected(
                            "Ed25519 keys must be 32 bytes".to_owned(),
                        ));
                    }
                    PublicKey::Ed25519 { x }
                }
                other => return Err(KeyError::UnsupportedCurve(other.to_owned())),
            },
            other => return Err(KeyError::UnsupportedKeyType(other.to_owned())),
        };
        let key_use = opt_str_member(map, "use")?;
        if let Some(u) = key_use.as_deref()
            && u != "sig"
        {
            return Err(KeyError::NotForSignatures(u.to_owned()));
        }
        let alg = match opt_str_member(map, "alg")? {
            None => None,
            Some(name) => {
                Some(Algorithm::from_name(&name).ok_or(KeyError::UnsupportedAlgorithm(name))?)
            }
        };
        let algorithm = alg.unwrap_or_else(|| public.default_algorithm());
        Ok(Self {
            kid: opt_str_member(map, "kid")?,
            key_use,
            alg,
            key: VerifyingKey::new(public, algorithm)?,
        })
    }

    /// Builds a JWK from a verification key and optional `kid`; `alg` and
    /// `use` are set (`use` to `sig`).
    pub fn new(key: VerifyingKey, kid: Option<String>) -> Self {
        Self {
            kid,
            key_use: Some("sig".to_owned()),
            alg: Some(key.algorithm()),
            key,
        }
    }

    /// The `kid` member.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `use` member, if present (always `sig` once parsed).
    pub fn key_use(&self) -> Option<&str> {
        self.key_use.as_deref()
    }

    /// The `alg` member, if present.
    pub fn declared_algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The algorithm this key verifies (see the module documentation).
    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    /// The verification key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// RFC 7638 thumbprint of the public key.
    pub fn thumbprint(&self) -> String {
        self.key.public_key().thumbprint()
    }

    /// The public JWK as a JSON object, with `kid`, `use` and `alg` when set.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        self.key.public_key().write_members(&mut map);
        if let Some(kid) = &self.kid {
            map.insert("kid".into(), kid.clone().into());
        }
        if let Some(u) = &self.key_use {
            map.insert("use".into(), u.clone().into());
        }
        if let Some(alg) = self.alg {
            map.insert("alg".into(), alg.name().into());
        }
        Value::Object(map)
    }
}

/// A JWK Set whose keys are found by `kid` (a plain map lookup).
///
/// Every key of a set of more than one key must have a `kid`, and no two keys
/// may share one.
#[derive(Debug, Clone)]
pub struct JwkSet {
    keys: Vec<Jwk>,
    // INVARIANT (kid-index): maps each key's kid to its index in `keys`.
    by_kid: HashMap<String, usize>,
}

impl JwkSet {
    /// Parses a JWKS document (`{"keys": [...]}`).
    ///
    /// Entries whose `use` is present and is not `sig` (encryption keys some
    /// issuers publish beside their signing keys) are skipped; every other
    /// entry must parse, so an unknown key type or curve fails the whole set.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyError> {
        let map = parse_object(bytes).map_err(key_json_error)?;
        let Some(Value::Array(entries)) = map.get("keys") else {
            return Err(KeyError::NoKeys);
        };
        let mut keys = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Object(m) = entry else {
                return Err(KeyError::Json("key set entry is not an object".to_owned()));
            };
            match m.get("use") {
                Some(Value::String(u)) if u != "sig" => continue,
                _ => keys.push(Jwk::from_map(m)?),
            }
        }
        Self::from_keys(keys)
    }

    /// Builds a set from keys, checking the `kid` rules.
    pub fn from_keys(keys: Vec<Jwk>) -> Result<Self, KeyError> {
        let mut by_kid = HashMap::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            match key.kid() {
                Some(kid) if by_kid.insert(kid.to_owned(), i).is_some() => {
                    return Err(KeyError::DuplicateKid(kid.to_owned()));
                }
                None if keys.len() > 1 => return Err(KeyError::MissingKid(i)),
                Some(_) | None => {}
            }
        }
        Ok(Self { keys, by_kid })
    }

    /// Finds the key for a JWS header's `kid`.
    ///
    /// Without a `kid`, only a set of exactly one key answers.
    pub fn find(&self, kid: Option<&str>) -> Result<&Jwk, JwsError> {
        match kid {
            Some(kid) => self
                .by_kid
                .get(kid)
                .and_then(|&i| self.keys.get(i))
                .ok_or_else(|| JwsError::KidUnknown(kid.to_owned())),
            None => match self.keys.as_slice() {
                [only] => Ok(only),
                _ => Err(JwsError::KidMissing),
            },
        }
    }

    /// The key with this `kid`, if any.
    pub fn get(&self, kid: &str) -> Option<&Jwk> {
        self.by_kid.get(kid).and_then(|&i| self.keys.get(i))
    }

    /// The keys in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The set as a JWKS JSON document.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "keys": self.keys.iter().map(Jwk::to_json).collect::<Vec<_>>() })
    }
}

fn key_json_error(e: StrictJsonError) -> KeyError {
    match e {
        StrictJsonError::Duplicate(name) => KeyError::DuplicateMember(name),
        StrictJsonError::Syntax(msg) => KeyError::Json(msg),
    }
}

fn str_member<'a>(map: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, KeyError> {
    map.get(name)
        .and_then(Value::as_str)
        .ok_or(KeyError::MissingMember(name))
}

fn opt_str_member(
    map: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, KeyError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(KeyError::MissingMember(name)),
    }
}

fn b64_member(map: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, KeyError> {
    URL_SAFE_NO_PAD
        .decode(str_member(map, name)?)
        .map_err(|_| KeyError::Base64(name))
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    v.drain(..zeros);
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests;
