//! The walk: .gitignore, binaries, size limit, symlinks, excludes, bad roots.

use std::path::PathBuf;

use mandate_discover::{DiscoverError, ScanOptions, github_checksum, scan};

fn token() -> String {
    let body = "FAKEEXAMPLEwalkTestToken000001";
    format!("ghp_{body}{}", github_checksum(body))
}

fn write(dir: &std::path::Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn paths(r: &mandate_discover::Report) -> Vec<String> {
    r.findings.iter().map(|f| f.path.clone()).collect()
}

#[test]
fn gitignore_is_respected_outside_git_too() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), ".gitignore", "local.env\n");
    write(d.path(), "local.env", &format!("T={}\n", token()));
    write(d.path(), "kept.env", &format!("T={}\n", token()));
    let r = scan(&[d.path().to_path_buf()], &ScanOptions::default()).unwrap();
    let p = paths(&r);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].ends_with("kept.env"));
}

#[test]
fn size_limit_is_configurable() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "a.env",
        &format!("{}\nT={}\n", "#".repeat(200), token()),
    );
    let small = ScanOptions {
        max_file_size: 100,
        ..ScanOptions::default()
    };
    let r = scan(&[d.path().to_path_buf()], &small).unwrap();
    assert!(r.findings.is_empty());
    assert!(r.skipped[0].reason.starts_with("too large"));
    let r = scan(&[d.path().to_path_buf()], &ScanOptions::default()).unwrap();
    assert_eq!(r.findings.len(), 1);
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_tree_are_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.env", &format!("T={}\n", token()));
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "README.md", "nothing here\n");
    std::os::unix::fs::symlink(outside.path(), d.path().join("linked-dir")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.env"),
        d.path().join("linked.env"),
    )
    .unwrap();
    let r = scan(&[d.path().to_path_buf()], &ScanOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.files_scanned, 1);
    assert!(r.skipped.iter().all(|s| s.reason.starts_with("symlink")));
}

#[test]
fn exclude_globs_skip_paths() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "vendor/x/a.env", &format!("T={}\n", token()));
    write(d.path(), "src/a.env", &format!("T={}\n", token()));
    let opts = ScanOptions {
        excludes: vec!["vendor/".into()],
        ..ScanOptions::default()
    };
    let r = scan(&[d.path().to_path_buf()], &opts).unwrap();
    let p = paths(&r);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].ends_with("src/a.env"));
    let bad = ScanOptions {
        excludes: vec!["a/**[".into()],
        ..ScanOptions::default()
    };
    assert!(matches!(
        scan(&[d.path().to_path_buf()], &bad),
        Err(DiscoverError::InvalidGlob { .. })
    ));
}

#[test]
fn a_missing_root_is_an_error() {
    let r = scan(
        &[PathBuf::from("/nonexistent/mandate-discover-test")],
        &ScanOptions::default(),
    );
    assert!(matches!(r, Err(DiscoverError::UnreadableRoot { .. })));
    assert!(matches!(
        scan(&[], &ScanOptions::default()),
        Err(DiscoverError::NoPaths)
    ));
}
