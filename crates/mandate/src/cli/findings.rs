//! `mandate findings`: drift findings, listed and acknowledged, and a run
//! of the detector on demand.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Conn;
use crate::cli::{connect, path_segment, print_json};
use crate::client::{ClientError, field, print_table};

/// Findings commands.
#[derive(Subcommand)]
pub enum FindingsCommand {
    /// List open drift findings, newest first.
    List {
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
        /// Include acknowledged findings.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a finding: it stops counting towards the agent's risk.
    Ack {
        /// Finding id (`fnd_...`).
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Run the drift detector over new audit events now.
    Scan,
}

/// Runs a findings command.
pub async fn run(cmd: FindingsCommand, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    match cmd {
        FindingsCommand::List { agent, all, json } => {
            let mut q = vec![];
            if let Some(a) = &agent {
                q.push(format!("agent={}", path_segment(a)));
            }
            if all {
                q.push("all=true".to_owned());
            }
            let path = format!("/admin/v1/governance/findings?{}", q.join("&"));
            let v = c.call(Method::GET, &path, None).await?;
            let items = crate::cli::report::items(&v, "items");
            if json {
                print_json(&Value::Array(items.to_vec()));
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|f| {
                    let acked = if f.get("acked_at").is_some_and(|a| !a.is_null()) {
                        "acked"
                    } else {
                        "open"
                    };
                    vec![
                        field(f, "id"),
                        field(f, "agent"),
                        field(f, "kind"),
                        field(f, "risk"),
                        field(f, "created_at"),
                        acked.to_owned(),
                        field(f, "summary"),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no findings");
                return Ok(());
            }
            print_table(
                &["ID", "AGENT", "KIND", "RISK", "RAISED", "STATE", "SUMMARY"],
                &rows,
            );
        }
        FindingsCommand::Ack { id, note } => {
            let path = format!("/admin/v1/governance/findings/{}/ack", path_segment(&id));
            let f = c
                .call(Method::POST, &path, Some(&json!({ "note": note })))
                .await?;
            println!(
                "acknowledged {} ({} of agent {})",
                field(&f, "id"),
                field(&f, "kind"),
                field(&f, "agent")
            );
        }
        FindingsCommand::Scan => {
            let r = c
                .call(Method::POST, "/admin/v1/governance/detector/run", None)
                .await?;
            println!(
                "read {} audit event(s), raised {} finding(s)",
                field(&r, "events"),
                field(&r, "findings")
            );
        }
    }
    Ok(())
}
