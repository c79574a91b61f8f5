//! `mandate-attest` turns evidence from the platform an agent runs on into a
//! verified attestation. It owns the verification of each kind of evidence
//! and the trust material shipped for it: today AWS EC2 instance identity
//! documents ([`aws_iid`]), checked against AWS's regional certificates
//! embedded in the crate. OIDC/JWKS issuers (Kubernetes, GitHub Actions),
//! SPIFFE JWT-SVIDs and join tokens follow. It does not own trust-provider
//! configuration storage, binding rules or audit (the engine does), nor any
//! cryptographic primitive (those are `mandate-jose`'s), and it never reads
//! the system clock: callers pass the time in.

pub mod aws_iid;

mod asn1;

pub use aws_iid::AwsIidError;

/// Errors from verifying evidence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An AWS instance identity document was refused.
    #[error("aws instance identity: {0}")]
    AwsIid(#[from] AwsIidError),
}
