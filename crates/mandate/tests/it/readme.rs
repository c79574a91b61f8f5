//! The README's tour, run as written: its shell block, against a fresh
//! server, in a directory that has what a clone has (`testdata/`,
//! `examples/`). Only the addresses are changed (the test's server and demo
//! upstream listen on free ports, `MANDATE_URL` names the server's) and the
//! binary is the one under test.

use std::path::Path;
use std::process::Command;

use crate::harness::{BIN, Server, stderr, stdout};

const README: &str = include_str!("../../../../README.md");

/// The first `sh` block after the tour's heading.
fn tour() -> &'static str {
    let from = README
        .find("## A short tour of the CLI")
        .expect("the README has its tour");
    let rest = &README[from..];
    let start = rest.find("```sh\n").expect("a shell block") + "```sh\n".len();
    let len = rest[start..].find("```").expect("the block ends");
    &rest[start..start + len]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn readme_tour_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for d in ["testdata", "examples"] {
        std::os::unix::fs::symlink(repo.join(d).canonicalize().unwrap(), dir.path().join(d))
            .unwrap();
    }
    let server = Server::start(&dir.path().join("mandate-data"), None);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let upstream = format!("127.0.0.1:{}", free_port());

    // A failing line must not leave the demo upstream holding the output.
    let script = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n".to_owned()
        + &tour()
            .replace("cargo build -p mandate\n", "")
            .replace("mandate=./target/debug/mandate", &format!("mandate={BIN}"))
            .replace("127.0.0.1:8420", &addr)
            .replace("127.0.0.1:9000", &upstream);
    assert!(script.contains("$mandate dev upstream"), "{script}");
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        // The README's server is at the default URL; this one is elsewhere.
        .env("MANDATE_URL", &server.url)
        .env_remove("MANDATE_TOKEN")
        .env_remove("MANDATE_TOKEN_FILE")
        .env_remove("MANDATE_DATA_DIR")
        .env("MANDATE_LOG", "warn")
        .output()
        .unwrap();
    let (so, se) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "the tour failed:\n{so}\n{se}");
    // What a reader is told to expect, shown.
    assert!(so.contains("mapped: agent invoice-bot"), "{so}");
    assert!(so.contains("\"access_token\""), "{so}");
    assert!(
        so.contains(r#""api_key_received":true"#),
        "the gateway call reached the demo upstream with the injected key:\n{so}\n{se}"
    );
    assert!(!so.contains("the-upstream-api-key"), "{so}");
    drop(server);
}
