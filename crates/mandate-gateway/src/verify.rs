//! The caller's token at a route: verified once (signature from the
//! published keys, `typ`, `iss`, time, the record, the holder active), then
//! found by its hash until it expires or anything may have been revoked.
//! The route's checks (audience, binding, scopes) run on every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use http::HeaderMap;
use mandate_engine::Engine;
use mandate_engine::gateway::GatewayRoute;
use mandate_engine::oauth::{AccessToken, Presented};

/// Most cached verifications; past it, expired ones are dropped, and if
/// that frees nothing the cache starts over.
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    token: Arc<AccessToken>,
    exp: i64,
    epoch: u64,
}

/// Verified tokens by SHA-256 of the token.
#[derive(Default)]
pub(crate) struct Cache {
    map: RwLock<HashMap<[u8; 32], Entry>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cache")
    }
}

/// A refused request: the status, the RFC 6750 error (none when no token
/// was presented) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: u16,
    pub error: Option<&'static str>,
    pub description: String,
    /// For `insufficient_scope`: the scopes the route requires.
    pub scope: Option<String>,
}

impl Refusal {
    pub(crate) fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error: Some(error),
            description: description.into(),
            scope: None,
        }
    }

    /// No token was presented: 401 with a bare challenge.
    pub(crate) fn missing() -> Self {
        Self {
            status: 401,
            error: None,
            description: "no access token".into(),
            scope: None,
        }
    }

    /// The token cannot be checked now: 503.
    pub(crate) fn unavailable(description: String) -> Self {
        Self {
            status: 503,
            error: None,
            description,
            scope: None,
        }
    }
}

/// The RFC 6750 / RFC 9449 error code `code` names (`invalid_token` for
/// any other), for refusals that crossed the wire.
pub(crate) fn known_error(code: &str) -> &'static str {
    match code {
        "invalid_request" => "invalid_request",
        "insufficient_scope" => "insufficient_scope",
        "invalid_dpop_proof" => "invalid_dpop_proof",
        "use_dpop_nonce" => "use_dpop_nonce",
        _ => "invalid_token",
    }
}

/// The token of the `Authorization` header, if one is well formed.
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<&str> {
    credentials(headers).ok().flatten().map(|(_, t)| t)
}

/// The `Authorization` header's scheme and token.
pub(crate) fn credentials(headers: &HeaderMap) -> Result<Option<(&str, &str)>, Refusal> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refusal::new(
            400,
            "invalid_request",
            "more than one Authorization header",
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| Refusal::new(400, "invalid_request", "Authorization is not ASCII"))?;
    let Some((scheme, token)) = text.split_once(' ') else {
        return Err(Refusal::new(
            401,
            "invalid_token",
            "Authorization is not `Bearer <token>` or `DPoP <token>`",
        ));
    };
    let token = token.trim();
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop"))
        || token.is_empty()
    {
        return Err(Refusal::new(
            401,
            "invalid_token",
            "Authorization is not `Bearer <token>` or `DPoP <token>`",
        ));
    }
    Ok(Some((scheme, token)))
}

fn unavailable(e: mandate_engine::Error) -> Refusal {
    Refusal::unavailable(format!("token verification is unavailable: {e}"))
}

impl Cache {
    fn get(&self, key: &[u8; 32], now: i64, epoch: u64) -> Option<Arc<AccessToken>> {
        let map = self.map.read().ok()?;
        let e = map.get(key)?;
        (e.exp > now && e.epoch == epoch).then(|| e.token.clone())
    }

    fn put(&self, key: [u8; 32], token: Arc<AccessToken>, epoch: u64, now: i64) {
        let Ok(mut map) = self.map.write() else {
            return;
        };
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, e| e.exp > now && e.epoch == epoch);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            key,
            Entry {
                exp: token.exp,
                token,
                epoch,
            },
        );
    }

    /// Token `token` verified (signature, type, issuer, time, its record
    /// and holder), from the cache when it was verified before and nothing
    /// may have been revoked since.
    pub(crate) async fn verified(
        &self,
        engine: &Engine,
        token: &str,
    ) -> Result<Arc<AccessToken>, Refusal> {
        let key = mandate_jose::digest::sha256(&[token.as_bytes()]);
        let now = engine.now().unix_timestamp();
        // Read the epoch before verifying: a revocation racing with the
        // verification moves it, so the entry is never reused.
        let epoch = engine.revocation_epoch();
        if let Some(t) = self.get(&key, now, epoch) {
            return Ok(t);
        }
        match engine
            .verify_access_token(token)
            .await
            .map_err(unavailable)?
        {
            Ok(t) => {
                let t = Arc::new(t);
                self.put(key, t.clone(), epoch, now);
                Ok(t)
            }
            Err(why) => Err(Refusal::new(401, "invalid_token", why)),
        }
    }

    /// The verified token of a request to `route` at `url`, or why the
    /// request is refused.
    pub(crate) async fn authenticate(
        &self,
        engine: &Engine,
        route: &GatewayRoute,
        method: &str,
        url: &str,
        headers: &HeaderMap,
    ) -> Result<Arc<AccessToken>, Refusal> {
        let Some((scheme, token)) = credentials(headers)? else {
            return Err(Refusal::missing());
        };
        let verified = self.verified(engine, token).await?;
        if verified.audience != route.audience {
            return Err(Refusal::new(
                401,
                "invalid_token",
                format!(
                    "the token is for `{}`, not this route (`{}`)",
                    verified.audience, route.audience
                ),
            ));
        }
        let proof = headers.get("dpop").map(|v| v.to_str().unwrap_or("\u{0}"));
        let presented = Presented {
            scheme,
            token,
            proof,
            method,
            url,
        };
        match engine.check_binding(&verified, presented).await {
            Ok(Ok(())) => {}
            Ok(Err(r)) => return Err(Refusal::new(401, r.error, r.description)),
            Err(e) => return Err(unavailable(e)),
        }
        let missing: Vec<&String> = (route.route.required_scopes.iter())
            .filter(|s| !verified.scopes.contains(s))
            .collect();
        if !missing.is_empty() {
            return Err(Refusal {
                status: 403,
                error: Some("insufficient_scope"),
                description: format!(
                    "the token lacks scope {}",
                    missing
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                scope: Some(route.route.required_scopes.join(" ")),
            });
        }
        Ok(verified)
    }
}
