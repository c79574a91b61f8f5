//! `mandate policy ...`: validate, push, inspect, diff, roll back and test
//! Cedar policy sets. `validate` and `test` run offline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mandate_policy::{PolicySet, PolicySource, Schema};
use reqwest::Method;
use serde_json::{Value, json};

use crate::Conn;
use crate::cli::{connect, print_json};
use crate::client::{Client, ClientError, field, print_table};

/// Policy commands.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check policy files against the schema (offline); when a server
    /// answers, also warn about claims and tool arguments the policies test
    /// that none of its trust providers or routes produce.
    Validate {
        /// Cedar policy files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate, store and activate policy files as a new version.
    Push {
        /// Cedar policy files; together they form the new set.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Why (kept with the version and in the audit log).
        #[arg(long, short)]
        message: Option<String>,
    },
    /// List stored versions.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a version's files (the active one by default).
    Show {
        /// Version number.
        version: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what changed between two versions.
    Diff {
        /// Older version.
        from: i64,
        /// Newer version.
        to: i64,
    },
    /// Make an earlier version active again.
    Rollback {
        /// Version number.
        version: i64,
    },
    /// Run request → expected decision cases against policies (offline).
    Test {
        /// A cases YAML file.
        cases: PathBuf,
    },
}

/// Runs a policy command.
pub async fn run(cmd: PolicyCommand, conn: Conn) -> Result<ExitCode, ClientError> {
    match cmd {
        PolicyCommand::Validate { files } => Ok(validate(&files, &conn).await),
        PolicyCommand::Test { cases } => Ok(test(&cases)),
        PolicyCommand::Push { files, message } => {
            let c = connect(&conn)?;
            let mut payload = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f).map_err(|e| {
                    ClientError::Transport(format!("cannot read `{}`: {e}", f.display()))
                })?;
                payload.push(json!({ "name": f.display().to_string(), "text": text }));
            }
            let body = json!({ "files": payload, "message": message });
            let v = c
                .call(Method::POST, "/admin/v1/policies", Some(&body))
                .await?;
            for w in warnings_of(&v) {
                eprintln!("warning: {w}");
            }
            let n = v
                .get("policy_ids")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            println!(
                "activated policy version {} ({n} policies; it replaces the whole previous set)",
                field(&v, "version")
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::List { json } => {
            let c = connect(&conn)?;
            let v = c.call(Method::GET, "/admin/v1/policies", None).await?;
            let items = crate::client::items(&v);
            if json {
                print_json(&Value::Array(items));
            } else {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|p| {
                        let active = if p.get("active").and_then(Value::as_bool) == Some(true) {
                            "*"
                        } else {
                            ""
                        };
                        vec![
                            field(p, "version"),
                            active.to_owned(),
                            field(p, "created_at"),
                            field(p, "author"),
                            field(p, "message"),
                        ]
                    })
                    .collect();
                print_table(
                    &["VERSION", "ACTIVE", "CREATED", "AUTHOR", "MESSAGE"],
                    &rows,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Show { version, json } => {
            let c = connect(&conn)?;
            let v = fetch(&c, version).await?;
            if json {
                print_json(&v);
            } else {
                println!(
                    "# version {} ({}) {}",
                    field(&v, "version"),
                    field(&v, "created_at"),
                    field(&v, "message")
                );
                for f in files_of(&v) {
                    println!("\n// ---- {} ----\n{}", f.0, f.1.trim_end());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Diff { from, to } => {
            let c = connect(&conn)?;
            let a = files_of(&fetch(&c, Some(from)).await?);
            let b = files_of(&fetch(&c, Some(to)).await?);
            print!("{}", diff(&a, &b, from, to));
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Rollback { version } => {
            let c = connect(&conn)?;
            let v = c
                .call(
                    Method::POST,
                    &format!("/admin/v1/policies/{version}/activate"),
                    None,
                )
                .await?;
            println!("policy version {} is active again", field(&v, "version"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn fetch(c: &Client, version: Option<i64>) -> Result<Value, ClientError> {
    let path = match version {
        Some(v) => format!("/admin/v1/policies/{v}"),
        None => "/admin/v1/policies/active".to_owned(),
    };
    c.call(Method::GET, &path, None).await
}

fn files_of(v: &Value) -> Vec<(String, String)> {
    v.get("files")
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    (
                        field(f, "name"),
                        f.get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A unified diff per file name between two versions' files.
fn diff(a: &[(String, String)], b: &[(String, String)], from: i64, to: i64) -> String {
    let mut names: Vec<&str> = a.iter().chain(b).map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let text = |set: &[(String, String)], n: &str| {
        set.iter()
            .find(|(m, _)| m == n)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    let mut out = String::new();
    for n in names {
        let (old, new) = (text(a, n), text(b, n));
        if old == new {
            continue;
        }
        let d = similar::TextDiff::from_lines(&old, &new);
        out.push_str(
            &d.unified_diff()
                .context_radius(3)
                .header(&format!("v{from}/{n}"), &format!("v{to}/{n}"))
                .to_string(),
        );
    }
    if out.is_empty() {
        out.push_str(&format!(
            "versions {from} and {to} hold the same policies\n"
        ));
    }
    out
}

/// The `warnings` of a server answer.
fn warnings_of(v: &Value) -> Vec<String> {
    v.get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect()
}

/// Asks the server what the set tests that nothing configured there
/// produces; why not, when no server answers.
async fn server_warnings(sources: &[PolicySource], conn: &Conn) -> Result<Vec<String>, String> {
    let c = connect(conn).map_err(|e| e.to_string())?;
    let files: Vec<Value> = sources
        .iter()
        .map(|s| json!({"name": s.name, "text": s.text}))
        .collect();
    let v = c
        .call(
            Method::POST,
            "/admin/v1/policies/validate",
            Some(&json!({ "files": files })),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(warnings_of(&v))
}

async fn validate(files: &[PathBuf], conn: &Conn) -> ExitCode {
    let schema = match Schema::mandate() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut sources = Vec::new();
    for f in files {
        match PolicySource::read(f) {
            Ok(s) => sources.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match PolicySet::compile(&schema, &sources) {
        Ok(set) => {
            for w in set.warnings() {
                eprintln!("warning: {w}");
            }
            let local = set.no_permit_warning();
            if let Some(w) = &local {
                eprintln!("warning: {w}");
            }
            // Whether a claim or tool argument a policy tests is produced
            // depends on the trust providers and routes a server has.
            match server_warnings(&sources, conn).await {
                Ok(ws) => {
                    for w in ws.iter().filter(|w| Some(w.as_str()) != local) {
                        eprintln!("warning: {w}");
                    }
                }
                Err(why) => eprintln!(
                    "note: claims and tool arguments not checked against a server's trust \
                     providers and routes ({why})"
                ),
            }
            println!("ok: {} policies in {} files", set.len(), files.len());
            ExitCode::SUCCESS
        }
        Err(mandate_policy::Error::Policies { diagnostics }) => {
            for d in diagnostics {
                eprintln!("{d}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn test(cases: &std::path::Path) -> ExitCode {
    match mandate_policy::cases::run_file(cases) {
        Ok(report) => {
            println!("{}", report.to_string().trim_end());
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_changed_files_only() {
        let a = vec![
            ("a.cedar".to_owned(), "x\ny\n".to_owned()),
            ("b.cedar".to_owned(), "same\n".to_owned()),
        ];
        let b = vec![
            ("a.cedar".to_owned(), "x\nz\n".to_owned()),
            ("b.cedar".to_owned(), "same\n".to_owned()),
        ];
        let d = diff(&a, &b, 1, 2);
        assert!(
            d.contains("--- v1/a.cedar") && d.contains("+++ v2/a.cedar"),
            "{d}"
        );
        assert!(d.contains("-y") && d.contains("+z"), "{d}");
        assert!(!d.contains("b.cedar"));
        assert!(diff(&a, &a, 1, 1).contains("same policies"));
    }
}
