//! Agent definitions in the common frameworks and SDKs, found from imports
//! (which say which framework a file uses) and the constructors or factory
//! calls that define an agent, plus CrewAI's `agents.yaml`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use crate::credentials::{LineIndex, re};
use crate::finding::{AgentDefinition, Finding, FindingKind, Registration};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Js,
}

impl Lang {
    fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "py" | "pyi" => Some(Self::Python),
            "js" | "mjs" | "cjs" | "jsx" | "ts" | "mts" | "cts" | "tsx" => Some(Self::Js),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Js => "javascript",
        }
    }

    fn is_comment(self, trimmed: &str) -> bool {
        match self {
            Self::Python => trimmed.starts_with('#'),
            Self::Js => trimmed.starts_with("//") || trimmed.starts_with('*'),
        }
    }
}

/// A framework: the import that says a file uses it, and the calls that
/// define an agent.
struct Framework {
    id: &'static str,
    lang: Lang,
    import: Regex,
    defs: Vec<Regex>,
}

/// In claim order: a call matched by an earlier framework is not reported
/// again by a later one.
static FRAMEWORKS: LazyLock<Vec<Framework>> = LazyLock::new(|| {
    let fw = |id, lang, import: &str, defs: &[&str]| Framework {
        id,
        lang,
        import: re(import),
        defs: defs.iter().map(|d| re(d)).collect(),
    };
    let js_import = |module: &str| {
        format!(r#"(?:\bfrom\s+|\brequire\(\s*|\bimport\(\s*)["']{module}(?:/[\w./-]+)?["']"#)
    };
    use Lang::{Js, Python};
    vec![
        fw(
            "openai-agents",
            Python,
            r"^\s*(?:from\s+agents(?:\.[\w.]+)?\s+import\b|import\s+agents\b)",
            &[r"\bAgent(?:\[[^\]]*\])?\("],
        ),
        fw(
            "crewai",
            Python,
            r"^\s*(?:from|import)\s+crewai\b",
            &[r"\bAgent\("],
        ),
        fw(
            "langchain",
            Python,
            r"^\s*(?:from|import)\s+(?:langchain|langgraph)\w*\b",
            &[
                r"\b(?:create_react_agent|create_agent|create_supervisor|create_swarm|create_tool_calling_agent|create_openai_functions_agent|create_openai_tools_agent|create_structured_chat_agent|initialize_agent|AgentExecutor|StateGraph)\(",
            ],
        ),
        fw(
            "autogen",
            Python,
            r"^\s*(?:from|import)\s+(?:autogen|autogen_agentchat|autogen_ext|autogen_core)\b",
            &[
                r"\b(?:AssistantAgent|UserProxyAgent|ConversableAgent|GroupChatManager|CodeExecutorAgent|SocietyOfMindAgent)\(",
            ],
        ),
        fw(
            "llamaindex",
            Python,
            r"^\s*(?:from|import)\s+llama_index\b",
            &[
                r"\b(?:ReActAgent|FunctionAgent|AgentWorkflow|FunctionCallingAgent|OpenAIAgent|CodeActAgent|AgentRunner)(?:\.from_tools(?:_or_functions)?)?\(",
            ],
        ),
        fw(
            "mcp",
            Python,
            r"^\s*(?:from|import)\s+(?:mcp|fastmcp)\b",
            &[r"\bFastMCP\(", r"\bServer\(", r"\bClientSession\("],
        ),
        fw(
            "anthropic",
            Python,
            r"^\s*(?:from|import)\s+anthropic\b",
            &[r"\b(?:Anthropic|AsyncAnthropic|AnthropicBedrock|AnthropicVertex)\("],
        ),
        fw(
            "openai",
            Python,
            r"^\s*(?:from|import)\s+openai\b",
            &[r"\b(?:OpenAI|AsyncOpenAI|AzureOpenAI|AsyncAzureOpenAI)\("],
        ),
        fw(
            "openai-agents",
            Js,
            &js_import("@openai/agents(?:-[\\w-]+)?"),
            &[r"\bnew\s+Agent\(", r"\bAgent\.create\("],
        ),
        fw(
            "langchain",
            Js,
            &js_import("(?:@langchain/[\\w-]+|langchain)"),
            &[
                r"\b(?:createReactAgent|createAgent|createToolCallingAgent|createOpenAIFunctionsAgent|createOpenAIToolsAgent|createSupervisor)\(",
                r"\bnew\s+(?:StateGraph|AgentExecutor)\(",
                r"\bAgentExecutor\.fromAgentAndTools\(",
            ],
        ),
        fw(
            "llamaindex",
            Js,
            &js_import("(?:llamaindex|@llamaindex/[\\w-]+)"),
            &[
                r"\bnew\s+(?:ReActAgent|OpenAIAgent|AgentWorkflow)\(",
                r"\bagent\(\s*\{",
            ],
        ),
        fw(
            "mcp",
            Js,
            &js_import("@modelcontextprotocol/sdk"),
            &[r"\bnew\s+(?:McpServer|Server|Client)\("],
        ),
        fw(
            "anthropic",
            Js,
            &js_import("@anthropic-ai/sdk"),
            &[r"\bnew\s+Anthropic\w*\("],
        ),
        fw(
            "openai",
            Js,
            &js_import("openai"),
            &[r"\bnew\s+(?:OpenAI|AzureOpenAI)\("],
        ),
    ]
});

static NAME_KW: LazyLock<Regex> =
    LazyLock::new(|| re(r#"\bname\s*[=:]\s*["'`]([^"'`\n]{1,100})["'`]"#));
static CREW_CONFIG: LazyLock<Regex> =
    LazyLock::new(|| re(r#"agents_config\s*\[\s*["']([\w-]{1,100})["']"#));
static ROLE_KW: LazyLock<Regex> =
    LazyLock::new(|| re(r#"\brole\s*[=:]\s*["'`]([^"'`\n]{1,100})["'`]"#));
static POSITIONAL: LazyLock<Regex> = LazyLock::new(|| re(r#"^\(\s*["'`]([^"'`\n]{1,100})["'`]"#));

/// How far past an opening parenthesis the name is looked for.
const CALL_WINDOW: usize = 2000;

/// Finds the agent definitions in one file.
pub(crate) fn find(path: &Path, display: &str, text: &str) -> Vec<Finding> {
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    if matches!(file, "agents.yaml" | "agents.yml") {
        return crew_yaml(display, text);
    }
    let Some(lang) = Lang::of(path) else {
        return Vec::new();
    };
    let index = LineIndex::new(text);
    let lines: Vec<&str> = text.split('\n').collect();
    let code = |l: &&str| {
        let t = l.trim_start();
        !lang.is_comment(t)
    };
    let in_docstring = docstring_lines(lang, &lines);
    let mut claimed = HashSet::new();
    let mut out = Vec::new();
    for fw in FRAMEWORKS.iter().filter(|f| f.lang == lang) {
        // An import alone is no definition (it is mostly for type hints);
        // it only says which calls to look for.
        if !lines
            .iter()
            .filter(|l| code(l))
            .any(|l| fw.import.is_match(l))
        {
            continue;
        }
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            if !code(l) || is_declaration(t) || in_docstring.get(i).copied().unwrap_or(false) {
                continue;
            }
            let Some((start, _)) = index.line(text, i + 1) else {
                continue;
            };
            for def in &fw.defs {
                for m in def.find_iter(l) {
                    if inside_string(&l[..m.start()]) || !claimed.insert(start + m.start()) {
                        continue;
                    }
                    let paren = m.as_str().find('(').map_or(m.end(), |p| m.start() + p);
                    let name = call_name(text, start + paren);
                    out.push(agent(display, i + 1, fw.id, lang.name(), name, m.as_str()));
                }
            }
        }
    }
    out
}

/// Which lines lie inside a Python triple-quoted string (docstring
/// examples are not definitions). The opening and closing lines count as
/// inside too.
fn docstring_lines(lang: Lang, lines: &[&str]) -> Vec<bool> {
    let mut open = false;
    lines
        .iter()
        .map(|l| {
            if lang != Lang::Python {
                return false;
            }
            let quotes = l.matches("\"\"\"").count() + l.matches("'''").count();
            let was_open = open;
            if quotes % 2 == 1 {
                open = !open;
            }
            was_open || quotes > 0
        })
        .collect()
}

/// True when `before` (a line up to a match) leaves a string open, as in
/// `f"Agent(role={self.role})"`.
fn inside_string(before: &str) -> bool {
    ['"', '\'', '`']
        .iter()
        .any(|q| before.matches(*q).count() % 2 == 1)
}

fn is_declaration(trimmed: &str) -> bool {
    [
        "def ",
        "async def ",
        "class ",
        "function ",
        "export function ",
        "export async function ",
        "import ",
        "from ",
    ]
    .iter()
    .any(|p| trimmed.starts_with(p))
}

fn agent(
    display: &str,
    line: usize,
    framework: &str,
    language: &str,
    name: Option<String>,
    evidence: &str,
) -> Finding {
    let evidence = evidence.split_whitespace().collect::<Vec<_>>().join(" ");
    Finding {
        rule_id: "mandate/agent-definition".to_owned(),
        path: display.to_owned(),
        line,
        kind: FindingKind::AgentDefinition(AgentDefinition {
            framework: framework.to_owned(),
            language: language.to_owned(),
            name,
            evidence,
        }),
        registration: Some(Registration::unknown()),
    }
}

/// The name given in a call starting at the `(` at byte `paren`: a `name`
/// argument, a CrewAI `agents_config["x"]`, a `role`, or a leading string.
fn call_name(text: &str, paren: usize) -> Option<String> {
    let window = call_text(text, paren)?;
    [&*NAME_KW, &*CREW_CONFIG, &*ROLE_KW, &*POSITIONAL]
        .iter()
        .find_map(|r| r.captures(window))
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim().to_owned())
        .filter(|n| !n.is_empty())
}

/// The text of a call from its `(` to the matching `)`, bounded.
fn call_text(text: &str, paren: usize) -> Option<&str> {
    let rest = text.get(paren..)?;
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        if i > CALL_WINDOW {
            break;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth <= 0 {
                    return rest.get(..=i);
                }
            }
            _ => {}
        }
    }
    let mut end = CALL_WINDOW.min(rest.len());
    while !rest.is_char_boundary(end) {
        end -= 1;
    }
    rest.get(..end)
}

/// CrewAI `agents.yaml`: each top-level key whose value has a `role` or
/// `goal` is an agent.
fn crew_yaml(display: &str, text: &str) -> Vec<Finding> {
    let Ok(serde_norway::Value::Mapping(map)) = serde_norway::from_str(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in &map {
        let Some(name) = k.as_str() else { continue };
        let is_agent = v.get("role").is_some() || v.get("goal").is_some();
        if !is_agent {
            continue;
        }
        let line = text
            .lines()
            .position(|l| {
                l.strip_prefix(name)
                    .or_else(|| l.strip_prefix(&format!("\"{name}\"")))
                    .is_some_and(|r| r.trim_start().starts_with(':'))
            })
            .map_or(1, |i| i + 1);
        out.push(agent(
            display,
            line,
            "crewai",
            "yaml",
            Some(name.to_owned()),
            "agents.yaml",
        ));
    }
    out
}
