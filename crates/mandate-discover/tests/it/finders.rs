//! One test per finder, over the corpus (and over generated text where a
//! negative case needs a value the corpus should not hold).

use std::collections::BTreeSet;
use std::path::Path;

use mandate_discover::{
    FindingKind, RegisteredAgent, RegistrationState, Transport, github_checksum, scan_text,
};

use crate::support::{credentials, of_rule, report};

fn mcp(path: &str, name: &str) -> mandate_discover::McpServer {
    report()
        .findings
        .iter()
        .find_map(|f| match &f.kind {
            FindingKind::McpServer(s) if f.path == path && s.name == name => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no MCP server {name} in {path}"))
}

#[test]
fn finds_mcp_servers_of_every_client() {
    let clients: BTreeSet<String> = of_rule("mandate/mcp-server")
        .iter()
        .filter_map(|f| match &f.kind {
            FindingKind::McpServer(s) => Some(s.client.clone()),
            _ => None,
        })
        .collect();
    let want = [
        "claude-code",
        "claude-desktop",
        "continue",
        "cursor",
        "generic",
        "vscode",
        "windsurf",
        "zed",
    ];
    assert_eq!(clients, want.iter().map(|s| s.to_string()).collect());

    let gh = mcp("editors/claude_desktop_config.json", "github");
    assert_eq!(gh.transport, Transport::Stdio);
    assert_eq!(
        gh.command.as_deref(),
        Some("npx -y @modelcontextprotocol/server-github")
    );
    assert_eq!(gh.inline_credentials, ["env.GITHUB_PERSONAL_ACCESS_TOKEN"]);
    let fs = mcp("editors/claude_desktop_config.json", "filesystem");
    assert!(fs.inline_credentials.is_empty());
    // A path argument is shown as is.
    assert!(fs.command.unwrap().ends_with(" /Users/alice/Documents"));
    assert_eq!(
        mcp("ts-openai-mcp/.cursor/mcp.json", "stripe").inline_credentials,
        ["env.STRIPE_SECRET_KEY"]
    );
    assert_eq!(
        mcp("ts-openai-mcp/.cursor/mcp.json", "sentry").transport,
        Transport::Sse
    );
    // VS Code: `servers`, a header that references an input is not inline.
    let vs = mcp("ts-openai-mcp/.vscode/mcp.json", "github");
    assert_eq!(vs.transport, Transport::Http);
    assert!(vs.inline_credentials.is_empty());
    let ws = mcp("editors/windsurf/mcp_config.json", "docs-search");
    assert_eq!(
        (ws.transport, ws.inline_credentials.len()),
        (Transport::Sse, 0)
    );
    assert!(
        mcp("editors/.continue/config.yaml", "brave-search")
            .inline_credentials
            .is_empty()
    );
    assert_eq!(
        mcp("editors/.continue/config.json", "server-1")
            .command
            .as_deref(),
        Some("uvx mcp-server-time")
    );
    let zed = mcp("editors/zed/settings.json", "postgres-context-server");
    assert_eq!(
        zed.command.as_deref(),
        Some("npx -y @zeddev/postgres-context-server")
    );
    assert_eq!(
        mcp("editors/zed/settings.json", "remote-docs").transport,
        Transport::Http
    );
    // A key in a URL query or in the arguments is masked in the finding.
    let weather = mcp("editors/tools/mcp.json", "weather-api");
    assert!(weather.url.unwrap().contains("api_key=FAKE…s6"));
    let linear = mcp("langgraph-py/.mcp.json", "linear");
    assert!(linear.command.unwrap().ends_with("--api-key lin_…d3"));
}

#[test]
fn finds_agent_definitions_of_every_framework() {
    let mut seen = BTreeSet::new();
    for f in of_rule("mandate/agent-definition") {
        if let FindingKind::AgentDefinition(a) = &f.kind {
            seen.insert((a.framework.clone(), a.language.clone()));
        }
    }
    for (fw, lang) in [
        ("openai-agents", "python"),
        ("openai-agents", "javascript"),
        ("langchain", "python"),
        ("crewai", "python"),
        ("crewai", "yaml"),
        ("autogen", "python"),
        ("llamaindex", "python"),
        ("anthropic", "python"),
        ("anthropic", "javascript"),
        ("openai", "python"),
        ("openai", "javascript"),
        ("mcp", "python"),
        ("mcp", "javascript"),
    ] {
        assert!(
            seen.contains(&(fw.to_owned(), lang.to_owned())),
            "{fw}/{lang} missing from {seen:?}"
        );
    }
    // A file that only imports LangChain tools defines no agent.
    assert!(
        !report()
            .findings
            .iter()
            .any(|f| f.path.ends_with("app/tools.py"))
    );
}

#[test]
fn finds_github_tokens_with_valid_checksums_only() {
    let gh = credentials("github");
    assert_eq!(gh.len(), 6, "{gh:#?}");
    assert_eq!(gh.iter().filter(|(_, c)| c.checksum_verified).count(), 5);
    // Built here so no token sits in this file.
    let body = "FAKEEXAMPLEgeneratedInTest0001";
    let good = format!("ghp_{body}{}", github_checksum(body));
    let mut bad = good.clone();
    bad.replace_range(34.., "AAAAAA");
    let found = |t: &str| {
        scan_text(Path::new("x.sh"), &format!("export GH={t}\n"))
            .iter()
            .any(|f| f.rule_id == "mandate/hardcoded-credential/github")
    };
    assert!(found(&good));
    assert!(!found(&bad));
}

#[test]
fn finds_openai_keys() {
    let o = credentials("openai");
    assert_eq!(o.len(), 2);
    assert!(o.iter().all(|(_, c)| c.masked.starts_with("sk-")));
}

#[test]
fn finds_anthropic_keys() {
    let a = credentials("anthropic");
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|(_, c)| c.masked == "sk-a…AA"));
}

#[test]
fn finds_aws_key_ids_with_their_secret() {
    let aws = credentials("aws");
    assert_eq!(aws.len(), 2);
    let id = aws
        .iter()
        .find(|(_, c)| c.description == "AWS access key id")
        .unwrap();
    let detail = id.1.detail.as_deref().unwrap();
    assert!(detail.contains("account 581039954779"), "{detail}");
    assert!(detail.contains("secret access key on line 4"), "{detail}");
}

#[test]
fn finds_slack_tokens_and_webhooks() {
    let kinds: BTreeSet<String> = credentials("slack")
        .iter()
        .map(|(_, c)| c.description.clone())
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[test]
fn finds_stripe_live_keys() {
    let s = credentials("stripe");
    let masks: BTreeSet<&str> = s.iter().map(|(_, c)| c.masked.as_str()).collect();
    assert_eq!(masks, BTreeSet::from(["sk_l…00", "rk_l…00"]));
}

#[test]
fn finds_google_api_keys() {
    let g = credentials("google");
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].0.path, "agents-py/settings.yaml");
}

#[test]
fn finds_pem_private_keys() {
    let k = credentials("private-key");
    assert_eq!(k.len(), 1);
    assert_eq!(
        (k[0].0.path.as_str(), k[0].0.line),
        ("crewai-py/deploy/service-key.pem", 1)
    );
    // A marker without a body, as in documentation, is not a key.
    assert!(scan_text(Path::new("a.md"), "-----BEGIN PRIVATE KEY-----\n...\n").is_empty());
}

#[test]
fn finds_generic_high_entropy_assignments_but_not_placeholders() {
    let g = credentials("generic");
    let names: BTreeSet<String> = g
        .iter()
        .map(|(_, c)| c.detail.clone().unwrap_or_default())
        .collect();
    assert_eq!(g.len(), 5, "{names:?}");
    assert!(names.contains("assigned to `INTERNAL_API_TOKEN`"));
    assert!(
        !report()
            .findings
            .iter()
            .any(|f| f.path.starts_with("negatives/"))
    );
}

#[test]
fn links_findings_to_registered_agents() {
    let mut r = report().clone();
    assert!(
        r.findings
            .iter()
            .filter(|f| f.registration.is_some())
            .all(|f| {
                f.registration.as_ref().map(|x| x.state) == Some(RegistrationState::Unknown)
            })
    );
    r.link_registry(&[RegisteredAgent {
        name: "Invoice_Bot".into(),
        status: "active".into(),
    }]);
    let state = |name: &str| {
        r.findings
            .iter()
            .find(|f| f.name() == Some(name))
            .and_then(|f| f.registration.clone())
            .map(|x| (x.state, x.status))
    };
    assert_eq!(
        state("invoice-bot"),
        Some((RegistrationState::Registered, Some("active".into())))
    );
    assert_eq!(
        state("triage-agent"),
        Some((RegistrationState::Unregistered, None))
    );
    assert!(r.findings.iter().all(|f| match f.kind {
        FindingKind::HardcodedCredential(_) => f.registration.is_none(),
        _ => f.registration.is_some(),
    }));
}
