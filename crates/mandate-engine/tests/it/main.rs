//! Engine integration tests: attestation end to end over a real SQLite
//! store, with a fixed clock and (for OIDC) a test issuer on loopback.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod attacks;
mod claims;
mod grants;
mod providers;
mod support;
