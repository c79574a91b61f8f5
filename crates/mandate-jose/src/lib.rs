//! `mandate-jose` is the only Mandate crate that touches cryptography. It owns
//! digests, secure randomness, constant-time comparison of secrets, and (as the
//! token service grows) JWS signing and verification with an explicit algorithm
//! allow-list, JWK/JWKS handling and AES-256-GCM envelope encryption of secrets
//! at rest. Every primitive comes from aws-lc-rs, the project's one crypto
//! backend. It knows nothing about storage, HTTP or agents.

pub mod digest;
pub mod random;
pub mod secret;

pub use secret::{SecretString, ct_eq};

/// Errors from the cryptographic layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system's random generator failed.
    #[error("secure random generator unavailable")]
    Random,
}
