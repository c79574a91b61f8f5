//! RSA public keys from X.509 SubjectPublicKeyInfo, for documents signed
//! outside JOSE: AWS EC2 instance identity documents, whose regional
//! certificates Mandate pins.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};

use crate::error::{Error, KeyError};

/// An RSA public key read from a DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaSpkiKey {
    spki: Vec<u8>,
}

impl RsaSpkiKey {
    /// Parses a DER SubjectPublicKeyInfo holding an RSA key of 1024 to 8192
    /// bits.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        sig::ParsedPublicKey::new(&sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, der)
            .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(Self { spki: der.to_vec() })
    }

    /// The DER SubjectPublicKeyInfo (equal bytes mean the same key).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature by a key of at least
    /// 2048 bits.
    pub fn verify_pkcs1_sha256(&self, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, &self.spki)
            .verify(message, signature)
            .map_err(|_| Error::BadSignature)
    }

    /// Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature by a key of 1024 bits
    /// or more.
    ///
    /// Only for AWS's base64 instance identity `signature`, which AWS still
    /// makes with RSA-1024 keys; everything else uses
    /// [`RsaSpkiKey::verify_pkcs1_sha256`].
    pub fn verify_pkcs1_sha256_legacy_1024(
        &self,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        UnparsedPublicKey::new(
            &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            &self.spki,
        )
        .verify(message, signature)
        .map_err(|_| Error::BadSignature)
    }
}
