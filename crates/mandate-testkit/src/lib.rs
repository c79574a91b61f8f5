//! `mandate-testkit` holds what Mandate's tests share: a fake [`Clock`], and
//! temporary databases on both backends ([`TestDb`]). Test-only: nothing
//! here is linked into the binary.
//!
//! PostgreSQL tests read `MANDATE_TEST_POSTGRES_URL` (an admin connection to
//! a server); each [`TestDb::postgres`] creates a fresh database there and
//! drops it afterwards. When the variable is unset they skip, recorded by
//! [`skip`] (the test command lists every skip; under `CI` a skip fails).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

pub mod oidc;

use std::sync::Mutex;
use std::time::Duration;

use mandate_core::Clock;
use mandate_store::{DatabaseUrl, Store};
use sqlx::Connection;
use time::OffsetDateTime;

/// Environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_ENV: &str = "MANDATE_TEST_POSTGRES_URL";

/// The file `scripts/test.sh` collects skipped tests in, one line each.
pub const SKIP_LOG_ENV: &str = "MANDATE_TEST_SKIP_LOG";

/// Records that `what` did not run, and `why`: printed, and appended to the
/// file [`SKIP_LOG_ENV`] names, so the test command lists every skip in its
/// last lines (a passing test's own output is not shown). Under `CI` a skip
/// is a failure: it panics.
pub fn skip(what: &str, why: &str) {
    let line = format!("{what}: {why}");
    assert!(
        std::env::var_os("CI").is_none(),
        "skipped under CI (which runs everything): {line}"
    );
    eprintln!("skipping {line}");
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV) {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            // One write of the whole line: appends from parallel tests
            // do not interleave.
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FakeClock(Mutex<OffsetDateTime>);

impl FakeClock {
    /// A clock stopped at `t`.
    pub fn at(t: OffsetDateTime) -> Self {
        Self(Mutex::new(t))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: time::Duration) {
        let mut t = self.0.lock().expect("clock lock");
        *t += d;
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: OffsetDateTime) {
        *self.0.lock().expect("clock lock") = t;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock lock")
    }
}

/// The backends a conformance test can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the server in [`POSTGRES_ENV`].
    Postgres,
}

/// A temporary database, removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    /// URL of the database.
    pub url: DatabaseUrl,
    /// Its string form, as a user would pass it to `--database`.
    pub url_string: String,
    dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A temporary database on `backend`, or `None` (with a printed reason)
    /// when that backend is not configured.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite()),
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// A SQLite file in a fresh temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mandate.db");
        let url_string = format!("sqlite://{}", path.display());
        TestDb {
            url: DatabaseUrl::parse(&url_string).expect("sqlite url"),
            url_string,
            dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` when [`POSTGRES_ENV`] is unset.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(admin) = std::env::var(POSTGRES_ENV) else {
            skip(
                "PostgreSQL cases",
                &format!(
                    "{POSTGRES_ENV} is not set (scripts/test.sh sets it when the local server answers)"
                ),
            );
            return None;
        };
        let name = format!(
            "mandate_test_{}",
            mandate_jose::random::id(16).expect("random")
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL is unreachable: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let mut u = url::Url::parse(&admin).expect("postgres url");
        u.set_path(&name);
        let url_string = u.to_string();
        Some(TestDb {
            url: DatabaseUrl::parse(&url_string).expect("postgres url"),
            url_string,
            dir: None,
            pg: Some((admin, name)),
        })
    }

    /// Opens (and migrates) the store.
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }

    /// The temporary directory of a SQLite database.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop runs inside a Tokio runtime; do the async cleanup on a thread
        // with its own runtime and wait for it, so databases do not pile up.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn),
                    )
                    .await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// A DPoP proof (RFC 9449) by `key` for `htm` `htu` issued at `iat`, with
/// a server `nonce` and the access token hash `ath` when given.
pub fn dpop_proof(
    key: &mandate_jose::jws::SigningKey,
    htm: &str,
    htu: &str,
    iat: i64,
    nonce: Option<&str>,
    ath: Option<&str>,
) -> String {
    let jwk = key.public_jwk().expect("a public key").to_json();
    let header =
        serde_json::json!({ "typ": "dpop+jwt", "alg": key.algorithm().name(), "jwk": jwk });
    let mut c = serde_json::json!({
        "htm": htm, "htu": htu, "iat": iat,
        "jti": mandate_jose::random::token::<12>().expect("randomness"),
    });
    if let Some(n) = nonce {
        c["nonce"] = serde_json::json!(n);
    }
    if let Some(a) = ath {
        c["ath"] = serde_json::json!(a);
    }
    key.sign_with_header(
        &serde_json::to_vec(&header).expect("json"),
        &serde_json::to_vec(&c).expect("json"),
    )
    .expect("a signature")
}
