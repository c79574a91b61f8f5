//! `mandate review`, `mandate agent review`, `mandate agent stale` and
//! `mandate resource tools`: review dates, stale agents and the tools a
//! resource offers.

use clap::Args;

use crate::Conn;
use crate::client::{Client, ClientError};

/// `mandate review`: agents past their review-by date.
#[derive(Args)]
pub struct ReviewArgs {}

/// `mandate agent review NAME --note ...`.
#[derive(Args)]
pub struct AgentReviewArgs {}

/// `mandate agent stale [--apply]`.
#[derive(Args)]
pub struct StaleArgs {}

/// `mandate resource tools NAME [--set t1,t2]`.
#[derive(Args)]
pub struct ToolsArgs {}

/// Lists agents due for review.
pub async fn due(_args: ReviewArgs, _conn: Conn) -> Result<(), ClientError> {
    Ok(())
}

/// Records a review.
pub async fn agent_review(_c: &Client, _args: AgentReviewArgs) -> Result<(), ClientError> {
    Ok(())
}

/// Lists (and with `--apply` suspends) stale agents.
pub async fn stale(_c: &Client, _args: StaleArgs) -> Result<(), ClientError> {
    Ok(())
}

/// Shows or sets a resource's tools.
pub async fn tools(_c: &Client, _args: ToolsArgs) -> Result<(), ClientError> {
    Ok(())
}
