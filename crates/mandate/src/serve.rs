//! `mandate serve`: prepare the data directory, open the database, hand out
//! the bootstrap admin token on first start, then serve until a signal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mandate_core::SystemClock;
use mandate_engine::{Engine, EngineConfig};
use mandate_jose::secret::ExposeSecret;
use mandate_store::Store;

use crate::config::Config;

/// File name of the master key in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// File name of the bootstrap admin token in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Creates `dir` (mode 0700 on Unix) if it does not exist.
fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .with_context(|| format!("cannot create data directory `{}`", dir.display()))
}

/// Writes `contents` to a new file readable only by the owner.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

/// The master key: `MANDATE_MASTER_KEY` (base64url of 32 bytes), or the key
/// file in the data directory, generated on first start.
fn master_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let decode = |s: &str, from: &str| -> anyhow::Result<[u8; 32]> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .with_context(|| {
                format!("{from}: the master key must be 32 bytes in unpadded base64url")
            })?;
        let mut k = [0u8; 32];
        k.copy_from_slice(&bytes);
        Ok(k)
    };
    if let Ok(v) = std::env::var("MANDATE_MASTER_KEY") {
        return decode(&v, "MANDATE_MASTER_KEY");
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => decode(&s, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = mandate_jose::random::bytes::<32>().context("no secure randomness")?;
            let mut text = URL_SAFE_NO_PAD.encode(key);
            text.push('\n');
            write_private(&path, text.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// Everything prepared before binding.
pub struct Prepared {
    /// The engine over the open store.
    pub engine: Engine,
    /// Where the bootstrap token is (or was) written.
    pub token_path: PathBuf,
    /// Whether this start created it.
    pub token_created: bool,
    /// The master key, for the token service's sealed signing keys.
    pub master_key: [u8; 32],
}

/// Data directory, master key, database, bootstrap token.
pub async fn prepare(cfg: &Config) -> anyhow::Result<Prepared> {
    ensure_dir(&cfg.data_dir)?;
    let key = master_key(&cfg.data_dir)?;
    let store = Store::open(&cfg.database)
        .await
        .with_context(|| format!("cannot open database {}", cfg.database))?;
    // The database remembers which master key it belongs to, so a replica
    // started with the wrong key stops here instead of failing to decrypt
    // later.
    let key_id = mandate_jose::digest::sha256_hex(&key)[..16].to_owned();
    let stored = store
        .meta_insert_if_absent("master_key_id", &key_id)
        .await?;
    if stored != key_id {
        bail!(
            "the master key does not belong to this database (key id {key_id}, database expects {stored})"
        );
    }
    let engine = Engine::new(
        store,
        Arc::new(SystemClock),
        EngineConfig {
            trust_domain: cfg.trust_domain.clone(),
            review_period: cfg.review_period,
        },
    )
    .await?;
    let token_path = cfg.data_dir.join(ADMIN_TOKEN_FILE);
    let token_created = match engine.bootstrap_admin_token().await? {
        Some(issued) => {
            // If the file cannot be written the token is useless; say so
            // loudly rather than start a server nobody can administer.
            let mut text = issued.secret.expose_secret().to_owned();
            text.push('\n');
            if let Err(e) = write_private(&token_path, text.as_bytes()) {
                bail!(
                    "the bootstrap admin token was created but could not be written: {e:#}; revoke `{}` and create another token",
                    issued.token.id
                );
            }
            true
        }
        None => false,
    };
    Ok(Prepared {
        engine,
        token_path,
        token_created,
        master_key: key,
    })
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
