//! Configuration errors stop the server before it binds (exit 64).

use std::process::Command;

use crate::harness::{BIN, stderr};

fn serve(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .arg("serve")
        .args(args)
        .current_dir(dir)
        .env_remove("MANDATE_DATABASE")
        .env_remove("MANDATE_DATA_DIR")
        .env_remove("MANDATE_LISTEN")
        .output()
        .unwrap()
}

#[test]
fn unknown_config_key_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // Hold the port: had the server tried to bind, it would fail with 69.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().to_string();
    std::fs::write(
        dir.path().join("mandate.toml"),
        "listen = \"127.0.0.1:0\"\nlisten_adress = \"x\"\n",
    )
    .unwrap();
    let out = serve(&["--config", "mandate.toml", "--listen", &port], dir.path());
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("listen_adress") && stderr(&out).contains("mandate.toml"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("mandate-data").exists(),
        "nothing may be created before validation"
    );
}

#[test]
fn invalid_database_url_exits_64_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().to_string();
    for bad in ["mysql://root@localhost/x", "postgres://", "not a url"] {
        let out = serve(&["--database", bad, "--listen", &port], dir.path());
        assert_eq!(out.status.code(), Some(64), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("database"), "{}", stderr(&out));
    }
}

#[test]
fn unreadable_config_file_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve(&["--config", "nope.toml"], dir.path());
    assert_eq!(out.status.code(), Some(64));
    assert!(stderr(&out).contains("nope.toml"));
}

#[test]
fn port_in_use_is_reported_with_exit_69() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().to_string();
    let out = serve(&["--listen", &port], dir.path());
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(stderr(&out).contains(&port));
}

/// A misspelt variable would leave its setting at the default without a
/// word; the server names it, and its log (not a terminal here) carries no
/// colour codes.
#[test]
fn a_misspelt_environment_variable_is_warned_about_in_a_plain_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--database", "mysql://x/y"])
        .current_dir(dir.path())
        .env_remove("MANDATE_DATABASE")
        .env("MANDATE_DATABSE", "postgres://db/x")
        .env("MANDATE_LOG", "info")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("unknown environment variable MANDATE_DATABSE is ignored; did you mean MANDATE_DATABASE?"),
        "{err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "ANSI escape codes in a log: {err:?}"
    );
}
