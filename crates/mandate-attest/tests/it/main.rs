//! Integration tests for `mandate-attest` with real AWS fixtures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod aws_iid;
mod props;
mod provider_props;
