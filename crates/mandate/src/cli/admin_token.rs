//! `mandate admin-token ...`: bearer tokens for the admin API.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Conn;
use crate::cli::{connect, path_segment, print_json};
use crate::client::{ClientError, field, print_table};

#[derive(Subcommand)]
pub enum TokenCommand {
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

pub async fn run(cmd: TokenCommand, conn: Conn) -> Result<(), ClientError> {
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
            let items = crate::client::items(&v);
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
}
