//! What a finder reports.

use serde::Serialize;

/// One thing found at one place in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable rule id, also the SARIF rule id: `mandate/mcp-server`,
    /// `mandate/agent-definition` or `mandate/hardcoded-credential/<provider>`.
    pub rule_id: String,
    /// File path as reached from the scan root, with `/` separators.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// What was found.
    #[serde(flatten)]
    pub kind: FindingKind,
    /// Whether the finding's name is a registered agent; `None` for
    /// credentials, which have no name to match.
    pub registration: Option<Registration>,
}

/// The three kinds of finding, with their details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FindingKind {
    /// A server entry in an MCP client configuration.
    McpServer(McpServer),
    /// An agent, agent graph or model/MCP client defined in code or config.
    AgentDefinition(AgentDefinition),
    /// A credential written into a file.
    HardcodedCredential(Credential),
}

/// A server entry of an MCP client configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McpServer {
    /// Which client's format: `claude-desktop`, `claude-code`, `cursor`,
    /// `vscode`, `windsurf`, `continue`, `zed` or `generic`.
    pub client: String,
    /// The server's name in the configuration.
    pub name: String,
    /// How the client talks to it.
    pub transport: Transport,
    /// Command line for stdio servers (command and arguments).
    pub command: Option<String>,
    /// URL for remote servers.
    pub url: Option<String>,
    /// `env.NAME` / `headers.NAME` entries whose values are written inline
    /// rather than referenced (`${VAR}`, `${input:id}`, `$VAR`). Names only.
    pub inline_credentials: Vec<String>,
}

/// MCP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A local process over standard input and output.
    Stdio,
    /// Streamable HTTP.
    Http,
    /// The older HTTP + server-sent events transport.
    Sse,
}

impl Transport {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
            Self::Sse => "sse",
        }
    }
}

/// An agent definition found in code or framework configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentDefinition {
    /// `openai-agents`, `langchain`, `crewai`, `autogen`, `llamaindex`,
    /// `anthropic`, `openai` or `mcp`.
    pub framework: String,
    /// `python`, `javascript` (including TypeScript) or `yaml`.
    pub language: String,
    /// The agent's name when the definition gives one.
    pub name: Option<String>,
    /// What matched: the constructor or factory call (`Agent(`), or
    /// `agents.yaml` for CrewAI configuration.
    pub evidence: String,
}

/// A hard-coded credential. Holds no secret: only a masked form and a
/// fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// `github`, `openai`, `anthropic`, `aws`, `slack`, `stripe`, `google`,
    /// `private-key` or `generic`.
    pub provider: String,
    /// What kind of credential, e.g. `GitHub personal access token (classic)`.
    pub description: String,
    /// First 4 characters, `…`, last 2 (or `****` for short values).
    pub masked: String,
    /// Lower-case hex SHA-256 of the value: equal values share it.
    pub fingerprint: String,
    /// Whether a provider-defined checksum was verified.
    pub checksum_verified: bool,
    /// Extra facts, e.g. the AWS account id or the assigned variable's name.
    pub detail: Option<String>,
}

/// Whether a finding names a registered agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// The state.
    pub state: RegistrationState,
    /// The registered agent's name, when matched.
    pub agent: Option<String>,
    /// The registered agent's status (`active`, `suspended`, ...), when matched.
    pub status: Option<String>,
}

/// Registration state of a finding's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationState {
    /// A registered agent has this name.
    Registered,
    /// The registry was read and no agent has this name.
    Unregistered,
    /// The registry was not consulted.
    Unknown,
}

impl RegistrationState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Unregistered => "unregistered",
            Self::Unknown => "unknown",
        }
    }
}

impl Registration {
    /// Not looked up.
    pub fn unknown() -> Self {
        Self {
            state: RegistrationState::Unknown,
            agent: None,
            status: None,
        }
    }
}

impl Finding {
    /// The name this finding would be registered under, if any.
    pub fn name(&self) -> Option<&str> {
        match &self.kind {
            FindingKind::McpServer(s) => Some(&s.name),
            FindingKind::AgentDefinition(a) => a.name.as_deref(),
            FindingKind::HardcodedCredential(_) => None,
        }
    }

    /// The kind as a short word: `mcp-server`, `agent-definition`, `credential`.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            FindingKind::McpServer(_) => "mcp-server",
            FindingKind::AgentDefinition(_) => "agent-definition",
            FindingKind::HardcodedCredential(_) => "credential",
        }
    }

    pub(crate) fn sort_key(&self) -> (&str, usize, &str, Option<&str>, String) {
        let extra = match &self.kind {
            FindingKind::HardcodedCredential(c) => c.fingerprint.clone(),
            FindingKind::AgentDefinition(a) => a.evidence.clone(),
            FindingKind::McpServer(s) => s.client.clone(),
        };
        (&self.path, self.line, &self.rule_id, self.name(), extra)
    }
}

/// Masks a secret for display: its first 4 characters, `…`, and its last 2;
/// values shorter than 12 characters become `****`. Never the whole value.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return "****".to_owned();
    }
    let head: String = chars.iter().take(4).collect();
    let tail: String = chars.iter().skip(chars.len() - 2).collect();
    format!("{head}…{tail}")
}

/// Lower-case hex SHA-256 of a secret value, to group duplicates without
/// keeping the value.
pub fn fingerprint(value: &str) -> String {
    mandate_jose::digest::sha256_hex(value.as_bytes())
}
