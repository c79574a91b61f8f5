//! Database URLs.

use std::fmt;
use std::path::PathBuf;

use crate::Error;

/// Where the database is: a SQLite file or a PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` or `sqlite:PATH` (relative paths from the working
    /// directory).
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`, passed to the driver as is.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses a URL, refusing any other scheme or a malformed one.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if let Some(rest) = s.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() || path == ":memory:" {
                return Err(Error::InvalidUrl(
                    "a sqlite url needs a file path, e.g. `sqlite://mandate-data/mandate.db`"
                        .into(),
                ));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            let parsed = ::url::Url::parse(s)
                .map_err(|e| Error::InvalidUrl(format!("`{}`: {e}", redact(s))))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(Error::InvalidUrl(format!("`{}` has no host", redact(s))));
            }
            return Ok(DatabaseUrl::Postgres(s.to_owned()));
        }
        Err(Error::InvalidUrl(format!(
            "`{}` must start with `sqlite:` or `postgres://`",
            redact(s)
        )))
    }
}

/// The URL with any password replaced by `***`.
fn redact(s: &str) -> String {
    match ::url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => s.to_owned(),
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => f.write_str(&redact(u)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_and_postgres_urls_parse() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/m.db").ok(),
            Some(DatabaseUrl::Sqlite("data/m.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:/abs/m.db").ok(),
            Some(DatabaseUrl::Sqlite("/abs/m.db".into()))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/test"),
            Ok(DatabaseUrl::Postgres(_))
        ));
    }

    #[test]
    fn other_schemes_and_malformed_urls_are_refused() {
        for bad in [
            "mysql://x/y",
            "postgres://",
            "sqlite:",
            "sqlite::memory:",
            "nonsense",
            "postgres://[::1/x",
        ] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_show() {
        let u = DatabaseUrl::parse("postgres://u:s3cret@db/x");
        let shown = u.map(|u| format!("{u} {u:?}")).unwrap_or_default();
        assert!(!shown.contains("s3cret"));
        assert!(shown.contains("***"));
    }
}
