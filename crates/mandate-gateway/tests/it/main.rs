//! The gateway over real loopback connections: a real store and token
//! service, a recording upstream, raw sockets for malformed requests.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

mod attacks;
mod coverage;
mod internal;
mod mcp;
mod paths;
mod secrets;
mod support;
