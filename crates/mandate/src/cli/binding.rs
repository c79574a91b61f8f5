//! `mandate binding ...`: binding rules from attestation claims to agents.

use clap::Subcommand;
use mandate_attest::binding::ClaimMatch;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Conn;
use crate::cli::{connect, path_segment, print_json};
use crate::client::{ClientError, field, print_table};

#[derive(Subcommand)]
pub enum BindingCommand {
    /// Map attestations of a provider to an agent.
    Add {
        /// The provider.
        #[arg(long)]
        provider: String,
        /// The agent.
        #[arg(long)]
        agent: String,
        /// `CLAIM=VALUE` (exact) or `CLAIM~GLOB` (repeatable; all must hold).
        #[arg(long = "match", required = true)]
        matches: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List binding rules.
    List {
        /// Only this provider's.
        #[arg(long)]
        provider: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a binding rule.
    Remove {
        /// Rule id.
        id: String,
    },
}

fn matches_text(b: &Value) -> String {
    b.get("matches")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| serde_json::from_value::<ClaimMatch>(m.clone()).ok())
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

pub async fn run(cmd: BindingCommand, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    match cmd {
        BindingCommand::Add {
            provider,
            agent,
            matches,
            json,
        } => {
            let parsed = matches
                .iter()
                .map(|m| ClaimMatch::parse(m))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|detail| ClientError::Problem {
                    status: 400,
                    title: "Invalid arguments".into(),
                    detail,
                })?;
            let body = json!({"provider": provider, "agent": agent, "matches": parsed});
            let b = c
                .call(Method::POST, "/admin/v1/bindings", Some(&body))
                .await?;
            if json {
                print_json(&b);
            } else {
                println!(
                    "added binding {}: {} {} -> agent {}",
                    field(&b, "id"),
                    field(&b, "provider"),
                    matches_text(&b),
                    field(&b, "agent")
                );
            }
        }
        BindingCommand::List { provider, json } => {
            let path = match &provider {
                Some(p) => format!("/admin/v1/bindings?provider={}", path_segment(p)),
                None => "/admin/v1/bindings".to_owned(),
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
                .map(|b| {
                    vec![
                        field(b, "id"),
                        field(b, "provider"),
                        field(b, "agent"),
                        matches_text(b),
                    ]
                })
                .collect();
            print_table(&["ID", "PROVIDER", "AGENT", "MATCHES"], &rows);
        }
        BindingCommand::Remove { id } => {
            c.call(
                Method::DELETE,
                &format!("/admin/v1/bindings/{}", path_segment(&id)),
                None,
            )
            .await?;
            println!("removed binding {id}");
        }
    }
    Ok(())
}
