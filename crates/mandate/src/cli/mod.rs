//! The command-line client: one module per command group.

pub mod admin_token;
pub mod agent;
pub mod attest;
pub mod audit;
pub mod binding;
pub mod dev;
pub mod discover;
pub mod findings;
pub mod join_token;
pub mod keys;
pub mod policy;
pub mod provider;
pub mod report;
pub mod resource;
pub mod review;
pub mod secret;
pub mod token;

use serde_json::Value;

use crate::Conn;
use crate::client::{Client, ClientError};

/// A client for the server and token named by `conn`.
pub fn connect(conn: &Conn) -> Result<Client, ClientError> {
    let token = crate::client::resolve_token(conn.token.clone(), conn.token_file.clone())?;
    Client::new(&conn.url, token)
}

/// Prints pretty JSON.
pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Percent-encodes a path segment so a name cannot change the path.
pub fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_cannot_traverse() {
        assert_eq!(path_segment("../x"), "..%2Fx");
        assert_eq!(path_segment("a b"), "a%20b");
    }
}
