//! `mandate resource ...`: the upstreams tokens can be issued for.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::Conn;
use crate::cli::{connect, path_segment, print_json};
use crate::client::{ClientError, field, print_table};

/// Resource commands.
#[derive(Subcommand)]
pub enum ResourceCommand {
    /// Add a resource.
    Add(Box<AddArgs>),
    /// List resources.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one resource.
    Show {
        /// Name.
        name: String,
    },
    /// Remove a resource.
    Remove {
        /// Name.
        name: String,
    },
    /// Show or set the tools a resource offers (for access review).
    Tools(crate::cli::review::ToolsArgs),
}

/// `mandate resource add`.
#[derive(Args)]
pub struct AddArgs {
    /// Unique name.
    name: String,
    /// Unique absolute URI: the `aud` of its tokens (with `--upstream`,
    /// default `<public url>/gw/<name>`).
    #[arg(long, required_unless_present = "upstream")]
    audience: Option<String>,
    /// Comma-separated scopes it understands.
    #[arg(long, value_delimiter = ',', required = true)]
    scopes: Vec<String>,
    /// Longest token lifetime: `5m`, `1h`, `300s` (default: the configured maximum).
    #[arg(long, value_parser = parse_duration)]
    max_ttl: Option<i64>,
    /// `http` (default) or `mcp`.
    #[arg(long)]
    kind: Option<String>,
    /// `public`, `internal` (default), `confidential` or `restricted`.
    #[arg(long)]
    sensitivity: Option<String>,
    /// The accountable human's email address.
    #[arg(long)]
    owner: Option<String>,
    /// Expose it through the gateway at `/gw/<name>/...`, forwarding to
    /// this absolute http(s) URL.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// The stored secret (`mandate secret set`) the gateway injects.
    #[arg(long, value_name = "SECRET", requires = "upstream")]
    credential: Option<String>,
    /// MCP: record tool arguments in the audit log instead of a digest.
    #[arg(long, requires = "upstream")]
    record_arguments: bool,
    /// A scope tokens must carry at the gateway (repeatable).
    #[arg(long = "require-scope", value_name = "SCOPE", requires = "upstream")]
    require_scope: Vec<String>,
    /// Upstream timeout: `30s` (default), `2m`.
    #[arg(long, value_parser = parse_duration, requires = "upstream")]
    timeout: Option<i64>,
    /// An empty path segment (`/a//b`): `merge` it (default) or `refuse`
    /// the request with 400.
    #[arg(long, value_name = "merge|refuse", requires = "upstream")]
    empty_segments: Option<String>,
    /// Forward upstream answers as they are, without scrubbing the injected
    /// secret from their bodies (only for routes with binary bodies).
    #[arg(long, requires = "upstream")]
    no_scrub_responses: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Parses `1h`, `5m`, `300s` or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('h') => (&s[..s.len() - 1], 3_600),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('s') => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a duration like 5m, 1h or 300s"))
}

/// Runs a resource command.
pub async fn run(cmd: ResourceCommand, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    match cmd {
        ResourceCommand::Add(args) => {
            let AddArgs {
                name,
                audience,
                scopes,
                max_ttl,
                kind,
                sensitivity,
                owner,
                upstream,
                credential,
                record_arguments,
                require_scope,
                timeout,
                empty_segments,
                no_scrub_responses,
                json,
            } = *args;
            let body = json!({
                "name": name,
                // Empty: the route's public URL, chosen by the server.
                "audience": audience.unwrap_or_default(),
                "scopes": scopes,
                "max_ttl_secs": max_ttl,
                "kind": kind,
                "sensitivity": sensitivity,
                "owner": owner,
                "upstream": upstream,
                "credential": credential,
                "record_arguments": record_arguments,
                "required_scopes": require_scope,
                "timeout_secs": timeout,
                "empty_segments": empty_segments,
                "scrub_responses": no_scrub_responses.then_some(false),
            });
            let v = c
                .call(Method::POST, "/admin/v1/resources", Some(&body))
                .await?;
            if json {
                print_json(&v);
            } else {
                println!(
                    "added resource {} (audience {}, max ttl {}s)",
                    field(&v, "name"),
                    field(&v, "audience"),
                    field(&v, "max_ttl_secs")
                );
                if let Some(up) = v.get("upstream").and_then(Value::as_str) {
                    println!(
                        "gateway route /gw/{} -> {up} (credential {})",
                        field(&v, "name"),
                        field(&v, "credential")
                    );
                }
            }
        }
        ResourceCommand::List { json } => {
            let v = c.call(Method::GET, "/admin/v1/resources", None).await?;
            let items = crate::client::items(&v);
            if json {
                print_json(&Value::Array(items));
            } else {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|r| {
                        let scopes = r
                            .get("scopes")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(",")
                            })
                            .unwrap_or_default();
                        vec![
                            field(r, "name"),
                            field(r, "audience"),
                            scopes,
                            field(r, "max_ttl_secs"),
                            field(r, "kind"),
                            field(r, "sensitivity"),
                            field(r, "upstream"),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "NAME",
                        "AUDIENCE",
                        "SCOPES",
                        "MAX TTL (S)",
                        "KIND",
                        "SENSITIVITY",
                        "UPSTREAM",
                    ],
                    &rows,
                );
            }
        }
        ResourceCommand::Show { name } => {
            let path = format!("/admin/v1/resources/{}", path_segment(&name));
            print_json(&c.call(Method::GET, &path, None).await?);
        }
        ResourceCommand::Remove { name } => {
            let path = format!("/admin/v1/resources/{}", path_segment(&name));
            c.call(Method::DELETE, &path, None).await?;
            println!("removed resource {name}");
        }
        ResourceCommand::Tools(args) => crate::cli::review::tools(&c, args).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_ttl_parses_with_units() {
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
