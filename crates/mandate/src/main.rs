//! `mandate`: the Mandate server and its command-line client in one binary.

mod cli;
mod client;
mod config;
mod gateway;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::admin_token::TokenCommand;
use crate::cli::agent::AgentCommand;
use crate::cli::audit::AuditCommand;
use crate::client::ClientError;
use clap::{Args, Parser, Subcommand};

/// mimalloc instead of the system allocator: the request path allocates and
/// frees many small buffers across worker threads, where glibc's malloc took
/// about a tenth of the token endpoint's CPU (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the gateway alone, with a remote Mandate as its control plane.
    Gateway(gateway::GatewayArgs),
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
    /// Manage Cedar policy sets.
    Policy {
        #[command(subcommand)]
        command: cli::policy::PolicyCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// List and rotate token signing keys.
    Keys {
        #[command(subcommand)]
        command: cli::keys::KeysCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// List and revoke issued access tokens.
    Token {
        #[command(subcommand)]
        command: cli::token::AccessTokenCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// Manage the resources tokens can be issued for.
    Resource {
        #[command(subcommand)]
        command: cli::resource::ResourceCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// Manage the upstream credentials the gateway injects (write-only).
    Secret {
        #[command(subcommand)]
        command: cli::secret::SecretCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// Manage trust providers (attestation sources).
    Provider {
        #[command(subcommand)]
        command: cli::provider::ProviderCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// Manage binding rules from attestation claims to agents.
    Binding {
        #[command(subcommand)]
        command: cli::binding::BindingCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// Dry-run an attestation: verify evidence and show the agent it maps to.
    Attest {
        #[command(flatten)]
        args: cli::attest::AttestArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// Create one-time join tokens.
    #[command(name = "join-token")]
    JoinToken {
        #[command(subcommand)]
        command: cli::join_token::JoinTokenCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// Read and verify the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Find agents, MCP servers and hard-coded credentials in source trees.
    Discover(cli::discover::DiscoverArgs),
    /// Governance reports: inventory and access review.
    Report {
        #[command(subcommand)]
        command: cli::report::ReportCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// List agents past their review-by date.
    Review {
        #[command(flatten)]
        args: cli::review::ReviewArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// List and acknowledge drift findings.
    Findings {
        #[command(subcommand)]
        command: cli::findings::FindingsCommand,
        #[command(flatten)]
        conn: Conn,
    },
    /// Helpers for trying Mandate out on one machine: a test cluster's
    /// token, a demo upstream. Not for production.
    Dev {
        #[command(subcommand)]
        command: cli::dev::DevCommand,
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
    /// A listener of the gateway's own (`/gw/<resource>/...` and the
    /// protected resource metadata only), e.g. `127.0.0.1:8421`.
    #[arg(long)]
    gateway_listen: Option<String>,
    /// `durable` (default): the gateway answers once a call's audit event is
    /// on disk; `buffered`: once it is queued for the next group commit.
    #[arg(long)]
    gateway_audit: Option<String>,
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
pub struct Conn {
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

/// Every `MANDATE_*` environment variable Mandate reads (docs/configuration.md).
const KNOWN_ENV: &[&str] = &[
    "MANDATE_CONTROL_PLANE",
    "MANDATE_DATABASE",
    "MANDATE_DATA_DIR",
    "MANDATE_GATEWAY_AGENT",
    "MANDATE_GATEWAY_AUDIT",
    "MANDATE_GATEWAY_KEY_FILE",
    "MANDATE_GATEWAY_LISTEN",
    "MANDATE_LISTEN",
    "MANDATE_LOG",
    "MANDATE_MASTER_KEY",
    "MANDATE_PUBLIC_URL",
    "MANDATE_REVIEW_PERIOD_DAYS",
    "MANDATE_TOKEN",
    "MANDATE_TOKEN_FILE",
    "MANDATE_TRUST_DOMAIN",
    "MANDATE_URL",
];

/// The warnings for `MANDATE_*` variables Mandate does not read (a typo
/// would silently leave a setting at its default), each with the closest
/// known name. `MANDATE_TEST_*` and `MANDATE_UPDATE_*` belong to the test
/// suite.
fn unknown_env(names: impl Iterator<Item = std::ffi::OsString>) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        let Some(name) = name.to_str().map(str::to_owned) else {
            continue;
        };
        if !name.starts_with("MANDATE_")
            || KNOWN_ENV.contains(&name.as_str())
            || name.starts_with("MANDATE_TEST_")
            || name.starts_with("MANDATE_UPDATE_")
        {
            continue;
        }
        out.push(match mandate_core::closest(&name, KNOWN_ENV.iter().copied()) {
            Some(k) => format!("unknown environment variable {name} is ignored; did you mean {k}?"),
            None => format!(
                "unknown environment variable {name} is ignored (docs/configuration.md lists the MANDATE_* variables)"
            ),
        });
    }
    out.sort();
    out
}

fn warn_unknown_env(names: impl Iterator<Item = std::ffi::OsString>) {
    for w in unknown_env(names) {
        tracing::warn!("{w}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MANDATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into a log file.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
        Command::Serve(args) => {
            warn_unknown_env(std::env::vars_os().map(|(k, _)| k));
            run_serve(args).await
        }
        Command::Gateway(args) => {
            warn_unknown_env(std::env::vars_os().map(|(k, _)| k));
            gateway::run(args).await
        }
        Command::Discover(args) => cli::discover::run(args).await,
        Command::Report { command, conn } => report(cli::report::run(command, conn).await),
        Command::Review { args, conn } => report(cli::review::due(args, conn).await),
        Command::Findings { command, conn } => report(cli::findings::run(command, conn).await),
        Command::Dev { command } => report(cli::dev::run(command).await),
        Command::Agent { command, conn } => report(cli::agent::run(command, conn).await),
        Command::Policy { command, conn } => match cli::policy::run(command, conn).await {
            Ok(code) => code,
            Err(e) => report(Err(e)),
        },
        Command::AdminToken { command, conn } => report(cli::admin_token::run(command, conn).await),
        Command::Provider { command, conn } => report(cli::provider::run(command, conn).await),
        Command::Binding { command, conn } => report(cli::binding::run(command, conn).await),
        Command::JoinToken { command, conn } => report(cli::join_token::run(command, conn).await),
        Command::Attest { args, conn } => match cli::attest::run(args, conn).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => report(Err(e)),
        },
        Command::Keys { command, conn } => report(cli::keys::run(command, conn).await),
        Command::Resource { command, conn } => report(cli::resource::run(command, conn).await),
        Command::Secret { command, conn } => report(cli::secret::run(command, conn).await),
        Command::Token { command, conn } => report(cli::token::run(command, conn).await),
        Command::Audit {
            command:
                AuditCommand::List {
                    event_type,
                    target,
                    since,
                    json,
                    conn,
                },
        } => report(cli::audit::list(event_type, target, since, json, conn).await),
        Command::Audit {
            command: AuditCommand::Verify { data_dir, database },
        } => cli::audit::verify(data_dir, database).await,
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

/// Binds the gateway's own listener and serves its routes there until the
/// shutdown signal. The routes' public URL is this listener's.
async fn serve_gateway(
    addr: std::net::SocketAddr,
    engine: &mandate_engine::Engine,
    issuer: &str,
    durable_audit: bool,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, ExitCode> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        eprintln!("mandate: cannot listen on {addr} for the gateway: {e}");
        ExitCode::from(EX_UNAVAILABLE)
    })?;
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| addr.to_string());
    let mut config = mandate_gateway::GatewayConfig::new(&format!("http://{bound}"), issuer);
    config.durable_audit = durable_audit;
    let gw = mandate_gateway::Gateway::new(engine.clone(), config).map_err(|e| {
        eprintln!("mandate: cannot start the gateway: {e}");
        ExitCode::from(EX_UNAVAILABLE)
    })?;
    println!("Gateway listening on http://{bound}");
    let app = gw
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    Ok(tokio::spawn(async move {
        axum::serve(mandate_server::no_delay(listener), app)
            .with_graceful_shutdown(serve::shutdown_signal())
            .await
    }))
}

async fn run_serve(args: ServeArgs) -> ExitCode {
    let flags = config::RawConfig {
        listen: args.listen,
        gateway_listen: args.gateway_listen,
        gateway_audit: args.gateway_audit,
        data_dir: args.data_dir,
        database: args.database,
        public_url: args.public_url,
        trust_domain: args.trust_domain,
        review_period_days: None,
        governance: None,
        tokens: None,
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
    let public_url = if cfg.public_url_explicit {
        cfg.public_url.clone()
    } else {
        format!("http://{bound}")
    };
    // The issuer is the public URL, known only now that the port is bound.
    if let Err(e) = prepared
        .engine
        .start_token_service(prepared.master_key, public_url.clone(), cfg.tokens.clone())
        .await
    {
        eprintln!("mandate: cannot start the token service: {e}");
        return ExitCode::FAILURE;
    }
    let state = mandate_server::AppState {
        engine: prepared.engine.clone(),
        public_url: public_url.clone(),
    };
    let _governance = prepared.engine.spawn_governance(cfg.governance.clone());
    // Other replicas change policies and the inventory too: pick that up.
    let refresher = prepared.engine.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = refresher.refresh_policy_if_changed().await {
                tracing::warn!(error = %e, "policy refresh failed; keeping the loaded set");
            }
            if let Err(e) = refresher.purge_replay_cache().await {
                tracing::warn!(error = %e, "cannot purge the one-time jti cache");
            }
        }
    });
    // Revocations by other replicas: gateways drop cached verifications.
    let revocations = prepared.engine.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = revocations.refresh_revocations().await {
                tracing::warn!(error = %e, "cannot read the latest revocation");
            }
        }
    });
    // The gateway's own listener, when configured: its routes only.
    let gateway = match cfg.gateway_listen {
        Some(addr) => match serve_gateway(
            addr,
            &prepared.engine,
            &public_url,
            cfg.gateway_durable_audit,
        )
        .await
        {
            Ok(task) => Some(task),
            Err(code) => return code,
        },
        None => None,
    };
    let mut gateway_config = mandate_gateway::GatewayConfig::new(&public_url, &public_url);
    gateway_config.durable_audit = cfg.gateway_durable_audit;
    let result =
        mandate_server::serve_with(listener, state, gateway_config, serve::shutdown_signal()).await;
    if let Some(task) = gateway {
        let _ = task.await;
    }
    prepared.engine.store().close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mandate: server error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_setting_is_named_with_the_right_one() {
        let names = [
            "MANDATE_DATABSE",
            "MANDATE_LOG",
            "MANDATE_TEST_POSTGRES_URL",
            "PATH",
            "MANDATE_FROBNICATE",
        ]
        .map(std::ffi::OsString::from);
        let w = unknown_env(names.into_iter());
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("MANDATE_DATABSE is ignored; did you mean MANDATE_DATABASE?"),
            "{w:?}"
        );
        assert!(
            w[1].contains("MANDATE_FROBNICATE is ignored (docs/configuration.md"),
            "{w:?}"
        );
    }
}
