//! MCP server configurations of the common clients.

use std::path::Path;

use serde_json::Value;

use crate::credentials::{LineIndex, looks_like_secret, provider_match};
use crate::finding::{Finding, FindingKind, McpServer, Registration, Transport, mask};
use crate::jsonc;

/// Where a client keeps its servers.
struct Format {
    client: &'static str,
    /// Paths (object keys) to the server collection, tried in order.
    containers: &'static [&'static [&'static str]],
    yaml: bool,
}

const MCP_SERVERS: &[&[&str]] = &[&["mcpServers"]];

/// Recognises a client configuration by its file name and directory.
fn format_of(path: &Path, text: &str) -> Option<Format> {
    let name = path.file_name()?.to_str()?;
    let parent = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|p| p.to_str())
        .unwrap_or("");
    let grandparent = path
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|p| p.to_str())
        .unwrap_or("");
    let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
    let f = |client, containers, yaml| {
        Some(Format {
            client,
            containers,
            yaml,
        })
    };
    match (parent, name) {
        (_, "claude_desktop_config.json") => f("claude-desktop", MCP_SERVERS, false),
        (_, ".mcp.json") => f("claude-code", MCP_SERVERS, false),
        (".cursor", "mcp.json") => f("cursor", MCP_SERVERS, false),
        (".vscode", "mcp.json") => f("vscode", &[&["servers"]], false),
        (".vscode", "settings.json") => f("vscode", &[&["mcp", "servers"]], false),
        (_, "mcp_config.json") => f("windsurf", MCP_SERVERS, false),
        (".continue", "config.json") => f(
            "continue",
            &[
                &["mcpServers"],
                &["experimental", "modelContextProtocolServers"],
            ],
            false,
        ),
        (".continue", n) if is_yaml && n.starts_with("config.") => f("continue", MCP_SERVERS, true),
        ("mcpServers", _) if is_yaml && grandparent == ".continue" => {
            f("continue", MCP_SERVERS, true)
        }
        (_, "settings.json") if text.contains("\"context_servers\"") => {
            f("zed", &[&["context_servers"]], false)
        }
        (_, "mcp.json") => f("generic", &[&["mcpServers"], &["servers"]], false),
        (_, n) if n.ends_with(".json") && text.contains("\"mcpServers\"") => {
            f("generic", MCP_SERVERS, false)
        }
        (_, _) if is_yaml && text.contains("mcpServers:") => f("generic", MCP_SERVERS, true),
        _ => None,
    }
}

/// Finds the MCP servers in one file, if it is a client configuration.
pub(crate) fn find(path: &Path, display: &str, text: &str) -> Vec<Finding> {
    let Some(format) = format_of(path, text) else {
        return Vec::new();
    };
    let doc = if format.yaml {
        serde_norway::from_str::<serde_norway::Value>(text)
            .ok()
            .and_then(|v| serde_json::to_value(v).ok())
    } else {
        jsonc::parse(text)
    };
    let Some(doc) = doc else {
        return Vec::new();
    };
    let lines = LineIndex::new(text);
    let mut out = Vec::new();
    for container in format.containers {
        let Some(servers) = container.iter().try_fold(&doc, |v, k| v.get(k)) else {
            continue;
        };
        let Some(key) = container.last() else {
            continue;
        };
        let from = find_key(text, key, format.yaml, 0).unwrap_or(0);
        let entries: Vec<(String, &Value)> = match servers {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let name = v
                        .get("name")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("server-{}", i + 1), str::to_owned);
                    (name, v)
                })
                .collect(),
            _ => continue,
        };
        for (name, cfg) in entries {
            let Some(server) = server(format.client, &name, cfg) else {
                continue;
            };
            let at = if matches!(servers, Value::Array(_)) {
                find_list_name(text, &name, from)
            } else {
                find_key(text, &name, format.yaml, from)
            };
            out.push(Finding {
                rule_id: "mandate/mcp-server".to_owned(),
                path: display.to_owned(),
                line: lines.line_of(at.unwrap_or(from)),
                kind: FindingKind::McpServer(server),
                registration: Some(Registration::unknown()),
            });
        }
    }
    out
}

/// Reads one server entry; `None` when it names no command or URL.
fn server(client: &str, name: &str, cfg: &Value) -> Option<McpServer> {
    // Continue's older form nests the launch details under `transport`.
    let t = cfg
        .get("transport")
        .filter(|t| t.is_object())
        .unwrap_or(cfg);
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    // Zed's older form: "command": { "path", "args", "env" }.
    let cmd_obj = t.get("command").filter(|c| c.is_object());
    let launch = cmd_obj.unwrap_or(t);
    let program = cmd_obj.map_or_else(|| str_of(t, "command"), |c| str_of(c, "path"));
    let command = program.map(|p| {
        let args: Vec<String> = launch
            .get("args")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(quote_arg).collect())
            .unwrap_or_default();
        std::iter::once(p).chain(args).collect::<Vec<_>>().join(" ")
    });
    let url = str_of(t, "url")
        .or_else(|| str_of(t, "serverUrl"))
        .or_else(|| str_of(t, "httpUrl"))
        .map(|u| redact_url(&u));
    if command.is_none() && url.is_none() {
        return None;
    }
    let declared = str_of(t, "type").or_else(|| str_of(cfg, "transport"));
    let transport = match declared.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("stdio") => Transport::Stdio,
        Some("sse") => Transport::Sse,
        Some("http" | "streamable-http" | "streamablehttp" | "streamable_http") => Transport::Http,
        _ if command.is_some() => Transport::Stdio,
        _ if url
            .as_deref()
            .is_some_and(|u| u.trim_end_matches('/').ends_with("/sse")) =>
        {
            Transport::Sse
        }
        _ => Transport::Http,
    };
    let mut inline = Vec::new();
    for (section, map) in [
        ("env", launch.get("env").or_else(|| t.get("env"))),
        ("headers", t.get("headers")),
        (
            "headers",
            t.get("requestOptions").and_then(|r| r.get("headers")),
        ),
    ] {
        let Some(Value::Object(map)) = map else {
            continue;
        };
        for (k, v) in map {
            if let Some(v) = v.as_str()
                && is_inline_credential(section, k, v)
            {
                inline.push(format!("{section}.{k}"));
            }
        }
    }
    inline.sort();
    inline.dedup();
    Some(McpServer {
        client: client.to_owned(),
        name: name.to_owned(),
        transport,
        command,
        url,
        inline_credentials: inline,
    })
}

/// An argument for display: secret-looking values (whole, or after `=`)
/// are masked, arguments with spaces quoted.
fn quote_arg(a: &str) -> String {
    let shown = redact(a);
    if shown.is_empty() || shown.contains(char::is_whitespace) {
        format!("{shown:?}")
    } else {
        shown
    }
}

fn redact(a: &str) -> String {
    // Paths and package names (`/Users/x/Documents`, `@scope/pkg@1`) are
    // random-looking but not secrets; a provider format still counts.
    let secret = |v: &str| {
        if v.contains('/') || v.contains('@') {
            provider_match(v)
        } else {
            looks_like_secret(v)
        }
    };
    match a.split_once('=') {
        Some((k, v)) if secret(v) => format!("{k}={}", mask(v)),
        None if secret(a) => mask(a),
        _ => a.to_owned(),
    }
}

/// A URL for display, with secret-looking query values and userinfo masked.
fn redact_url(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest
                .split_once('/')
                .map_or((rest, ""), |(a, _)| (a, &rest[a.len()..]));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://****@{host}{path}"),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if query.is_empty() {
        return base;
    }
    let q: Vec<String> = query.split('&').map(redact).collect();
    format!("{base}?{}", q.join("&"))
}

/// A value is a reference when it names a variable or input instead of
/// holding the secret: `${VAR}`, `${env:VAR}`, `${input:id}`, `$VAR`, `{{x}}`.
pub(crate) fn is_reference(value: &str) -> bool {
    let v = value.trim();
    v.is_empty() || v.contains("${") || v.starts_with('$') || v.contains("{{")
}

/// An env or header entry holds a credential inline when its value is not a
/// reference and its name or value looks secret.
fn is_inline_credential(section: &str, key: &str, value: &str) -> bool {
    if is_reference(value) {
        return false;
    }
    let secret_name = {
        let k = key.to_ascii_lowercase();
        [
            "key",
            "token",
            "secret",
            "passw",
            "credential",
            "auth",
            "pat",
            "cookie",
        ]
        .iter()
        .any(|w| k.contains(w))
    };
    let value_part = value.rsplit(' ').next().unwrap_or(value);
    if section == "headers" && secret_name {
        return true;
    }
    (secret_name && value_part.len() >= 8) || looks_like_secret(value_part)
}

/// Byte offset of the first `"key":` (or `key:` in YAML) at or after `from`.
fn find_key(text: &str, key: &str, yaml: bool, from: usize) -> Option<usize> {
    let k = regex::escape(key);
    let pattern = if yaml {
        format!(r#"(?m)^\s*["']?{k}["']?\s*:"#)
    } else {
        format!(r#""{k}"\s*:"#)
    };
    let hay = text.get(from..)?;
    let m = regex::Regex::new(&pattern).ok()?.find(hay)?;
    // Point at the key itself, not the indentation before it.
    let lead = m.as_str().len() - m.as_str().trim_start().len();
    Some(from + m.start() + lead)
}

/// Byte offset of a list entry's `name: <name>` (YAML) or `"name": "<name>"`.
fn find_list_name(text: &str, name: &str, from: usize) -> Option<usize> {
    let n = regex::escape(name);
    let pattern = format!(r#"["']?name["']?\s*:\s*["']?{n}["']?"#);
    let hay = text.get(from..)?;
    regex::Regex::new(&pattern)
        .ok()?
        .find(hay)
        .map(|m| from + m.start())
}
