//! `mandate report`: the inventory and access-review reports.

use clap::Subcommand;

use crate::Conn;
use crate::client::ClientError;

/// Report commands.
#[derive(Subcommand)]
pub enum ReportCommand {}

/// Runs a report command.
pub async fn run(cmd: ReportCommand, _conn: Conn) -> Result<(), ClientError> {
    match cmd {}
}
