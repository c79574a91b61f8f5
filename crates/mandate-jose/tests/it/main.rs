//! Integration tests for `mandate-jose`: Wycheproof vectors, named attacks,
//! Kubernetes-style tokens and a property test over claim sets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod attacks;
mod kubernetes;
mod props;
mod support;
mod wycheproof;
