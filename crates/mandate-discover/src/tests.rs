//! Unit tests of the building blocks; finders over realistic files are in
//! `tests/it`.

use super::*;

#[test]
fn every_builtin_pattern_compiles() {
    // Forces every lazily compiled pattern.
    let text =
        "from agents import Agent\nAgent(name=\"x\")\nimport { Agent } from \"@openai/agents\";\n";
    assert!(!scan_text(Path::new("a.py"), text).is_empty());
    // TypeScript: an import alone defines nothing, and the Python call is no
    // TypeScript definition.
    assert!(scan_text(Path::new("a.ts"), text).is_empty());
    let _ = scan_text(Path::new("x/.vscode/mcp.json"), "{}");
    let _ = scan_text(Path::new("agents.yaml"), "a: {role: r}");
}

#[test]
fn calls_in_strings_and_docstrings_are_not_definitions() {
    let text = "from crewai import Agent\n\"\"\"Example:\n\n    agent = Agent(role=\"x\")\n\"\"\"\nr = f\"Agent(role={1})\"\nreal = Agent(role=\"Researcher\")\n";
    let found = scan_text(Path::new("a.py"), text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].line, found[0].name()), (7, Some("Researcher")));
}

#[test]
fn github_checksum_matches_an_independent_computation() {
    // CRC32 (IEEE) of the body is 0xfd0e9ed9, in base62 (0-9A-Za-z) `4dK4td`,
    // as computed with Python's zlib.crc32 (and tests/fixtures/discovery/generate.py).
    let body = "FAKEEXAMPLEmandateDiscover0001";
    assert_eq!(crc32fast::hash(body.as_bytes()), 0xfd0e_9ed9);
    let sum = github_checksum(body);
    assert_eq!(sum, "4dK4td");
    assert!(github_token_is_valid(&format!("ghp_{body}{sum}")));
    assert!(!github_token_is_valid(&format!("ghp_{body}000000")));
    assert!(!github_token_is_valid(&format!("ghx_{body}{sum}")));
}

#[test]
fn aws_account_ids_decode_as_documented() {
    assert_eq!(
        aws_account_id("AKIAIOSFODNN7EXAMPLE").as_deref(),
        Some("581039954779")
    );
    assert_eq!(
        aws_account_id("ASIAY34FZKBOKMUTVV7A").as_deref(),
        Some("609629065308")
    );
    assert_eq!(aws_account_id("AKIA0000000000000000"), None);
}

#[test]
fn masks_never_show_the_whole_value() {
    assert_eq!(mask("ghp_abcdefghijklmnop"), "ghp_…op");
    assert_eq!(mask("short"), "****");
    assert_eq!(fingerprint("a").len(), 64);
}

#[test]
fn entropy_separates_words_from_keys() {
    assert!(shannon_entropy("aaaaaaaaaaaaaaaa") < 1.0);
    assert!(shannon_entropy("Zq8vN3kLw2Xp9Rt5") > 3.5);
}

mod properties {
    use std::path::Path;

    use proptest::prelude::*;

    use crate::{github_checksum, github_token_is_valid, jsonc, mask, scan_text};

    /// File names that select every finder.
    const NAMES: [&str; 10] = [
        "a.py",
        "a.ts",
        ".env",
        "agents.yaml",
        "x/.vscode/mcp.json",
        "x/.continue/config.yaml",
        "claude_desktop_config.json",
        "settings.json",
        "mcp.json",
        "key.pem",
    ];

    fn texty() -> impl Strategy<Value = String> {
        // Fragments that steer the finders into their parsers, glued by
        // arbitrary text.
        let piece = prop_oneof![
            Just("{\"mcpServers\": {\"a\": {\"command\": \"x\", \"env\": {".to_owned()),
            Just("\"context_servers\"".to_owned()),
            Just("from agents import Agent\nAgent(name=\"".to_owned()),
            Just("import { Agent } from \"@openai/agents\"; new Agent({".to_owned()),
            Just("-----BEGIN PRIVATE KEY-----\n".to_owned()),
            Just("-----END PRIVATE KEY-----".to_owned()),
            Just("API_KEY = \"".to_owned()),
            Just("AKIA".to_owned()),
            Just("ghp_".to_owned()),
            Just("/* // \\ \" , ] }".to_owned()),
            "\\PC{0,40}",
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn finders_never_panic_and_lines_are_in_range(text in texty(), n in 0usize..NAMES.len()) {
            let lines = text.split('\n').count();
            for f in scan_text(Path::new(NAMES[n]), &text) {
                prop_assert!(f.line >= 1 && f.line <= lines, "{f:?}");
            }
        }

        #[test]
        fn jsonc_keeps_line_count(text in texty()) {
            prop_assert_eq!(jsonc::strip(&text).matches('\n').count(), text.matches('\n').count());
        }

        #[test]
        fn masks_hide_all_but_six_characters(v in "\\PC{12,80}") {
            let m = mask(&v);
            prop_assert_eq!(m.chars().count(), 7);
            prop_assert!(!m.contains(v.as_str()));
        }

        #[test]
        fn generated_github_tokens_validate(body in "[A-Za-z0-9]{30}") {
            let sum = github_checksum(&body);
            let token = format!("ghp_{body}{sum}");
            prop_assert!(github_token_is_valid(&token));
        }
    }
}
