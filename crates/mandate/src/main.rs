//! `mandate`: the Mandate server and its command-line client in one binary.

mod client;
mod config;
mod serve;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, ClientError, field, print_table};

/// Exit code for bad configuration or usage (BSD `EX_USAGE`).
const EX_USAGE: u8 = 64;
/// Exit code when a needed service (database, port) is unavailable.
const EX_UNAVAILABLE: u8 = 69;

#[derive(Parser)]
#[command(
    name = "mandate",
    version,
    about = "Identity broker and gateway for AI agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage the agent inventory.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// Manage admin tokens.
    #[command(name = "admin-token")]
    AdminToken {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// Read and verify the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (master key, admin token, SQLite database).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long)]
    listen: Option<String>,
    /// Database URL: `sqlite://FILE` or `postgres://...`.
    #[arg(long)]
    database: Option<String>,
    /// The URL clients use to reach this server.
    #[arg(long)]
    public_url: Option<String>,
    /// Trust domain of agents' SPIFFE IDs.
    #[arg(long)]
    trust_domain: Option<String>,
}

/// How the client reaches the server.
#[derive(Args, Clone)]
struct Conn {
    /// Server URL.
    #[arg(
        long,
        env = "MANDATE_URL",
        default_value = "http://127.0.0.1:8420",
        global = true
    )]
    url: String,
    /// Admin token.
    #[arg(long, env = "MANDATE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// File holding the admin token.
    #[arg(long, env = "MANDATE_TOKEN_FILE", global = true)]
    token_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AgentCommand {
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
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an admin token and print it (shown once).
    Create {
        /// Human label.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Lifetime, e.g. `30d`, `12h`, `90m`, `3600s`; default: until revoked.
        #[arg(long)]
        expires_in: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List admin tokens.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an admin token.
    Revoke {
        /// Token id.
        id: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// List audit events.
    List {
        /// Only this event type.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// Only events since this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Print JSON (an array of events).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Recompute the hash chain directly from the database.
    Verify {
        /// Data directory whose SQLite database to check.
        #[arg(long, env = "MANDATE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Database URL to check instead.
        #[arg(long, env = "MANDATE_DATABASE")]
        database: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MANDATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mandate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(cli.command))
}

async fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve(args) => run_serve(args).await,
        Command::Agent { command, conn } => report(agent(command, conn).await),
        Command::AdminToken { command, conn } => report(admin_token(command, conn).await),
        Command::Audit {
            command:
                AuditCommand::List {
                    event_type,
                    target,
                    since,
                    json,
                    conn,
                },
        } => report(audit_list(event_type, target, since, json, conn).await),
        Command::Audit {
            command: AuditCommand::Verify { data_dir, database },
        } => audit_verify(data_dir, database).await,
    }
}

fn report(r: Result<(), ClientError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_serve(args: ServeArgs) -> ExitCode {
    let flags = config::RawConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        database: args.database,
        public_url: args.public_url,
        trust_domain: args.trust_domain,
        review_period_days: None,
    };
    let cfg = match config::load(args.config.as_deref(), &config::ProcessEnv, flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mandate: configuration error: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let prepared = match serve::prepare(&cfg).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mandate: cannot start: {e:#}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mandate: cannot listen on {}: {e}", cfg.listen);
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| cfg.listen.to_string());
    println!(
        "Mandate listening on http://{bound} ({} database {})",
        prepared.engine.store().backend(),
        cfg.database
    );
    if cfg.public_url_explicit {
        println!("Public URL: {}", cfg.public_url);
    }
    if prepared.token_created {
        println!(
            "Bootstrap admin token written to {}",
            prepared.token_path.display()
        );
    } else {
        println!(
            "Admin token from first start: {}",
            prepared.token_path.display()
        );
    }
    let state = mandate_server::AppState {
        engine: prepared.engine.clone(),
    };
    let result = mandate_server::serve(listener, state, serve::shutdown_signal()).await;
    prepared.engine.store().close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mandate: server error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn connect(conn: &Conn) -> Result<Client, ClientError> {
    let token = client::resolve_token(conn.token.clone(), conn.token_file.clone())?;
    Client::new(&conn.url, token)
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
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

async fn agent(cmd: AgentCommand, conn: Conn) -> Result<(), ClientError> {
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
    }
    Ok(())
}

/// Percent-encodes a path segment so a name cannot change the path.
fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
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

/// Parses `30d`, `12h`, `90m`, `3600s` or plain seconds.
fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'd' => (&s[..s.len() - 1], 86_400),
        'h' => (&s[..s.len() - 1], 3_600),
        'm' => (&s[..s.len() - 1], 60),
        's' => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)?
        .checked_mul(mult)
}

async fn admin_token(cmd: TokenCommand, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    match cmd {
        TokenCommand::Create {
            name,
            expires_in,
            json,
        } => {
            let secs = match expires_in.as_deref() {
                Some(s) => Some(parse_duration(s).ok_or_else(|| ClientError::Problem {
                    status: 400,
                    title: "Invalid field".into(),
                    detail: format!(
                        "`{s}` is not a duration like `30d`, `12h`, `90m` (field `expires_in`)"
                    ),
                })?),
                None => None,
            };
            let t = c
                .call(
                    Method::POST,
                    "/admin/v1/admin-tokens",
                    Some(&json!({ "name": name, "expires_in": secs })),
                )
                .await?;
            if json {
                print_json(&t);
            } else {
                println!(
                    "created admin token {} (expires {})",
                    field(&t, "id"),
                    field(&t, "expires_at")
                );
                println!("{}", field(&t, "token"));
                eprintln!("store this token now: it is not shown again");
            }
        }
        TokenCommand::List { json } => {
            let v = c.call(Method::GET, "/admin/v1/admin-tokens", None).await?;
            let items = v
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if json {
                print_json(&Value::Array(items));
            } else {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|t| {
                        vec![
                            field(t, "id"),
                            field(t, "name"),
                            field(t, "created_at"),
                            field(t, "expires_at"),
                            field(t, "revoked_at"),
                        ]
                    })
                    .collect();
                print_table(&["ID", "NAME", "CREATED", "EXPIRES", "REVOKED"], &rows);
            }
        }
        TokenCommand::Revoke { id } => {
            let t = c
                .call(
                    Method::POST,
                    &format!("/admin/v1/admin-tokens/{}/revoke", path_segment(&id)),
                    None,
                )
                .await?;
            println!("revoked admin token {}", field(&t, "id"));
        }
    }
    Ok(())
}

async fn audit_list(
    event_type: Option<String>,
    target: Option<String>,
    since: Option<String>,
    json: bool,
    conn: Conn,
) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    let mut q = Vec::new();
    for (k, v) in [("type", event_type), ("target", target), ("since", since)] {
        if let Some(v) = v {
            q.push((k, v));
        }
    }
    let events = c.all_pages("/admin/v1/audit", &q).await?;
    if json {
        print_json(&Value::Array(events));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let detail = e.get("detail").map(Value::to_string).unwrap_or_default();
            vec![
                field(e, "seq"),
                field(e, "time"),
                field(e, "type"),
                field(e, "outcome"),
                field(e, "actor"),
                field(e, "target"),
                detail,
            ]
        })
        .collect();
    print_table(
        &[
            "SEQ", "TIME", "TYPE", "OUTCOME", "ACTOR", "TARGET", "DETAIL",
        ],
        &rows,
    );
    Ok(())
}

async fn audit_verify(data_dir: Option<PathBuf>, database: Option<String>) -> ExitCode {
    let url = match database {
        Some(d) => match mandate_store::DatabaseUrl::parse(&d) {
            Ok(u) => u,
            Err(e) => {
                eprintln!("mandate: {e}");
                return ExitCode::from(EX_USAGE);
            }
        },
        None => {
            let dir = data_dir.unwrap_or_else(|| PathBuf::from(config::DEFAULT_DATA_DIR));
            let file = dir.join("mandate.db");
            if !file.exists() {
                eprintln!("mandate: no database at `{}`", file.display());
                return ExitCode::from(EX_USAGE);
            }
            mandate_store::DatabaseUrl::Sqlite(file)
        }
    };
    let store = match mandate_store::Store::open(&url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mandate: cannot open database {url}: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let report = store.verify_audit_chain().await;
    store.close().await;
    match report {
        Ok(mandate_store::ChainReport::Intact { count, head }) => {
            println!("ok: {count} events, head {head}");
            ExitCode::SUCCESS
        }
        Ok(mandate_store::ChainReport::Broken { seq, reason }) => {
            println!("broken: seq {seq}: {reason}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("mandate: cannot read the audit log: {e}");
            ExitCode::from(EX_UNAVAILABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30d"), Some(30 * 86_400));
        assert_eq!(parse_duration("12h"), Some(43_200));
        assert_eq!(parse_duration("90m"), Some(5_400));
        assert_eq!(parse_duration("10"), Some(10));
        assert_eq!(parse_duration("-1h"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("1y"), None);
    }

    #[test]
    fn path_segments_cannot_traverse() {
        assert_eq!(path_segment("../x"), "..%2Fx");
        assert_eq!(path_segment("a b"), "a%20b");
    }
}
