//! `mandate-attest` turns evidence from the platform an agent runs on into a
//! verified attestation. It owns the verification of each kind of evidence
//! and the trust material shipped for it: AWS EC2 instance identity documents
//! ([`aws_iid`]) checked against AWS's regional certificates embedded in the
//! crate; OIDC issuers ([`oidc`]) with the Kubernetes, GitHub Actions and
//! GitLab CI presets ([`presets`]); SPIFFE JWT-SVIDs ([`spiffe`]); one-time
//! join tokens ([`join_token`]). Keys are fetched through one SSRF-guarded
//! client ([`fetch`]) and cached per provider ([`jwks_cache`]). Binding rules
//! ([`binding`]) decide which agent an attestation is.
//!
//! It does not own trust-provider storage, shadow agents or audit (the
//! engine does), nor any cryptographic primitive (those are
//! `mandate-jose`'s), and it never reads the system clock: callers pass the
//! time in.

pub mod aws_iid;
pub mod binding;
pub mod fetch;
pub mod join_token;
pub mod jwks_cache;
pub mod oidc;
pub mod presets;
pub mod provider;
pub mod spiffe;

mod asn1;

pub use aws_iid::AwsIidError;
pub use fetch::{FetchError, Fetcher};
pub use jwks_cache::KeysError;
pub use provider::{Attestation, Provider, ProviderSpec};

/// Errors from verifying evidence. [`Error::code`] gives each a stable,
/// machine-readable name for audit events and API answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An AWS instance identity document was refused.
    #[error("aws instance identity: {0}")]
    AwsIid(#[from] AwsIidError),
    /// A JWT was refused by the verification core.
    #[error("{0}")]
    Token(mandate_jose::Error),
    /// The provider's key set is unavailable.
    #[error("keys unavailable: {0}")]
    Keys(#[from] KeysError),
    /// A legacy, non-expiring Kubernetes service-account token.
    #[error(
        "legacy non-expiring kubernetes service-account token refused: use a projected service-account token"
    )]
    LegacyServiceAccountToken,
    /// A claim the provider requires is missing.
    #[error("missing claim `{0}`")]
    MissingClaim(String),
    /// A required claim has another value.
    #[error("claim `{claim}` is `{found}`, expected `{expected}`")]
    ClaimMismatch {
        /// The claim.
        claim: String,
        /// The required value.
        expected: String,
        /// The token's value.
        found: String,
    },
    /// A JWT-SVID's type or subject is not acceptable.
    #[error("jwt-svid refused: {0}")]
    Spiffe(String),
    /// The evidence exceeds [`provider::MAX_EVIDENCE_LEN`].
    #[error("evidence of {0} bytes exceeds the {max}-byte limit", max = provider::MAX_EVIDENCE_LEN)]
    EvidenceTooLarge(usize),
    /// The evidence is not of the provider's form.
    #[error("malformed evidence: {0}")]
    Evidence(String),
    /// The provider's configuration is invalid.
    #[error("invalid provider configuration: {0}")]
    Config(String),
}

impl Error {
    /// A stable code for the reason, e.g. `alg_none`, `expired`, `bad_signature`.
    pub fn code(&self) -> &'static str {
        use mandate_jose::{ClaimsError as C, Error as J, JwsError as W};
        match self {
            Error::AwsIid(e) => match e {
                AwsIidError::BadSignature
                | AwsIidError::DigestMismatch
                | AwsIidError::UnknownSigner => "bad_signature",
                AwsIidError::TooOld { .. } => "expired",
                AwsIidError::FromTheFuture { .. } => "not_yet_valid",
                AwsIidError::AccountNotAllowed(_) | AwsIidError::RegionNotAllowed(_) => {
                    "not_allowed"
                }
                AwsIidError::RegionMismatch(_) | AwsIidError::UnknownRegion(_) => "wrong_region",
                _ => "malformed_evidence",
            },
            Error::Token(J::Jws(w)) => match w {
                W::AlgNone => "alg_none",
                W::AlgHmac(_) => "alg_hmac",
                W::AlgUnknown(_) | W::AlgNotAllowed(_) | W::AlgMismatch { .. } => "alg_not_allowed",
                W::KidUnknown(_) | W::KidMissing => "unknown_key",
                W::BadSignature => "bad_signature",
                W::TooLarge { .. } => "too_large",
                _ => "malformed_token",
            },
            Error::Token(J::Claims(c)) => match c {
                C::Expired { .. } => "expired",
                C::NotYetValid { .. } => "not_yet_valid",
                C::IssuedInFuture { .. } => "issued_in_future",
                C::Issuer(_) => "wrong_issuer",
                C::Audience => "wrong_audience",
                C::Missing("aud") => "wrong_audience",
                C::Missing(_) => "missing_claim",
                C::NotInteger(_) | C::WrongType(_) => "malformed_claims",
                C::DuplicateMember(_) | C::Json(_) => "malformed_claims",
                _ => "claims_refused",
            },
            Error::Token(_) => "malformed_token",
            Error::Keys(KeysError::Fetch(FetchError::PrivateTarget { .. })) => "ssrf_refused",
            Error::Keys(KeysError::Fetch(FetchError::Scheme(_))) => "ssrf_refused",
            Error::Keys(_) => "keys_unavailable",
            Error::LegacyServiceAccountToken => "legacy_token",
            Error::MissingClaim(_) => "missing_claim",
            Error::ClaimMismatch { .. } => "claim_mismatch",
            Error::Spiffe(_) => "bad_spiffe_id",
            Error::EvidenceTooLarge(_) => "too_large",
            Error::Evidence(_) => "malformed_evidence",
            Error::Config(_) => "provider_misconfigured",
        }
    }
}
