//! `mandate agent ...`: the agent inventory.

use std::collections::BTreeMap;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Conn;
use crate::cli::{connect, path_segment, print_json};
use crate::client::{Client, ClientError, field, print_table};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Register an agent.
    Register {
        /// Agent name (a DNS label).
        name: String,
        /// Accountable human's e-mail address.
        #[arg(long)]
        owner: Option<String>,
        /// `autonomous` or `on-behalf-of`.
        #[arg(long)]
        kind: Option<String>,
        /// What the agent is for.
        #[arg(long)]
        description: Option<String>,
        /// A label `key=value` (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Model it runs.
        #[arg(long)]
        model: Option<String>,
        /// Agent framework.
        #[arg(long)]
        framework: Option<String>,
        /// Expected envelope (what it should use).
        #[arg(long)]
        envelope: Option<String>,
        /// Print the agent as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List agents.
    List {
        /// Only agents of this owner.
        #[arg(long)]
        owner: Option<String>,
        /// Only agents with this status.
        #[arg(long)]
        status: Option<String>,
        /// Only agents of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Only agents with this label `key=value`.
        #[arg(long)]
        label: Option<String>,
        /// Print JSON (an array of agents).
        #[arg(long)]
        json: bool,
    },
    /// Show one agent.
    Show {
        /// Agent name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Suspend an agent.
    Suspend {
        /// Agent name.
        name: String,
    },
    /// Resume a suspended agent.
    Resume {
        /// Agent name.
        name: String,
    },
    /// Decommission an agent for good.
    Decommission {
        /// Agent name.
        name: String,
    },
    /// List shadow agents: attested workloads no binding rule maps (denied).
    Shadows {
        /// Only this provider's.
        #[arg(long)]
        provider: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register or show the public keys the agent signs client assertions
    /// with (`private_key_jwt`).
    #[command(subcommand)]
    Jwks(crate::cli::token::JwksCommand),
    /// Record a review of an agent and move its review-by date.
    Review(crate::cli::review::AgentReviewArgs),
    /// List agents with no recent attestation or token; `--apply` suspends them.
    Stale(crate::cli::review::StaleArgs),
}

fn agent_rows(agents: &[Value]) -> Vec<Vec<String>> {
    agents
        .iter()
        .map(|a| {
            vec![
                field(a, "name"),
                field(a, "kind"),
                field(a, "status"),
                field(a, "owner"),
                field(a, "spiffe_id"),
            ]
        })
        .collect()
}

const AGENT_HEADERS: [&str; 5] = ["NAME", "KIND", "STATUS", "OWNER", "SPIFFE ID"];

fn print_agent(a: &Value, as_json: bool) {
    if as_json {
        return print_json(a);
    }
    for key in [
        "name",
        "spiffe_id",
        "kind",
        "status",
        "owner",
        "description",
        "envelope",
        "created_at",
        "updated_at",
        "review_by",
        "last_seen_at",
    ] {
        println!("{:<13} {}", format!("{key}:"), field(a, key));
    }
    if let Some(labels) = a
        .get("labels")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
    {
        let s: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        println!("{:<13} {}", "labels:", s.join(", "));
    }
    if let Some(p) = a
        .get("provenance")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())
    {
        let s: Vec<String> = p
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        println!("{:<13} {}", "provenance:", s.join(", "));
    }
}

pub async fn run(cmd: AgentCommand, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    match cmd {
        AgentCommand::Register {
            name,
            owner,
            kind,
            description,
            labels,
            model,
            framework,
            envelope,
            json,
        } => {
            let mut label_map = BTreeMap::new();
            for l in &labels {
                let (k, v) = l.split_once('=').ok_or_else(|| ClientError::Problem {
                    status: 400,
                    title: "Invalid field".into(),
                    detail: format!("label `{l}` is not of the form `key=value` (field `labels`)"),
                })?;
                label_map.insert(k.to_owned(), v.to_owned());
            }
            let mut body =
                json!({ "name": name, "owner": owner, "kind": kind, "labels": label_map });
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(e) = envelope {
                body["envelope"] = json!(e);
            }
            if model.is_some() || framework.is_some() {
                body["provenance"] = json!({ "model": model, "framework": framework });
            }
            let a = c
                .call(Method::POST, "/admin/v1/agents", Some(&body))
                .await?;
            if json {
                print_json(&a);
            } else {
                println!(
                    "registered {} ({})",
                    field(&a, "name"),
                    field(&a, "spiffe_id")
                );
            }
        }
        AgentCommand::List {
            owner,
            status,
            kind,
            label,
            json,
        } => {
            let mut q = Vec::new();
            for (k, v) in [
                ("owner", owner),
                ("status", status),
                ("kind", kind),
                ("label", label),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            let agents = c.all_pages("/admin/v1/agents", &q).await?;
            if json {
                print_json(&Value::Array(agents));
            } else {
                print_table(&AGENT_HEADERS, &agent_rows(&agents));
            }
        }
        AgentCommand::Show { name, json } => {
            let a = c
                .call(
                    Method::GET,
                    &format!("/admin/v1/agents/{}", path_segment(&name)),
                    None,
                )
                .await?;
            print_agent(&a, json);
        }
        AgentCommand::Suspend { name } => status_change(&c, &name, "suspend").await?,
        AgentCommand::Resume { name } => status_change(&c, &name, "resume").await?,
        AgentCommand::Decommission { name } => status_change(&c, &name, "decommission").await?,
        AgentCommand::Shadows { provider, json } => shadows(&c, provider, json).await?,
        AgentCommand::Jwks(cmd) => crate::cli::token::jwks(&c, cmd).await?,
        AgentCommand::Review(args) => crate::cli::review::agent_review(&c, args).await?,
        AgentCommand::Stale(args) => crate::cli::review::stale(&c, args).await?,
    }
    Ok(())
}

async fn status_change(c: &Client, name: &str, verb: &str) -> Result<(), ClientError> {
    let a = c
        .call(
            Method::POST,
            &format!("/admin/v1/agents/{}/{verb}", path_segment(name)),
            None,
        )
        .await?;
    println!("{}: {}", field(&a, "name"), field(&a, "status"));
    Ok(())
}

async fn shadows(c: &Client, provider: Option<String>, as_json: bool) -> Result<(), ClientError> {
    let path = match &provider {
        Some(p) => format!("/admin/v1/shadows?provider={}", path_segment(p)),
        None => "/admin/v1/shadows".to_owned(),
    };
    let v = c.call(Method::GET, &path, None).await?;
    let items = v.get("items").cloned().unwrap_or(Value::Array(vec![]));
    if as_json {
        print_json(&items);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            vec![
                field(s, "id"),
                field(s, "provider"),
                field(s, "subject"),
                field(s, "count"),
                field(s, "first_seen"),
                field(s, "last_seen"),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "PROVIDER",
            "SUBJECT",
            "COUNT",
            "FIRST SEEN",
            "LAST SEEN",
        ],
        &rows,
    );
    Ok(())
}
