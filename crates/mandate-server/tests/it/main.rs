//! HTTP tests of the admin API over real loopback connections.

#![expect(clippy::unwrap_used, reason = "tests")]

mod attest_api;
mod bad_input;
mod openapi;
mod support;
