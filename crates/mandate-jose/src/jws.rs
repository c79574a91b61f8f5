//! Compact JWS (RFC 7515): strict parsing and verification where the
//! algorithm comes from the key.
//!
//! Rules kept here:
//! - a token longer than the caller's limit is refused before any decoding;
//! - every part is strict unpadded base64url; the header is a JSON object with
//!   no duplicate member names;
//! - `alg: none`, every `HS*` algorithm and unknown algorithms are refused;
//! - the key's algorithm must be on the caller's allow-list, and the header's
//!   `alg` must merely equal it — the header never selects an algorithm;
//! - `jku`, `x5u`, `jwk` and `x5c` are read as plain data and never used to
//!   find or trust a key; `kid` is a map lookup in the caller's [`JwkSet`];
//! - `crit` is refused (no extension is understood).

use std::fmt;

use aws_lc_rs::signature::{self as sig, RsaParameters};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::error::JwsError;
use crate::json::{StrictJsonError, parse_object};
use crate::jwk::{JwkSet, VerifyingKey};

mod sign;

pub use sign::SigningKey;

/// Default limit on the length of a compact JWS, in bytes (16 KiB).
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;

/// A JWS signature algorithm Mandate can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256, signature `r‖s` (64 bytes).
    Es256,
    /// ECDSA P-384 with SHA-384, signature `r‖s` (96 bytes).
    Es384,
    /// Ed25519 (RFC 8037 `EdDSA`).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256 and MGF1-SHA-256.
    Ps256,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 7] = [
        Self::Es256,
        Self::Es384,
        Self::EdDsa,
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
    ];

    /// The JOSE name (`ES256`, `EdDSA`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
        }
    }

    /// The algorithm with this exact (case-sensitive) JOSE name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether this is an RSA algorithm.
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256)
    }

    pub(crate) fn rsa_params(self) -> Option<&'static RsaParameters> {
        match self {
            Self::Rs256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
            Self::Rs384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
            Self::Rs512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
            Self::Ps256 => Some(&sig::RSA_PSS_2048_8192_SHA256),
            Self::Es256 | Self::Es384 | Self::EdDsa => None,
        }
    }

    /// Classifies a header `alg` value: refused names get their own error.
    fn from_header(name: &str) -> Result<Self, JwsError> {
        if name.eq_ignore_ascii_case("none") {
            return Err(JwsError::AlgNone);
        }
        if name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS")) {
            return Err(JwsError::AlgHmac(name.to_owned()));
        }
        Self::from_name(name).ok_or_else(|| JwsError::AlgUnknown(name.to_owned()))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed JOSE header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<String>,
    members: Map<String, Value>,
}

impl Header {
    fn from_map(members: Map<String, Value>) -> Result<Self, JwsError> {
        let alg = match members.get("alg") {
            Some(Value::String(name)) => Algorithm::from_header(name)?,
            Some(_) => return Err(JwsError::Header("`alg` is not a string".to_owned())),
            None => return Err(JwsError::Header("missing `alg`".to_owned())),
        };
        if members.contains_key("crit") {
            return Err(JwsError::CritUnsupported);
        }
        let opt = |name: &str| match members.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(JwsError::Header(format!("`{name}` is not a string"))),
        };
        Ok(Self {
            alg,
            kid: opt("kid")?,
            typ: opt("typ")?,
            members,
        })
    }

    /// The header's `alg` (only ever compared with the key's algorithm).
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The `kid` member.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `typ` member.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// Any header member, as data (never used for trust).
    pub fn member(&self, name: &str) -> Option<&Value> {
        self.members.get(name)
    }

    /// Checks `typ` against `expected`: compared without regard to ASCII case,
    /// and with an `application/` prefix ignored on either side (RFC 7515
    /// section 4.1.9). A missing `typ` fails.
    pub fn check_typ(&self, expected: &str) -> Result<(), JwsError> {
        fn bare(t: &str) -> &str {
            match t.get(..12) {
                Some(p) if p.eq_ignore_ascii_case("application/") => t.get(12..).unwrap_or(""),
                _ => t,
            }
        }
        match self.typ() {
            Some(t) if bare(t).eq_ignore_ascii_case(bare(expected)) => Ok(()),
            found => Err(JwsError::Typ {
                expected: expected.to_owned(),
                found: found.map(str::to_owned),
            }),
        }
    }
}

/// A compact JWS that parsed but whose signature is not yet checked.
#[derive(Debug, Clone)]
pub struct UnverifiedJws<'a> {
    header: Header,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Parses a compact JWS of at most `max_len` bytes. Nothing is trusted yet.
pub fn decode(token: &str, max_len: usize) -> Result<UnverifiedJws<'_>, JwsError> {
    if token.len() > max_len {
        return Err(JwsError::TooLarge {
            len: token.len(),
            max: max_len,
        });
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header_bytes = b64(h, "header")?;
    let members = parse_object(&header_bytes).map_err(|e| match e {
        StrictJsonError::Duplicate(name) => JwsError::DuplicateMember(name),
        StrictJsonError::Syntax(msg) => JwsError::Header(msg),
    })?;
    let header = Header::from_map(members)?;
    let payload = b64(p, "payload")?;
    let signature = b64(s, "signature")?;
    // h and p are ASCII base64url, so this slice ends on a char boundary.
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(JwsError::Malformed)?;
    Ok(UnverifiedJws {
        header,
        signing_input,
        payload,
        signature,
    })
}

/// Fuzzing entry point: [`decode`] over arbitrary bytes with the default
/// limit. Never panics; the result says whether the bytes parsed.
pub fn fuzz_decode(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|s| decode(s, DEFAULT_MAX_TOKEN_LEN).is_ok())
}

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwsError::Base64(what))
}

impl<'a> UnverifiedJws<'a> {
    /// The parsed header (untrusted until verified).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The bytes the signature covers: `BASE64URL(header) '.' BASE64URL(payload)`.
    pub fn signing_input(&self) -> &'a str {
        self.signing_input
    }

    /// The decoded payload, NOT verified: for inspection and benchmarks only.
    pub fn payload_unverified(&self) -> &[u8] {
        &self.payload
    }

    /// The decoded signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Verifies with one key. The key's algorithm must be in `allowed`, and
    /// the header's `alg` must equal it. Returns the payload.
    pub fn verify_with(
        self,
        key: &VerifyingKey,
        allowed: &[Algorithm],
    ) -> Result<Verified, JwsError> {
        let alg = key.algorithm();
        if !allowed.contains(&alg) {
            return Err(JwsError::AlgNotAllowed(alg));
        }
        if self.header.alg != alg {
            return Err(JwsError::AlgMismatch {
                header: self.header.alg,
                key: alg,
            });
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)?;
        Ok(Verified {
            header: self.header,
            payload: self.payload,
        })
    }

    /// Finds the key by the header's `kid` in `keys` and verifies with it
    /// (see [`UnverifiedJws::verify_with`]).
    pub fn verify(self, keys: &JwkSet, allowed: &[Algorithm]) -> Result<Verified, JwsError> {
        let jwk = keys.find(self.header.kid())?;
        self.verify_with(jwk.verifying_key(), allowed)
    }
}

/// A JWS whose signature verified.
#[derive(Debug, Clone)]
pub struct Verified {
    header: Header,
    payload: Vec<u8>,
}

impl Verified {
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The verified payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Splits into header and payload.
    pub fn into_parts(self) -> (Header, Vec<u8>) {
        (self.header, self.payload)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests;
