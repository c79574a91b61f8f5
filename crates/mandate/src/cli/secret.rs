//! `mandate secret ...`: the upstream credentials the gateway injects. The
//! value is read from standard input and never printed, listed or shown.

use std::io::{IsTerminal, Read};

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::Conn;
use crate::cli::resource::parse_duration;
use crate::cli::{connect, path_segment, print_json};
use crate::client::{ClientError, field, print_table};

/// Secret commands.
#[derive(Subcommand)]
pub enum SecretCommand {
    /// Store a secret (replacing one of the same name), its value read from
    /// standard input.
    Set(Box<SetArgs>),
    /// List secrets (never their values).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a secret's kind, settings and users (never its value).
    Show {
        /// Name.
        name: String,
    },
    /// Remove a secret (refused while a resource's route uses it).
    Remove {
        /// Name.
        name: String,
    },
}

/// `mandate secret set`.
#[derive(Args)]
pub struct SetArgs {
    /// Unique name.
    name: String,
    /// `static` (default), `oauth-client-credentials`, `aws-sigv4` or
    /// `mandate-jwt`.
    #[arg(long, default_value = "static")]
    kind: String,
    /// static: send the value as `Authorization: Bearer <value>` (the default).
    #[arg(long, conflicts_with_all = ["header", "query", "basic_user"])]
    bearer: bool,
    /// static: send the value in this header.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["query", "basic_user"])]
    header: Option<String>,
    /// static: send the value in this query parameter.
    #[arg(long, value_name = "NAME", conflicts_with = "basic_user")]
    query: Option<String>,
    /// static: send HTTP basic auth with this user and the value as password.
    #[arg(long, value_name = "USER")]
    basic_user: Option<String>,
    /// oauth-client-credentials: the upstream token endpoint.
    #[arg(long, value_name = "URL")]
    token_url: Option<String>,
    /// oauth-client-credentials: the client id (the value is its secret).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// oauth-client-credentials: the scope to ask for.
    #[arg(long)]
    scope: Option<String>,
    /// oauth-client-credentials: the audience to ask for; mandate-jwt: the
    /// `aud` of minted tokens (default: the route's upstream URL).
    #[arg(long, value_name = "URI")]
    audience: Option<String>,
    /// aws-sigv4: the access key id (the value is the secret access key,
    /// optionally followed by a line with a session token).
    #[arg(long, value_name = "ID")]
    access_key_id: Option<String>,
    /// aws-sigv4: the region, e.g. `us-east-1`.
    #[arg(long)]
    region: Option<String>,
    /// aws-sigv4: the service's signing name, e.g. `execute-api`.
    #[arg(long)]
    service: Option<String>,
    /// mandate-jwt: lifetime of each minted token: `60s`, `5m` (default 60s).
    #[arg(long, value_parser = parse_duration)]
    ttl: Option<i64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The value as typed or piped: one trailing newline removed, empty
/// refused.
fn read_value(name: &str) -> Result<String, ClientError> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Enter the value of secret `{name}`, then press Ctrl-D:");
    }
    let mut v = String::new();
    stdin
        .read_to_string(&mut v)
        .map_err(|e| ClientError::Transport(format!("cannot read the value from stdin: {e}")))?;
    let v = clean_value(v);
    if v.trim().is_empty() {
        return Err(ClientError::Transport(
            "the value is empty: pipe it on standard input, e.g. `printf %s \"$KEY\" | mandate secret set NAME`"
                .into(),
        ));
    }
    Ok(v)
}

fn clean_value(mut v: String) -> String {
    if v.ends_with('\n') {
        v.pop();
        if v.ends_with('\r') {
            v.pop();
        }
    }
    v
}

fn config(a: &SetArgs) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put("inject", a.bearer.then(|| json!("bearer")));
    put("header", a.header.clone().map(Value::from));
    put("query", a.query.clone().map(Value::from));
    put("basic_user", a.basic_user.clone().map(Value::from));
    put("token_url", a.token_url.clone().map(Value::from));
    put("client_id", a.client_id.clone().map(Value::from));
    put("scope", a.scope.clone().map(Value::from));
    put("audience", a.audience.clone().map(Value::from));
    put("access_key_id", a.access_key_id.clone().map(Value::from));
    put("region", a.region.clone().map(Value::from));
    put("service", a.service.clone().map(Value::from));
    put("ttl_secs", a.ttl.map(Value::from));
    Value::Object(m)
}

/// The settings of a secret on one line, e.g. `inject=header header=x-api-key`.
fn summary(config: &Value) -> String {
    config
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_owned)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn used_by(v: &Value) -> String {
    let names: Vec<&str> = v
        .get("used_by")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(",")
    }
}

/// Runs a secret command.
pub async fn run(cmd: SecretCommand, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    match cmd {
        SecretCommand::Set(args) => {
            let mut body = json!({ "kind": args.kind, "config": config(&args) });
            if args.kind != "mandate-jwt" {
                body["value"] = Value::from(read_value(&args.name)?);
            }
            let path = format!("/admin/v1/secrets/{}", path_segment(&args.name));
            let v = c.call(Method::PUT, &path, Some(&body)).await?;
            if args.json {
                print_json(&v);
            } else {
                println!(
                    "stored secret {} ({}{}{})",
                    field(&v, "name"),
                    field(&v, "kind"),
                    if summary(&v["config"]).is_empty() {
                        ""
                    } else {
                        ", "
                    },
                    summary(&v["config"])
                );
            }
        }
        SecretCommand::List { json } => {
            let v = c.call(Method::GET, "/admin/v1/secrets", None).await?;
            let items = crate::client::items(&v);
            if json {
                print_json(&Value::Array(items));
            } else {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|s| {
                        vec![
                            field(s, "name"),
                            field(s, "kind"),
                            summary(&s["config"]),
                            used_by(s),
                            field(s, "updated_at"),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "KIND", "SETTINGS", "USED BY", "UPDATED"], &rows);
            }
        }
        SecretCommand::Show { name } => {
            let path = format!("/admin/v1/secrets/{}", path_segment(&name));
            print_json(&c.call(Method::GET, &path, None).await?);
        }
        SecretCommand::Remove { name } => {
            let path = format!("/admin/v1/secrets/{}", path_segment(&name));
            c.call(Method::DELETE, &path, None).await?;
            println!("removed secret {name}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_removed() {
        assert_eq!(clean_value("abc\n".into()), "abc");
        assert_eq!(clean_value("abc\r\n".into()), "abc");
        assert_eq!(clean_value("abc\n\n".into()), "abc\n");
        assert_eq!(clean_value("key\ntoken\n".into()), "key\ntoken");
        assert_eq!(clean_value("abc".into()), "abc");
    }
}
