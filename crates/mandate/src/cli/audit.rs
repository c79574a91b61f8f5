//! `mandate audit ...`: read and verify the audit log.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

use crate::Conn;
use crate::cli::{connect, print_json};
use crate::client::{ClientError, field, print_table};
use crate::{EX_UNAVAILABLE, EX_USAGE, config};

#[derive(Subcommand)]
pub enum AuditCommand {
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

pub async fn list(
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

pub async fn verify(data_dir: Option<PathBuf>, database: Option<String>) -> ExitCode {
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
