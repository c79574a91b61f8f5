//! The file walk: `.gitignore` respected, `.git` skipped, symlinks never
//! followed, binaries and large files listed instead of read.

use std::io::Read;
use std::path::Path;

use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;

use crate::{DiscoverError, ScanOptions, Skipped};

/// How many leading bytes are checked for NUL to call a file binary (as git does).
const BINARY_PROBE: usize = 8000;

/// One file the walk reached.
pub(crate) enum Visit {
    /// A text file and its contents (invalid UTF-8 replaced).
    Text {
        /// Path with `/` separators.
        display: String,
        /// Contents.
        text: String,
    },
    /// A file that was not read.
    Skipped(Skipped),
}

/// A path with `/` separators, for output.
pub(crate) fn display_path(p: &Path) -> String {
    let s = p.to_string_lossy();
    let s = if std::path::MAIN_SEPARATOR == '/' {
        s.into_owned()
    } else {
        s.replace(std::path::MAIN_SEPARATOR, "/")
    };
    s.strip_prefix("./").map(str::to_owned).unwrap_or(s)
}

/// Walks `root` and calls `visit` for each regular file, in path order.
pub(crate) fn walk(
    root: &Path,
    options: &ScanOptions,
    mut visit: impl FnMut(Visit),
) -> Result<(), DiscoverError> {
    let mut builder = WalkBuilder::new(root);
    builder
        .follow_links(false)
        .hidden(false)
        .ignore(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .parents(true)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| e.file_name() != ".git");
    if !options.excludes.is_empty() {
        let mut ob = OverrideBuilder::new(root);
        for glob in &options.excludes {
            ob.add(&format!("!{glob}"))
                .map_err(|e| DiscoverError::InvalidGlob {
                    glob: glob.clone(),
                    reason: e.to_string(),
                })?;
        }
        let overrides = ob.build().map_err(|e| DiscoverError::InvalidGlob {
            glob: options.excludes.join(", "),
            reason: e.to_string(),
        })?;
        builder.overrides(overrides);
    }
    for entry in builder.build() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = error_path(&e).unwrap_or_else(|| display_path(root));
                visit(Visit::Skipped(Skipped {
                    path,
                    reason: format!("unreadable: {e}"),
                }));
                continue;
            }
        };
        let Some(ft) = entry.file_type() else {
            continue;
        };
        let display = display_path(entry.path());
        if ft.is_symlink() {
            // INVARIANT (no-escape): links are never followed, so nothing
            // outside the given roots is read through one.
            visit(Visit::Skipped(Skipped {
                path: display,
                reason: "symlink (not followed)".to_owned(),
            }));
            continue;
        }
        if !ft.is_file() {
            continue;
        }
        visit(read(entry.path(), display, options.max_file_size));
    }
    Ok(())
}

fn read(path: &Path, display: String, max: u64) -> Visit {
    let skipped = |reason: String| {
        Visit::Skipped(Skipped {
            path: display.clone(),
            reason,
        })
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return skipped(format!("unreadable: {e}")),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max {
        return skipped(format!("too large ({len} bytes > {max})"));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // Read at most max + 1 bytes: a file that grew meanwhile is still bounded.
    if let Err(e) = file.take(max.saturating_add(1)).read_to_end(&mut bytes) {
        return skipped(format!("unreadable: {e}"));
    }
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
        return skipped(format!("too large (> {max} bytes)"));
    }
    if bytes.iter().take(BINARY_PROBE).any(|&b| b == 0) {
        return skipped("binary".to_owned());
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Visit::Text { display, text }
}

fn error_path(e: &ignore::Error) -> Option<String> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(display_path(path)),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}
