//! `mandate-jose` is the only Mandate crate that touches cryptography. It owns
//! digests, secure randomness, constant-time comparison of secrets, JSON Web
//! Keys ([`jwk`]), compact JWS signing and verification with an explicit
//! algorithm allow-list where the algorithm comes from the key, never from
//! the token ([`jws`]), JWT claim validation with time passed in ([`claims`],
//! [`jwt`]), and the RSA verifications attestation documents need ([`pkix`]).
//! Every primitive comes from aws-lc-rs, the project's one crypto backend. It
//! knows nothing about storage, HTTP, clocks or agents.

pub mod claims;
pub mod digest;
pub mod envelope;
pub mod jwk;
pub mod jws;
pub mod jwt;
pub mod pkix;
pub mod random;
pub mod secret;

mod error;
mod json;

pub use error::{ClaimsError, Error, JwsError, KeyError};
pub use secret::{ExposeSecret, SecretString, ct_eq};
