//! `mandate gateway`: the gateway alone, near the agents, with a remote
//! Mandate as its control plane. It proves itself to that Mandate as an
//! agent (client credentials with a `private_key_jwt` signed by the key
//! registered on its agent), checks tokens with the published JWKS, asks
//! the Mandate to check each token's record and decide each call, fetches
//! the credentials it injects over the internal API and ships its audit
//! events there before it answers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use mandate_jose::jws::{Algorithm, SigningKey};

use crate::{EX_UNAVAILABLE, EX_USAGE, serve};

#[derive(Args)]
pub struct GatewayArgs {
    /// URL of the Mandate this gateway depends on (`https`, or `http` on a
    /// loopback address).
    #[arg(long, env = "MANDATE_CONTROL_PLANE")]
    control_plane: String,
    /// The gateway's agent name (its `client_id` at the token endpoint).
    #[arg(long, env = "MANDATE_GATEWAY_AGENT")]
    agent: String,
    /// PEM file (PKCS#8) of the private key registered on that agent with
    /// `mandate agent jwks set`.
    #[arg(long, env = "MANDATE_GATEWAY_KEY_FILE")]
    key_file: PathBuf,
    /// The key's algorithm: ES256, ES384 or EdDSA.
    #[arg(long, default_value = "ES256")]
    alg: String,
    /// The key's `kid` as registered, when the agent has several keys.
    #[arg(long)]
    key_id: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "MANDATE_GATEWAY_LISTEN", default_value = "127.0.0.1:8421")]
    listen: String,
    /// The URL clients reach this gateway under (default `http://<listen>`):
    /// a route's audience is `<public URL>/gw/<resource>` unless the
    /// resource names another.
    #[arg(long)]
    public_url: Option<String>,
    /// `durable` (default): answer once the call's audit event is on the
    /// control plane's disk; `buffered`: once it is queued there.
    #[arg(long, default_value = "durable")]
    audit: String,
    /// Longest wait, in seconds, for a connection to an upstream or to the
    /// control plane.
    #[arg(long, default_value_t = 5)]
    connect_timeout: u64,
}

pub async fn run(args: GatewayArgs) -> ExitCode {
    let usage = |msg: String| {
        eprintln!("mandate gateway: {msg}");
        ExitCode::from(EX_USAGE)
    };
    let Some(alg) = Algorithm::from_name(&args.alg).filter(|a| !a.is_rsa()) else {
        return usage(format!("--alg `{}` is not ES256, ES384 or EdDSA", args.alg));
    };
    let durable_audit = match args.audit.as_str() {
        "durable" => true,
        "buffered" => false,
        other => return usage(format!("--audit `{other}` is not `durable` or `buffered`")),
    };
    let pem = match std::fs::read(&args.key_file) {
        Ok(p) => p,
        Err(e) => return usage(format!("{}: {e}", args.key_file.display())),
    };
    let key = match SigningKey::from_pem(alg, &pem) {
        Ok(k) => k,
        Err(e) => return usage(format!("{}: {e}", args.key_file.display())),
    };
    let key = match args.key_id {
        Some(kid) => key.with_kid(kid),
        None => key,
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mandate gateway: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| args.listen.clone());
    let public_url = args.public_url.unwrap_or_else(|| format!("http://{bound}"));
    let mut config = mandate_gateway::GatewayConfig::new(&public_url, &args.control_plane);
    config.durable_audit = durable_audit;
    config.connect_timeout = Duration::from_secs(args.connect_timeout.max(1));
    let remote = mandate_gateway::RemoteConfig {
        control_plane: args.control_plane.clone(),
        agent: args.agent,
        key,
        timeout: config.connect_timeout,
    };
    let gw = match mandate_gateway::Gateway::remote(config, remote).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("mandate gateway: cannot start: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    println!(
        "Gateway listening on http://{bound} (public URL {public_url}, control plane {})",
        args.control_plane
    );
    let app = gw
        .router()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    match axum::serve(mandate_server::no_delay(listener), app)
        .with_graceful_shutdown(serve::shutdown_signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mandate gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
