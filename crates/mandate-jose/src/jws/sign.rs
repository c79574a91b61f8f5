//! Signing compact JWS: ES256, ES384 and EdDSA for Mandate's own tokens, and
//! RSA (from PKCS#1 or PKCS#8 PEM) so tests can act as foreign issuers.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;
use zeroize::Zeroizing;

use super::Algorithm;
use crate::error::{Error, KeyError};
use crate::jwk::{Curve, Jwk, PublicKey, VerifyingKey};

/// A private key bound to one algorithm, with an optional `kid`.
pub struct SigningKey {
    algorithm: Algorithm,
    kid: Option<String>,
    inner: Inner,
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn ecdsa_signing(alg: Algorithm) -> Option<&'static sig::EcdsaSigningAlgorithm> {
    match alg {
        Algorithm::Es256 => Some(&sig::ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::Es384 => Some(&sig::ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    }
}

fn rejected(e: impl std::fmt::Display) -> KeyError {
    KeyError::Rejected(e.to_string())
}

impl SigningKey {
    /// Generates a new key for `ES256`, `ES384` or `EdDSA`.
    pub fn generate(algorithm: Algorithm) -> Result<Self, Error> {
        let inner = match algorithm {
            Algorithm::EdDsa => {
                Inner::Ed25519(Ed25519KeyPair::generate().map_err(|_| Error::Random)?)
            }
            alg => match ecdsa_signing(alg) {
                Some(a) => Inner::Ecdsa(EcdsaKeyPair::generate(a).map_err(|_| Error::Random)?),
                None => return Err(KeyError::CannotSign(alg).into()),
            },
        };
        Ok(Self {
            algorithm,
            kid: None,
            inner,
        })
    }

    /// Loads an unencrypted PKCS#8 (DER) private key for `algorithm`.
    pub fn from_pkcs8_der(algorithm: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let inner = match algorithm {
            Algorithm::EdDsa => {
                Inner::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?)
            }
            alg if alg.is_rsa() => Inner::Rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected)?),
            alg => {
                let a = ecdsa_signing(alg).ok_or(KeyError::CannotSign(alg))?;
                Inner::Ecdsa(EcdsaKeyPair::from_private_key_der(a, der).map_err(rejected)?)
            }
        };
        Ok(Self {
            algorithm,
            kid: None,
            inner,
        })
    }

    /// Loads the first private key of a PEM document for `algorithm`:
    /// `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1) or `RSA PRIVATE KEY`
    /// (PKCS#1). Other blocks (`EC PARAMETERS`, certificates) are skipped.
    pub fn from_pem(algorithm: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| KeyError::Pem(e.to_string()))?;
        let wrong_kind = || KeyError::Pem(format!("key kind does not fit `{algorithm}`"));
        match der {
            PrivateKeyDer::Pkcs8(k) => Self::from_pkcs8_der(algorithm, k.secret_pkcs8_der()),
            PrivateKeyDer::Sec1(k) => {
                let a = ecdsa_signing(algorithm).ok_or_else(wrong_kind)?;
                let pair =
                    EcdsaKeyPair::from_private_key_der(a, k.secret_sec1_der()).map_err(rejected)?;
                Ok(Self {
                    algorithm,
                    kid: None,
                    inner: Inner::Ecdsa(pair),
                })
            }
            PrivateKeyDer::Pkcs1(k) if algorithm.is_rsa() => Ok(Self {
                algorithm,
                kid: None,
                inner: Inner::Rsa(RsaKeyPair::from_der(k.secret_pkcs1_der()).map_err(rejected)?),
            }),
            _ => Err(wrong_kind()),
        }
    }

    /// Sets the `kid` written into headers and the public JWK.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The `kid`, if set.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The private key as PKCS#8 DER (ECDSA and Ed25519 keys only), for
    /// storing it encrypted.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = match &self.inner {
            Inner::Ecdsa(k) => k.to_pkcs8v1().map_err(rejected)?,
            Inner::Ed25519(k) => k.to_pkcs8v1().map_err(rejected)?,
            Inner::Rsa(_) => return Err(KeyError::CannotSign(self.algorithm)),
        };
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// The matching verification key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let public = match &self.inner {
            Inner::Ecdsa(k) => {
                let point = k.public_key().as_ref();
                let curve = match self.algorithm {
                    Algorithm::Es384 => Curve::P384,
                    _ => Curve::P256,
                };
                let len = curve.coordinate_len();
                let (x, y) = point
                    .get(1..)
                    .filter(|c| c.len() == 2 * len)
                    .map(|c| c.split_at(len))
                    .ok_or_else(|| KeyError::Rejected("unexpected public point".to_owned()))?;
                PublicKey::Ec {
                    curve,
                    x: x.to_vec(),
                    y: y.to_vec(),
                }
            }
            Inner::Ed25519(k) => PublicKey::Ed25519 {
                x: k.public_key().as_ref().to_vec(),
            },
            Inner::Rsa(k) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(k.public_key());
                PublicKey::Rsa { n: c.n, e: c.e }
            }
        };
        VerifyingKey::new(public, self.algorithm)
    }

    /// The public key as a DER SubjectPublicKeyInfo.
    pub fn public_spki_der(&self) -> Result<Vec<u8>, KeyError> {
        use aws_lc_rs::encoding::{AsDer as _, PublicKeyX509Der};
        let der: Result<PublicKeyX509Der<'static>, _> = match &self.inner {
            Inner::Ecdsa(k) => k.public_key().as_der(),
            Inner::Ed25519(k) => k.public_key().as_der(),
            Inner::Rsa(k) => k.public_key().as_der(),
        };
        der.map(|d| d.as_ref().to_vec()).map_err(rejected)
    }

    /// The public JWK, with `kid` (or, without one, the RFC 7638 thumbprint),
    /// `use: sig` and `alg`.
    pub fn public_jwk(&self) -> Result<Jwk, KeyError> {
        let key = self.verifying_key()?;
        let kid = self
            .kid
            .clone()
            .unwrap_or_else(|| key.public_key().thumbprint());
        Ok(Jwk::new(key, Some(kid)))
    }

    /// Signs `message` with the key's algorithm (ECDSA as fixed `r‖s`).
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Ecdsa(k) => Ok(k
                .sign(&rng, message)
                .map_err(|_| Error::Signing)?
                .as_ref()
                .to_vec()),
            Inner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Inner::Rsa(k) => {
                let padding: &'static dyn sig::RsaEncoding = match self.algorithm {
                    Algorithm::Rs256 => &sig::RSA_PKCS1_SHA256,
                    Algorithm::Rs384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::Rs512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::Ps256 => &sig::RSA_PSS_SHA256,
                    other => return Err(KeyError::CannotSign(other).into()),
                };
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(padding, &rng, message, &mut out)
                    .map_err(|_| Error::Signing)?;
                Ok(out)
            }
        }
    }

    /// Signs `payload` as a compact JWS with header
    /// `{"alg": ..., "kid": ..., "typ": ...}` (`kid` and `typ` when set).
    pub fn sign(&self, typ: Option<&str>, payload: &[u8]) -> Result<String, Error> {
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), self.algorithm.name().into());
        if let Some(kid) = &self.kid {
            header.insert("kid".into(), kid.clone().into());
        }
        if let Some(typ) = typ {
            header.insert("typ".into(), typ.into());
        }
        let header = serde_json::to_vec(&header).map_err(|_| Error::Signing)?;
        self.sign_with_header(&header, payload)
    }

    /// Signs `payload` under exactly the header bytes given, without checking
    /// them. For issuers that need extra header members, and for tests that
    /// forge hostile headers.
    pub fn sign_with_header(&self, header_json: &[u8], payload: &[u8]) -> Result<String, Error> {
        let mut token = URL_SAFE_NO_PAD.encode(header_json);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let signature = self.sign_bytes(token.as_bytes())?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }
}
