//! The crate's one error type, and source diagnostics with file, line and column.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while loading a schema, policies, entities or test
/// cases. Evaluation never returns this: a [`crate::Decision`] carries its own errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The schema did not parse or is inconsistent.
    #[error("invalid schema: {}", Diagnostics(.diagnostics))]
    Schema {
        /// Every problem found, each with its location.
        diagnostics: Vec<SourceDiagnostic>,
    },

    /// One or more policy sources did not parse or did not validate against the
    /// schema. No policy of the set becomes active.
    #[error("invalid policies: {}", Diagnostics(.diagnostics))]
    Policies {
        /// Every problem found, each with its location.
        diagnostics: Vec<SourceDiagnostic>,
    },

    /// An entity does not conform to the schema, or names an entity that does not exist.
    #[error("invalid entity `{uid}`: {message}")]
    Entity {
        /// The entity's Cedar uid, e.g. `Mandate::Tool::"github/create_issue"`.
        uid: String,
        /// What is wrong with it.
        message: String,
    },

    /// The entity set as a whole is invalid (duplicates, schema violations).
    #[error("invalid entities: {message}")]
    Entities {
        /// What is wrong.
        message: String,
    },

    /// A risk score outside `0..=100`.
    #[error("risk score `{0}` is out of range 0..=100")]
    RiskOutOfRange(u64),

    /// A string that names no action of the schema.
    #[error("unknown action `{0}`")]
    UnknownAction(String),

    /// A test case file is malformed.
    #[error("invalid test cases in `{file}`: {message}")]
    Cases {
        /// The case file.
        file: PathBuf,
        /// What is wrong, with a location or case name where known.
        message: String,
    },

    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// One problem in a source file: where it is and what it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceDiagnostic {
    /// The name the source was given (usually its path).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
    /// What is wrong, with Cedar's hint when it has one.
    pub message: String,
}

impl SourceDiagnostic {
    /// A diagnostic at byte `offset` of `text`.
    pub(crate) fn at_offset(file: &str, text: &str, offset: usize, message: String) -> Self {
        let (line, column) = line_column(text, offset);
        Self {
            file: file.to_owned(),
            line,
            column,
            message,
        }
    }

    /// Diagnostics for one Cedar error (and the errors related to it), located in
    /// `text`. An error without a source span is placed at 1:1.
    pub(crate) fn from_cedar(file: &str, text: &str, error: &dyn miette::Diagnostic) -> Vec<Self> {
        let mut out = Vec::new();
        let offset = error
            .labels()
            .and_then(|mut labels| labels.next())
            .map_or(0, |label| label.offset());
        let mut message = error.to_string();
        if let Some(help) = error.help() {
            message = format!("{message} (help: {help})");
        }
        out.push(Self::at_offset(file, text, offset, message));
        if let Some(related) = error.related() {
            for inner in related {
                out.extend(Self::from_cedar(file, text, inner));
            }
        }
        out
    }
}

impl fmt::Display for SourceDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Formats a list of diagnostics as `N problem(s): a; b`.
struct Diagnostics<'a>(&'a [SourceDiagnostic]);

impl fmt::Display for Diagnostics<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem{}", if n == 1 { "" } else { "s" })?;
        for (i, d) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            d.fmt(f)?;
        }
        Ok(())
    }
}

/// 1-based line and character column of byte `offset` in `text` (clamped to its end).
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (saturate(line), saturate(column))
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 1), (1, 2));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 4), "é is one column");
        assert_eq!(line_column(text, 8), (3, 1));
        assert_eq!(line_column(text, 99), (3, 2), "clamped to the end");
    }

    #[test]
    fn error_lists_every_diagnostic() {
        let d = |line| SourceDiagnostic {
            file: "a.cedar".into(),
            line,
            column: 3,
            message: "bad".into(),
        };
        let e = Error::Policies {
            diagnostics: vec![d(1), d(7)],
        };
        assert_eq!(
            e.to_string(),
            "invalid policies: 2 problems: a.cedar:1:3: bad; a.cedar:7:3: bad"
        );
    }
}
