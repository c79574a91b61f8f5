//! The store conformance suite: every case runs against SQLite and, when
//! `MANDATE_TEST_POSTGRES_URL` is set, against a fresh PostgreSQL database.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod attestation;
mod conformance;
mod tokens;
