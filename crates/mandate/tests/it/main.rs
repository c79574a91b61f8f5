//! End-to-end tests of the `mandate` binary: the server started as a user
//! would start it, driven by the CLI, on SQLite and on PostgreSQL.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod attestation;
mod gateway;
mod governance;
mod grants;
mod harness;
mod interop;
mod policy;
mod quickstart;
mod readme;
mod secrets;
mod standalone;
mod startup;
mod tokens;
