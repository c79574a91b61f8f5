//! `mandate discover PATH...`: scans source trees for MCP server
//! configurations, agent definitions and hard-coded credentials (the work is
//! done by `mandate-discover`); with an admin token, links what it finds to
//! the registered agents.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mandate_discover::{
    DEFAULT_MAX_FILE_SIZE, DiscoverError, RegisteredAgent, Report, ScanOptions, to_human, to_json,
    to_sarif,
};

use crate::Conn;
use crate::cli::connect;
use crate::client::ClientError;

/// Exit code when a root path cannot be read (BSD `EX_NOINPUT`).
const EX_NOINPUT: u8 = 66;

/// Arguments of `mandate discover`.
#[derive(Args)]
pub struct DiscoverArgs {
    /// Directories, git working trees or files to scan.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print stable JSON.
    #[arg(long, conflicts_with = "sarif")]
    json: bool,
    /// Print SARIF 2.1.0.
    #[arg(long)]
    sarif: bool,
    /// Skip paths matching GLOB (gitignore syntax, relative to each PATH; repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    excludes: Vec<String>,
    /// Skip files larger than BYTES.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FILE_SIZE)]
    max_file_size: u64,
    /// Never ask the server for registered agents, even with a token.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    conn: Conn,
}

/// Why `mandate discover` did not print a report.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

/// Runs the scan and prints the report; 0 whenever the scan ran.
pub async fn run(args: DiscoverArgs) -> ExitCode {
    match execute(args).await {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The report as text in the chosen format.
async fn execute(args: DiscoverArgs) -> Result<String, Failure> {
    let options = ScanOptions {
        excludes: args.excludes,
        max_file_size: args.max_file_size,
    };
    let paths = args.paths;
    // The walk is blocking file I/O: keep it off the async workers.
    let scanned = tokio::task::spawn_blocking(move || mandate_discover::scan(&paths, &options))
        .await
        .map_err(|e| Failure {
            code: 1,
            message: format!("the scan stopped: {e}"),
        })?;
    let mut report = scanned.map_err(|e| Failure {
        code: match e {
            DiscoverError::UnreadableRoot { .. } => EX_NOINPUT,
            _ => crate::EX_USAGE,
        },
        message: e.to_string(),
    })?;
    let has_token =
        args.conn.token.as_deref().is_some_and(|t| !t.is_empty()) || args.conn.token_file.is_some();
    if has_token && !args.offline {
        link(&mut report, &args.conn).await;
    }
    Ok(if args.sarif {
        pretty(&to_sarif(&report))
    } else if args.json {
        pretty(&to_json(&report))
    } else {
        to_human(&report)
    })
}

/// Marks findings registered or unregistered from `GET /admin/v1/agents`;
/// when the server cannot be read they stay `unknown`, with a warning.
async fn link(report: &mut Report, conn: &Conn) {
    match registered_agents(conn).await {
        Ok(agents) => report.link_registry(&agents),
        Err(e) => eprintln!(
            "warning: cannot read the agent registry at {}: {e}; registration left `unknown`",
            conn.url
        ),
    }
}

async fn registered_agents(conn: &Conn) -> Result<Vec<RegisteredAgent>, ClientError> {
    let client = connect(conn)?;
    let items = client.all_pages("/admin/v1/agents", &[]).await?;
    Ok(items
        .into_iter()
        .filter_map(|a| serde_json::from_value(a).ok())
        .collect())
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: DiscoverArgs,
    }

    fn corpus() -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/discovery/corpus")
            .to_string_lossy()
            .into_owned()
    }

    async fn exec(argv: &[&str]) -> Result<String, Failure> {
        let cli = Cli::try_parse_from(std::iter::once("discover").chain(argv.iter().copied()))
            .map_err(|e| Failure {
                code: 2,
                message: e.to_string(),
            })?;
        execute(cli.args).await
    }

    #[tokio::test]
    async fn scans_the_corpus_in_every_format() {
        let c = corpus();
        let human = exec(&[&c, "--offline"]).await.map_err(|f| f.message);
        assert!(human.as_deref().is_ok_and(|h| h.contains("mcp-server")));
        let json = exec(&[&c, "--json", "--offline"])
            .await
            .map_err(|f| f.message);
        let json: serde_json::Value =
            serde_json::from_str(json.as_deref().unwrap_or("")).unwrap_or_default();
        assert_eq!(json["format"], "mandate-discover/v1");
        let sarif = exec(&[&c, "--sarif", "--exclude", "negatives/"]).await;
        assert!(sarif.is_ok_and(|s| s.contains("\"version\": \"2.1.0\"")));
    }

    /// The whole path a user takes: `mandate serve`, `mandate agent register`
    /// over the admin API, then `mandate discover --url --token`.
    #[tokio::test(flavor = "multi_thread")]
    async fn links_findings_to_agents_registered_on_a_running_server() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let data = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(data) = data else {
            return assert!(data.is_ok(), "{data:?}");
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        let data_dir = data.path().to_string_lossy().into_owned();
        let listen = format!("127.0.0.1:{port}");
        let serve = crate::Cli::try_parse_from([
            "mandate",
            "serve",
            "--data-dir",
            &data_dir,
            "--listen",
            &listen,
        ]);
        let Ok(serve) = serve else {
            return assert!(serve.is_ok());
        };
        let server = tokio::spawn(crate::run(serve.command));
        let url = format!("http://{listen}");
        let token_file = data.path().join(crate::serve::ADMIN_TOKEN_FILE);
        let mut token = String::new();
        for _ in 0..200 {
            let healthy = reqwest::get(format!("{url}/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                token = std::fs::read_to_string(&token_file).unwrap_or_default();
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let token = token.trim().to_owned();
        assert!(!token.is_empty(), "the server did not start");
        let client = crate::client::Client::new(&url, token.clone());
        let body = serde_json::json!({
            "name": "invoice-bot", "owner": "alice@example.com", "kind": "autonomous",
        });
        let registered = match client {
            Ok(c) => c
                .call(reqwest::Method::POST, "/admin/v1/agents", Some(&body))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        assert!(registered.is_ok(), "{registered:?}");

        let tree = format!("{}/ts-openai-mcp", corpus());
        let out = exec(&[&tree, "--json", "--url", &url, "--token", &token]).await;
        server.abort();
        let json: serde_json::Value = out
            .map_err(|f| f.message)
            .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
            .unwrap_or_default();
        let state = |name: &str| {
            json["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["name"] == name)
                .map(|f| f["registration"].clone())
                .unwrap_or_default()
        };
        assert_eq!(state("invoice-bot")["state"], "registered", "{json}");
        assert_eq!(state("invoice-bot")["status"], "active");
        assert_eq!(state("triage-agent")["state"], "unregistered");
        // Offline, nothing is known.
        let offline = exec(&[&tree, "--json", "--offline", "--token", &token]).await;
        assert!(offline.is_ok_and(|s| !s.contains("\"registered\"")));
    }

    #[tokio::test]
    async fn usage_errors_and_unreadable_roots_fail() {
        assert!(exec(&["--json", "--sarif", "."]).await.is_err());
        assert!(exec(&[]).await.is_err());
        let missing = exec(&["/nonexistent/mandate-discover"]).await;
        assert_eq!(missing.map_err(|f| f.code).err(), Some(EX_NOINPUT));
        let glob = exec(&[".", "--exclude", "a/**["]).await;
        assert_eq!(glob.map_err(|f| f.code).err(), Some(crate::EX_USAGE));
    }
}
