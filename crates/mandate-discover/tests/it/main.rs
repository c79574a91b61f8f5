//! Integration tests of mandate-discover: each finder over the corpus in
//! `tests/fixtures/discovery`, the walk's rules, masking in every output
//! format, precision and recall against `EXPECTED.json`, and SARIF schema
//! validation.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

mod corpus;
mod finders;
mod sarif;
mod support;
mod walk;
