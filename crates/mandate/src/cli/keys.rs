//! `mandate keys ...`: list the token signing keys and rotate them.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Conn;
use crate::cli::{connect, print_json};
use crate::client::{ClientError, field, print_table};

/// Signing key commands.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// List signing keys with their state (next, active, retired, expired).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Publish a new key; it starts signing after the JWKS cache time.
    Rotate {
        /// `ES256` (default) or `EdDSA`.
        #[arg(long)]
        alg: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a keys command.
pub async fn run(cmd: KeysCommand, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    match cmd {
        KeysCommand::List { json } => {
            let v = c.call(Method::GET, "/admin/v1/keys", None).await?;
            let items = crate::client::items(&v);
            if json {
                print_json(&Value::Array(items));
            } else {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|k| {
                        vec![
                            field(k, "kid"),
                            field(k, "alg"),
                            field(k, "state"),
                            field(k, "created_at"),
                            field(k, "activate_after"),
                            field(k, "retire_after"),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "KID",
                        "ALG",
                        "STATE",
                        "CREATED",
                        "SIGNS FROM",
                        "UNPUBLISHED AT",
                    ],
                    &rows,
                );
            }
        }
        KeysCommand::Rotate { alg, json } => {
            let body = json!({ "alg": alg });
            let v = c
                .call(Method::POST, "/admin/v1/keys/rotate", Some(&body))
                .await?;
            if json {
                print_json(&v);
            } else {
                println!(
                    "published key {} ({}); it starts signing at {}",
                    field(&v, "kid"),
                    field(&v, "alg"),
                    field(&v, "activate_after")
                );
            }
        }
    }
    Ok(())
}
