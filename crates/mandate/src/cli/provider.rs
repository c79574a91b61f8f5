//! `mandate provider ...`: trust providers.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::Conn;
use crate::cli::{connect, path_segment, print_json};
use crate::client::{ClientError, field, print_table};

#[derive(Subcommand)]
pub enum ProviderCommand {
    /// Add a trust provider.
    Add(Box<AddArgs>),
    /// List trust providers.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one provider, its configuration and key cache.
    Show {
        /// Provider name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a provider with its binding rules, join tokens and shadows.
    Remove {
        /// Provider name.
        name: String,
    },
}

#[derive(Args)]
pub struct AddArgs {
    /// Provider name (a DNS label).
    name: String,
    /// `oidc`, `kubernetes`, `github-actions`, `gitlab-ci`, `aws-iid`, `spiffe` or `join-token`.
    #[arg(long)]
    kind: String,
    /// The exact `iss` (OIDC kinds; presets have defaults).
    #[arg(long)]
    issuer: Option<String>,
    /// The audience tokens must carry (OIDC kinds, SPIFFE).
    #[arg(long)]
    audience: Option<String>,
    /// Fetch the JWKS from this URL instead of discovery.
    #[arg(long, conflicts_with = "jwks_file")]
    jwks_url: Option<String>,
    /// Use the JWKS in this file (air-gapped clusters).
    #[arg(long)]
    jwks_file: Option<PathBuf>,
    /// Accepted algorithm (repeatable; default RS256, ES256, EdDSA).
    #[arg(long = "alg")]
    algorithms: Vec<String>,
    /// A claim that must have this value, `CLAIM=VALUE` (repeatable).
    #[arg(long = "require")]
    required: Vec<String>,
    /// Clock skew in seconds (at most 60).
    #[arg(long)]
    skew: Option<i64>,
    /// AWS account allowed to attest (repeatable).
    #[arg(long = "account")]
    accounts: Vec<String>,
    /// AWS region allowed (repeatable; default all).
    #[arg(long = "region")]
    regions: Vec<String>,
    /// Oldest AWS document accepted, e.g. `15m`, `3650d`.
    #[arg(long)]
    max_age: Option<String>,
    /// SPIFFE trust domain.
    #[arg(long)]
    trust_domain: Option<String>,
    /// SPIFFE bundle URL.
    #[arg(long, conflicts_with = "bundle_file")]
    bundle_url: Option<String>,
    /// SPIFFE bundle file.
    #[arg(long)]
    bundle_file: Option<PathBuf>,
    /// Default join-token lifetime, e.g. `1h`.
    #[arg(long)]
    default_ttl: Option<String>,
    /// Allow fetches to private and loopback addresses (tests, on-prem).
    #[arg(long)]
    allow_private_network: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn usage(detail: String) -> ClientError {
    ClientError::Problem {
        status: 400,
        title: "Invalid arguments".into(),
        detail,
    }
}

/// Parses `30d`, `12h`, `90m`, `3600s` or plain seconds.
pub fn parse_duration(s: &str) -> Result<i64, ClientError> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('d') => (&t[..t.len() - 1], 86_400),
        Some('h') => (&t[..t.len() - 1], 3_600),
        Some('m') => (&t[..t.len() - 1], 60),
        Some('s') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    num.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| usage(format!("`{s}` is not a duration like `30d`, `12h`, `90m`")))
}

fn read_json(path: &PathBuf) -> Result<Value, ClientError> {
    let bytes =
        std::fs::read(path).map_err(|e| usage(format!("cannot read `{}`: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| usage(format!("`{}` is not JSON: {e}", path.display())))
}

fn keys(url: &Option<String>, file: &Option<PathBuf>) -> Result<Value, ClientError> {
    Ok(match (url, file) {
        (Some(u), _) => json!({"from": "url", "url": u}),
        (None, Some(f)) => json!({"from": "inline", "document": read_json(f)?}),
        (None, None) => json!({"from": "discovery"}),
    })
}

fn config(a: &AddArgs) -> Result<Value, ClientError> {
    let mut c = Map::new();
    match a.kind.as_str() {
        "oidc" | "kubernetes" | "github-actions" | "gitlab-ci" => {
            let aud = a
                .audience
                .clone()
                .ok_or_else(|| usage("`--audience` is required".into()))?;
            c.insert("audience".into(), aud.into());
            if let Some(i) = &a.issuer {
                c.insert("issuer".into(), i.clone().into());
            }
            c.insert("keys".into(), keys(&a.jwks_url, &a.jwks_file)?);
            c.insert("algorithms".into(), json!(a.algorithms));
            let mut req = Map::new();
            for r in &a.required {
                let (k, v) = r
                    .split_once('=')
                    .ok_or_else(|| usage(format!("`{r}` is not `CLAIM=VALUE`")))?;
                req.insert(k.into(), v.into());
            }
            c.insert("required_claims".into(), Value::Object(req));
            if let Some(s) = a.skew {
                c.insert("skew_secs".into(), s.into());
            }
        }
        "aws-iid" => {
            let age = a
                .max_age
                .as_deref()
                .ok_or_else(|| usage("`--max-age` is required".into()))?;
            c.insert("accounts".into(), json!(a.accounts));
            c.insert("regions".into(), json!(a.regions));
            c.insert("max_age_secs".into(), parse_duration(age)?.into());
        }
        "spiffe" => {
            let td = a
                .trust_domain
                .clone()
                .ok_or_else(|| usage("`--trust-domain` is required".into()))?;
            let aud = a
                .audience
                .clone()
                .ok_or_else(|| usage("`--audience` is required".into()))?;
            if a.bundle_url.is_none() && a.bundle_file.is_none() {
                return Err(usage(
                    "`--bundle-url` or `--bundle-file` is required".into(),
                ));
            }
            c.insert("trust_domain".into(), td.into());
            c.insert("audience".into(), aud.into());
            c.insert("bundle".into(), keys(&a.bundle_url, &a.bundle_file)?);
            c.insert("algorithms".into(), json!(a.algorithms));
            if let Some(i) = &a.issuer {
                c.insert("issuer".into(), i.clone().into());
            }
        }
        "join-token" => {
            if let Some(t) = &a.default_ttl {
                c.insert("default_ttl_secs".into(), parse_duration(t)?.into());
            }
        }
        other => return Err(usage(format!("unknown provider kind `{other}`"))),
    }
    Ok(Value::Object(c))
}

fn print_provider(p: &Value) {
    for key in [
        "name",
        "kind",
        "allow_private_network",
        "created_at",
        "created_by",
    ] {
        println!("{:<22} {}", format!("{key}:"), field(p, key));
    }
    if let Some(cfg) = p.get("config").and_then(Value::as_object) {
        for (k, v) in cfg {
            let shown = match (k.as_str(), v) {
                ("keys" | "bundle", Value::Object(m))
                    if m.get("from") == Some(&json!("inline")) =>
                {
                    let n = m
                        .get("document")
                        .and_then(|d| d.get("keys"))
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    format!("inline ({n} keys)")
                }
                // An empty list means the defaults: show what is in force.
                ("algorithms", Value::Array(a)) if a.is_empty() => format!(
                    "{} (the default)",
                    mandate_attest::oidc::DEFAULT_ALGORITHMS.join(", ")
                ),
                ("algorithms", Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                (_, Value::String(s)) => s.clone(),
                (_, other) => other.to_string(),
            };
            println!("{:<22} {shown}", format!("{k}:"));
        }
    }
    if let Some(claims) = p.get("binding_claims").and_then(Value::as_array) {
        let c: Vec<&str> = claims.iter().filter_map(Value::as_str).collect();
        println!("{:<22} {}", "binding claims:", c.join(", "));
    }
    if let Some(k) = p.get("keys").filter(|k| !k.is_null()) {
        println!(
            "{:<22} {} keys, fetched at {}, {} fetches, last error {}",
            "key cache:",
            field(k, "keys"),
            field(k, "fetched_at"),
            field(k, "fetches"),
            field(k, "last_error")
        );
    }
}

pub async fn run(cmd: ProviderCommand, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    match cmd {
        ProviderCommand::Add(a) => {
            let body = json!({
                "name": a.name,
                "kind": a.kind,
                "config": config(&a)?,
                "allow_private_network": a.allow_private_network,
            });
            let p = c
                .call(Method::POST, "/admin/v1/providers", Some(&body))
                .await?;
            if a.json {
                print_json(&p);
            } else {
                println!(
                    "added provider {} ({})",
                    field(&p, "name"),
                    field(&p, "kind")
                );
            }
        }
        ProviderCommand::List { json } => {
            let v = c.call(Method::GET, "/admin/v1/providers", None).await?;
            let items = v.get("items").cloned().unwrap_or(Value::Array(vec![]));
            if json {
                print_json(&items);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    vec![
                        field(p, "name"),
                        field(p, "kind"),
                        p.get("config")
                            .map(|c| field(c, "issuer"))
                            .unwrap_or_else(|| "-".into()),
                        field(p, "allow_private_network"),
                    ]
                })
                .collect();
            print_table(&["NAME", "KIND", "ISSUER", "PRIVATE NETWORK"], &rows);
        }
        ProviderCommand::Show { name, json } => {
            let p = c
                .call(
                    Method::GET,
                    &format!("/admin/v1/providers/{}", path_segment(&name)),
                    None,
                )
                .await?;
            if json {
                print_json(&p);
            } else {
                print_provider(&p);
            }
        }
        ProviderCommand::Remove { name } => {
            c.call(
                Method::DELETE,
                &format!("/admin/v1/providers/{}", path_segment(&name)),
                None,
            )
            .await?;
            println!("removed provider {name}");
        }
    }
    Ok(())
}
