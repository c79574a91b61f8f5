//! `mandate findings`: drift findings, listed and acknowledged.

use clap::Subcommand;

use crate::Conn;
use crate::client::ClientError;

/// Findings commands.
#[derive(Subcommand)]
pub enum FindingsCommand {}

/// Runs a findings command.
pub async fn run(cmd: FindingsCommand, _conn: Conn) -> Result<(), ClientError> {
    match cmd {}
}
