//! `mandate token ...`: list issued access tokens and revoke them (with
//! every token derived from them); `mandate agent jwks ...`: the keys an
//! agent signs `private_key_jwt` client assertions with.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

use crate::Conn;
use crate::cli::provider::usage;
use crate::cli::{connect, path_segment, print_json};
use crate::client::{Client, ClientError, field, print_table};

/// Access token commands.
#[derive(Subcommand)]
pub enum AccessTokenCommand {
    /// List issued tokens, newest first (never the tokens themselves).
    List {
        /// Only this agent's tokens.
        #[arg(long)]
        agent: Option<String>,
        /// Only tokens neither expired nor revoked.
        #[arg(long)]
        live: bool,
        /// Most rows (default 50, at most 500).
        #[arg(long)]
        limit: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its `jti`, and every token derived from it.
    Revoke {
        /// The token's `jti`.
        jti: String,
    },
    /// Ask the token endpoint for an access token as a workload would
    /// (jwt-bearer grant with a workload JWT), and print it. Needs no admin
    /// token.
    Request {
        /// File holding the workload JWT (e.g. a pod's projected token).
        #[arg(long)]
        assertion_file: PathBuf,
        /// The resource (audience) the token is for.
        #[arg(long)]
        resource: String,
        /// Space- or comma-separated scopes (default: all of the resource's).
        #[arg(long)]
        scope: Option<String>,
        /// Print the whole token response as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `mandate token request`: a jwt-bearer grant with the workload JWT in
/// `assertion_file`; prints the access token (or the whole answer).
async fn request(
    conn: &Conn,
    assertion_file: &std::path::Path,
    resource: &str,
    scope: Option<&str>,
    json: bool,
) -> Result<(), ClientError> {
    let assertion = std::fs::read_to_string(assertion_file).map_err(|e| {
        ClientError::Transport(format!("cannot read `{}`: {e}", assertion_file.display()))
    })?;
    let scope = scope.map(|s| s.replace(',', " "));
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion.trim()),
        ("resource", resource),
    ];
    if let Some(s) = &scope {
        form.push(("scope", s.as_str()));
    }
    let v = Client::new(&conn.url, String::new())?
        .token_request(&form)
        .await?;
    if json {
        print_json(&v);
    } else {
        println!("{}", field(&v, "access_token"));
    }
    Ok(())
}

/// `mandate agent jwks ...`.
#[derive(Subcommand)]
pub enum JwksCommand {
    /// Register the public keys (a JWKS file) the agent signs client
    /// assertions with, replacing any before.
    Set {
        /// Agent name.
        name: String,
        /// A JWK Set of public keys.
        #[arg(long)]
        jwks_file: PathBuf,
    },
    /// Show the agent's registered keys.
    Show {
        /// Agent name.
        name: String,
    },
}

/// Runs a token command.
pub async fn run(cmd: AccessTokenCommand, conn: Conn) -> Result<(), ClientError> {
    match cmd {
        AccessTokenCommand::Request {
            assertion_file,
            resource,
            scope,
            json,
        } => request(&conn, &assertion_file, &resource, scope.as_deref(), json).await?,
        AccessTokenCommand::List {
            agent,
            live,
            limit,
            json,
        } => {
            let c = connect(&conn)?;
            let mut q = Vec::new();
            if let Some(a) = &agent {
                q.push(format!("agent={}", path_segment(a)));
            }
            if live {
                q.push("live=true".to_owned());
            }
            if let Some(l) = limit {
                q.push(format!("limit={l}"));
            }
            let path = if q.is_empty() {
                "/admin/v1/tokens".to_owned()
            } else {
                format!("/admin/v1/tokens?{}", q.join("&"))
            };
            let v = c.call(Method::GET, &path, None).await?;
            let items = v.get("items").cloned().unwrap_or(Value::Array(vec![]));
            if json {
                print_json(&items);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    let chain = t
                        .get("chain")
                        .and_then(Value::as_array)
                        .map(|c| {
                            c.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(" > ")
                        })
                        .unwrap_or_default();
                    vec![
                        field(t, "jti"),
                        field(t, "agent"),
                        field(t, "state"),
                        field(t, "audience"),
                        field(t, "scope"),
                        chain,
                        field(t, "expires_at"),
                    ]
                })
                .collect();
            print_table(
                &[
                    "JTI", "AGENT", "STATE", "AUDIENCE", "SCOPE", "CHAIN", "EXPIRES",
                ],
                &rows,
            );
        }
        AccessTokenCommand::Revoke { jti } => {
            let c = connect(&conn)?;
            let v = c
                .call(
                    Method::POST,
                    &format!("/admin/v1/tokens/{}/revoke", path_segment(&jti)),
                    None,
                )
                .await?;
            println!(
                "revoked {} token(s): {} and the tokens derived from it",
                field(&v, "revoked"),
                field(&v, "jti")
            );
        }
    }
    Ok(())
}

/// Runs `mandate agent jwks ...`.
pub async fn jwks(c: &Client, cmd: JwksCommand) -> Result<(), ClientError> {
    match cmd {
        JwksCommand::Set { name, jwks_file } => {
            let text = std::fs::read_to_string(&jwks_file)
                .map_err(|e| usage(format!("cannot read {}: {e}", jwks_file.display())))?;
            let body: Value = serde_json::from_str(&text)
                .map_err(|e| usage(format!("{} is not JSON: {e}", jwks_file.display())))?;
            let v = c
                .call(
                    Method::PUT,
                    &format!("/admin/v1/agents/{}/jwks", path_segment(&name)),
                    Some(&body),
                )
                .await?;
            let n = v.get("keys").and_then(Value::as_array).map_or(0, Vec::len);
            println!("agent {name}: {n} key(s) registered for private_key_jwt");
        }
        JwksCommand::Show { name } => {
            let v = c
                .call(
                    Method::GET,
                    &format!("/admin/v1/agents/{}/jwks", path_segment(&name)),
                    None,
                )
                .await?;
            print_json(&v);
        }
    }
    Ok(())
}
