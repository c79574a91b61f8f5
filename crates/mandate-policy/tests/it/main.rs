//! Integration tests of mandate-policy: the example policies and their cases, the
//! decision rule, policy compilation diagnostics, and properties of the rule.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]

mod engine;
mod examples;
mod policies;
mod props;
mod support;
