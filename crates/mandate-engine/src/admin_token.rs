//! Admin tokens: bearer credentials for the admin API.
//!
//! A token reads `mdt_<id>_<secret>`: `id` is 12 characters of `[a-z0-9]`
//! (public; it names the token in audit events), `secret` is 32 random bytes
//! in base64url. Only SHA-256 of the secret is stored, and it is compared in
//! constant time.

use mandate_core::{AuditDraft, Outcome};
use mandate_jose::digest::sha256_hex;
use mandate_jose::{SecretString, ct_eq, random};
use mandate_store::AdminTokenRecord;
use serde::Serialize;
use time::OffsetDateTime;

use crate::{Actor, Engine, Error, Result};

/// Every admin token starts with this.
pub const TOKEN_PREFIX: &str = "mdt_";
const ID_LEN: usize = 12;

/// An admin token as shown to admins: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AdminToken {
    /// Public id.
    pub id: String,
    /// Human label.
    pub name: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The admin token that created it; none for the bootstrap token.
    pub created_by: Option<String>,
    /// When it stops working, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A newly created token: the only moment its secret exists outside the
/// caller's hands.
#[derive(Debug)]
pub struct IssuedAdminToken {
    /// The token's record.
    pub token: AdminToken,
    /// The full bearer value, `mdt_<id>_<secret>`.
    pub secret: SecretString,
}

impl From<AdminTokenRecord> for AdminToken {
    fn from(r: AdminTokenRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            created_by: r.created_by,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        }
    }
}

fn mint(
    name: &str,
    created_by: Option<String>,
    now: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
) -> Result<(AdminTokenRecord, SecretString)> {
    let rand_err = |_| Error::Internal("secure random generator unavailable");
    let id = random::id(ID_LEN).map_err(rand_err)?;
    let secret = random::token::<32>().map_err(rand_err)?;
    let record = AdminTokenRecord {
        secret_hash: sha256_hex(secret.as_bytes()),
        id: id.clone(),
        name: name.to_owned(),
        created_at: now,
        created_by,
        expires_at,
        revoked_at: None,
    };
    Ok((
        record,
        SecretString::from(format!("{TOKEN_PREFIX}{id}_{secret}")),
    ))
}

impl Engine {
    /// Creates the bootstrap admin token the first time a database is used;
    /// `None` on every later start (the token was handed out already).
    pub async fn bootstrap_admin_token(&self) -> Result<Option<IssuedAdminToken>> {
        let now = self.now();
        let (record, secret) = mint("bootstrap", None, now, None)?;
        let draft = AuditDraft::new(
            mandate_core::EventKind::AdminTokenBootstrapped,
            Outcome::Success,
        )
        .target(format!("admin_token/{}", record.id));
        if self
            .store
            .bootstrap_admin_token(&record, draft, now)
            .await?
        {
            Ok(Some(IssuedAdminToken {
                token: record.into(),
                secret,
            }))
        } else {
            Ok(None)
        }
    }

    /// Checks a bearer value and returns who it belongs to. Unknown, malformed,
    /// revoked and expired tokens are all refused.
    pub async fn authenticate(&self, bearer: &str) -> Result<Actor> {
        const BAD: Error = Error::Unauthorized("invalid admin token");
        let rest = bearer.strip_prefix(TOKEN_PREFIX).ok_or(BAD)?;
        let (id, secret) = rest.split_once('_').ok_or(BAD)?;
        if id.len() != ID_LEN
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(BAD);
        }
        let record = self.store.admin_token(id).await?.ok_or(BAD)?;
        // Compare before looking at status so timing does not tell a revoked
        // token from a wrong secret.
        let matches = ct_eq(
            sha256_hex(secret.as_bytes()).as_bytes(),
            record.secret_hash.as_bytes(),
        );
        if !matches {
            return Err(BAD);
        }
        if record.revoked_at.is_some() {
            return Err(Error::Unauthorized("admin token revoked"));
        }
        if record.expires_at.is_some_and(|e| e <= self.now()) {
            return Err(Error::Unauthorized("admin token expired"));
        }
        Ok(Actor {
            token_id: record.id,
        })
    }

    /// Creates an admin token named `name`, valid for `ttl` (or until revoked).
    pub async fn create_admin_token(
        &self,
        actor: &Actor,
        name: &str,
        ttl: Option<time::Duration>,
    ) -> Result<IssuedAdminToken> {
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(mandate_core::ValidationError::new(
                "name",
                "must be 1 to 128 printable characters",
            )
            .into());
        }
        if ttl.is_some_and(|t| t <= time::Duration::ZERO) {
            return Err(
                mandate_core::ValidationError::new("expires_in", "must be positive").into(),
            );
        }
        let now = self.now();
        let expires_at = ttl.map(|t| now + t);
        let (record, secret) = mint(name, Some(actor.token_id.clone()), now, expires_at)?;
        let draft = AuditDraft::new(mandate_core::EventKind::AdminTokenCreated, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("admin_token/{}", record.id))
            .detail(serde_json::json!({
                "name": name,
                "expires_at": expires_at.map(mandate_core::clock::unix_millis),
            }));
        self.store.create_admin_token(&record, draft, now).await?;
        Ok(IssuedAdminToken {
            token: record.into(),
            secret,
        })
    }

    /// Every admin token, newest first.
    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>> {
        Ok(self
            .store
            .list_admin_tokens()
            .await?
            .into_iter()
            .map(AdminToken::from)
            .collect())
    }

    /// Revokes a token; it stops working at once.
    pub async fn revoke_admin_token(&self, actor: &Actor, id: &str) -> Result<AdminToken> {
        let now = self.now();
        let draft = AuditDraft::new(mandate_core::EventKind::AdminTokenRevoked, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("admin_token/{id}"));
        if !self.store.revoke_admin_token(id, draft, now).await? {
            return match self.store.admin_token(id).await? {
                Some(_) => Err(Error::InvalidState(format!(
                    "admin token `{id}` is already revoked"
                ))),
                None => Err(not_found(id)),
            };
        }
        let record = self
            .store
            .admin_token(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(record.into())
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound {
        kind: "admin_token",
        id: id.to_owned(),
    }
}
