//! `mandate report`: the inventory and access-review reports, as a
//! Markdown table (default), CSV or JSON.

use clap::{Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::Value;

use crate::Conn;
use crate::cli::{connect, path_segment, print_json};
use crate::client::{ClientError, field};

/// Output formats of a report.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A Markdown table.
    Md,
    /// Comma-separated values with a header row.
    Csv,
    /// The server's JSON document.
    Json,
}

/// Report commands.
#[derive(Subcommand)]
pub enum ReportCommand {
    /// Every agent: owner, kind, status, trust providers, bindings,
    /// reachable resources, last seen, review-by date, risk; and shadow identities.
    Inventory {
        /// Output format.
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
    },
    /// Access review: what policy grants against what the audit log shows
    /// used; unused grants are least-privilege findings.
    Access {
        /// Review this agent.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        agent: Option<String>,
        /// Review every agent that is not decommissioned.
        #[arg(long)]
        all: bool,
        /// Usage window in days.
        #[arg(long, default_value_t = 90)]
        window: i64,
        /// Output format.
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
    },
}

/// Runs a report command.
pub async fn run(cmd: ReportCommand, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    match cmd {
        ReportCommand::Inventory { format } => {
            let v = c
                .call(Method::GET, "/admin/v1/governance/inventory", None)
                .await?;
            inventory(&v, format);
        }
        ReportCommand::Access {
            agent,
            all: _,
            window,
            format,
        } => {
            let mut path = format!("/admin/v1/governance/access?window_days={window}");
            if let Some(a) = &agent {
                path.push_str(&format!("&agent={}", path_segment(a)));
            }
            let v = c.call(Method::GET, &path, None).await?;
            access(&v, format);
        }
    }
    Ok(())
}

/// The array `v[key]`, or an empty slice.
pub(crate) fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn joined(v: &Value, key: &str) -> String {
    let parts: Vec<&str> = items(v, key).iter().filter_map(Value::as_str).collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" ")
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Prints `rows` under `headers` as Markdown or CSV.
fn print_rows(format: Format, headers: &[&str], rows: &[Vec<String>]) {
    match format {
        Format::Csv => {
            println!("{}", headers.join(","));
            for r in rows {
                let cells: Vec<String> = r.iter().map(|c| csv_cell(c)).collect();
                println!("{}", cells.join(","));
            }
        }
        _ => {
            println!("| {} |", headers.join(" | "));
            println!("|{}", "---|".repeat(headers.len()));
            for r in rows {
                let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
                println!("| {} |", cells.join(" | "));
            }
        }
    }
}

fn inventory(v: &Value, format: Format) {
    if format == Format::Json {
        return print_json(v);
    }
    let rows: Vec<Vec<String>> = items(v, "agents")
        .iter()
        .map(|a| {
            let overdue = a.get("review_overdue") == Some(&Value::Bool(true));
            vec![
                field(a, "name"),
                field(a, "owner"),
                field(a, "kind"),
                field(a, "status"),
                joined(a, "providers"),
                items(a, "bindings").len().to_string(),
                joined(a, "resources"),
                field(a, "last_seen_at"),
                format!(
                    "{}{}",
                    field(a, "review_by"),
                    if overdue { " (overdue)" } else { "" }
                ),
                field(a, "risk"),
            ]
        })
        .collect();
    print_rows(
        format,
        &[
            "AGENT",
            "OWNER",
            "KIND",
            "STATUS",
            "PROVIDERS",
            "BINDINGS",
            "RESOURCES",
            "LAST SEEN",
            "REVIEW BY",
            "RISK",
        ],
        &rows,
    );
    let shadows = items(v, "shadows");
    if format == Format::Md && !shadows.is_empty() {
        println!();
        println!("Shadow identities (attested, mapped by no binding rule, denied):");
        println!();
        let rows: Vec<Vec<String>> = shadows
            .iter()
            .map(|s| {
                vec![
                    field(s, "provider"),
                    field(s, "subject"),
                    field(s, "count"),
                    field(s, "last_seen"),
                ]
            })
            .collect();
        print_rows(format, &["PROVIDER", "SUBJECT", "SEEN", "LAST SEEN"], &rows);
    }
}

fn access(v: &Value, format: Format) {
    if format == Format::Json {
        return print_json(v);
    }
    let mut rows = Vec::new();
    let mut unused = 0;
    for a in items(v, "agents") {
        for g in items(a, "grants") {
            let used = g.get("used") == Some(&Value::Bool(true));
            unused += usize::from(!used);
            let target = match g.get("tool").and_then(Value::as_str) {
                Some(t) => format!("{}/{t}", field(g, "resource")),
                None => field(g, "resource"),
            };
            rows.push(vec![
                field(a, "agent"),
                field(g, "action"),
                target,
                if used { "yes" } else { "no (unused grant)" }.to_owned(),
                field(g, "last_used"),
                joined(g, "policies"),
            ]);
        }
    }
    print_rows(
        format,
        &[
            "AGENT",
            "ACTION",
            "TARGET",
            "USED",
            "LAST USED",
            "GRANTED BY",
        ],
        &rows,
    );
    if format == Format::Md {
        println!();
        println!(
            "{unused} unused grant(s) in the last {} days: least-privilege findings",
            field(v, "window_days")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_only_when_needed() {
        assert_eq!(csv_cell("a b"), "a b");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(md_cell("a|b"), "a\\|b");
    }
}
