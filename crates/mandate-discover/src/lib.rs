//! Discovery for governance: walks source trees and reports what an agent
//! inventory should know about — MCP server configurations of the common
//! clients, agent definitions in the common frameworks and SDKs, and
//! hard-coded credentials (provider formats with their checksums, PEM private
//! keys, high-entropy assignments). This crate owns the file walk, the
//! finders, the masking and fingerprinting of secret values, linking findings
//! to registered agent names, and the human, JSON and SARIF 2.1.0 renderings.
//! It does no network I/O: the caller fetches the registered agents (the
//! `mandate discover` command does, from the admin API) and passes them in.
//! A secret value never leaves a finder: findings carry only a masked form and
//! a SHA-256 fingerprint.

mod agents;
mod credentials;
mod finding;
mod jsonc;
mod mcp;
mod output;
mod registry;
mod walk;

use std::path::{Path, PathBuf};

pub use credentials::{aws_account_id, github_checksum, github_token_is_valid, shannon_entropy};
pub use finding::{
    AgentDefinition, Credential, Finding, FindingKind, McpServer, Registration, RegistrationState,
    Transport, fingerprint, mask,
};
pub use output::{RULES, Rule, to_human, to_json, to_sarif};
pub use registry::RegisteredAgent;

/// Files larger than this many bytes are skipped unless the caller says otherwise.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1024 * 1024;

/// How a scan walks the tree.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Globs (gitignore syntax, relative to each root) of paths not to scan.
    pub excludes: Vec<String>,
    /// Files larger than this many bytes are skipped and listed as such.
    pub max_file_size: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            excludes: Vec::new(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// A root path does not exist or cannot be read.
    #[error("cannot read `{path}`: {source}")]
    UnreadableRoot {
        /// The root as given.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// An `--exclude` glob does not parse.
    #[error("invalid exclude glob `{glob}`: {reason}")]
    InvalidGlob {
        /// The glob as given.
        glob: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No path to scan was given.
    #[error("no path to scan")]
    NoPaths,
}

/// A file the walk saw but did not read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Path of the file, as reached from its root, with `/` separators.
    pub path: String,
    /// Why it was skipped (`binary`, `too large (N bytes)`, `symlink`, ...).
    pub reason: String,
}

/// The outcome of a scan.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The roots as given.
    pub roots: Vec<String>,
    /// Every finding, sorted by path, line and rule.
    pub findings: Vec<Finding>,
    /// How many files were read and searched.
    pub files_scanned: usize,
    /// Files seen but not read, sorted by path.
    pub skipped: Vec<Skipped>,
}

/// Scans every path (a directory, a git working tree, or a single file) and
/// returns the findings. Agent and MCP findings are marked
/// [`RegistrationState::Unknown`] until [`Report::link_registry`] is called.
pub fn scan(paths: &[PathBuf], options: &ScanOptions) -> Result<Report, DiscoverError> {
    if paths.is_empty() {
        return Err(DiscoverError::NoPaths);
    }
    let mut report = Report::default();
    for root in paths {
        check_root(root)?;
    }
    for root in paths {
        report.roots.push(walk::display_path(root));
        walk::walk(root, options, |file| match file {
            walk::Visit::Text { display, text } => {
                report.files_scanned += 1;
                report
                    .findings
                    .extend(scan_text(Path::new(&display), &text));
            }
            walk::Visit::Skipped(s) => report.skipped.push(s),
        })?;
    }
    report
        .findings
        .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    report.findings.dedup();
    report.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    report.skipped.dedup();
    Ok(report)
}

/// Runs every finder over one file's text; `path` decides which finders apply
/// (MCP client configurations are recognised by name, code by extension).
pub fn scan_text(path: &Path, text: &str) -> Vec<Finding> {
    let display = walk::display_path(path);
    let mut out = mcp::find(path, &display, text);
    out.extend(agents::find(path, &display, text));
    out.extend(credentials::find(&display, text));
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out.dedup();
    out
}

fn check_root(root: &Path) -> Result<(), DiscoverError> {
    let meta = std::fs::metadata(root).map_err(|source| DiscoverError::UnreadableRoot {
        path: root.to_path_buf(),
        source,
    })?;
    let readable = if meta.is_dir() {
        std::fs::read_dir(root).map(|_| ())
    } else {
        std::fs::File::open(root).map(|_| ())
    };
    readable.map_err(|source| DiscoverError::UnreadableRoot {
        path: root.to_path_buf(),
        source,
    })
}

impl Report {
    /// Marks each agent and MCP finding `registered` (with the agent's
    /// status) when its name matches a registered agent, `unregistered`
    /// otherwise. Names match ignoring case and treating `_`, `.` and spaces
    /// as `-`.
    pub fn link_registry(&mut self, agents: &[RegisteredAgent]) {
        registry::link(&mut self.findings, agents);
    }
}

#[cfg(test)]
mod tests;
