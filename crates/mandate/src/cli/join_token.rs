//! `mandate join-token ...`: one-time join tokens for development.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::Conn;
use crate::cli::provider::parse_duration;
use crate::cli::{connect, print_json};
use crate::client::{ClientError, field};

#[derive(Subcommand)]
pub enum JoinTokenCommand {
    /// Create a join token for an agent (shown once).
    Create {
        /// A `join-token` provider.
        #[arg(long)]
        provider: String,
        /// The agent the token attests as.
        #[arg(long)]
        agent: String,
        /// Lifetime, e.g. `15m`, `1h` (default: the provider's, else 1h).
        #[arg(long)]
        expires_in: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: JoinTokenCommand, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    match cmd {
        JoinTokenCommand::Create {
            provider,
            agent,
            expires_in,
            json,
        } => {
            let secs = expires_in.as_deref().map(parse_duration).transpose()?;
            let body = json!({"provider": provider, "agent": agent, "expires_in_secs": secs});
            let t = c
                .call(Method::POST, "/admin/v1/join-tokens", Some(&body))
                .await?;
            if json {
                print_json(&t);
            } else {
                println!(
                    "created join token {} for agent {} (expires {})",
                    field(&t, "id"),
                    field(&t, "agent"),
                    field(&t, "expires_at")
                );
                println!("{}", field(&t, "token"));
                eprintln!("it works once; it is not shown again");
            }
        }
    }
    Ok(())
}
