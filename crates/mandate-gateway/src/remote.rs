//! The control plane of a standalone gateway: a remote Mandate, reached over
//! its internal API ([`crate::wire`]) with an access token the gateway
//! obtains for itself like any agent does, by `client_credentials` with a
//! `private_key_jwt` signed by its registered key. Found by RFC 8414
//! discovery; tokens are checked against the published JWKS before the
//! control plane is asked, so forged or expired tokens cost no round trip.
//!
//! The gateway's token is DPoP-bound (RFC 9449) to a key made at start
//! that never leaves the process: a copy of the token alone opens nothing.
//!
//! Nothing is decided from a stale copy: the control plane checks each
//! request's token (so a revocation or a suspension holds at once) and
//! decides each call. Routes are kept for [`ROUTE_TTL`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mandate_core::AuditDraft;
use mandate_engine::OpenedSecret;
use mandate_engine::gateway::{CallDecision, GatewayRoute};
use mandate_engine::oauth::AccessToken;
use mandate_jose::claims::{Claims, Validation};
use mandate_jose::jwk::JwkSet;
use mandate_jose::jws::{self, Algorithm, SigningKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::plane::Presented;
use crate::verify::{self, Refusal};
use crate::wire::{
    AuditRequest, AuthenticateAnswer, AuthenticateRequest, CallSpec, CredentialAnswer,
    CredentialRequest, DecisionsAnswer, DecisionsRequest, GATEWAY_SCOPE, INTERNAL_PATH,
    RouteAnswer, UpstreamJwtAnswer, UpstreamJwtRequest, WireEvent,
};

/// How long a route read from the control plane is used.
pub(crate) const ROUTE_TTL: Duration = Duration::from_secs(2);
/// Least time between two JWKS fetches prompted by an unknown key.
const JWKS_REFETCH: Duration = Duration::from_secs(10);

/// How a standalone gateway reaches and proves itself to its Mandate.
pub struct RemoteConfig {
    /// The Mandate's URL (`https`, or `http` on a loopback address).
    pub control_plane: String,
    /// The gateway's agent name (its `client_id`).
    pub agent: String,
    /// The private key registered on that agent (`mandate agent jwks set`).
    pub key: SigningKey,
    /// Longest wait for any control-plane call, answer included.
    pub timeout: Duration,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("control_plane", &self.control_plane)
            .field("agent", &self.agent)
            .field("key", &crate::REDACTED)
            .finish_non_exhaustive()
    }
}

/// The gateway's own access token and when to fetch the next one.
struct Own {
    token: String,
    renew_at: Instant,
}

pub(crate) struct Remote {
    agent: String,
    timeout: Duration,
    key: SigningKey,
    /// The key the gateway's token is bound to.
    dpop: SigningKey,
    dpop_jwk: serde_json::Value,
    http: reqwest::Client,
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    internal: String,
    own: RwLock<Option<Arc<Own>>>,
    renewing: tokio::sync::Mutex<()>,
    jwks: RwLock<Option<(Arc<JwkSet>, Instant)>>,
    routes: Mutex<HashMap<String, (RouteAnswer, Instant)>>,
}

/// Whether `url` may carry the gateway's token and credentials: `https`, or
/// `http` to a loopback address.
pub(crate) fn check_transport(url: &url::Url) -> Result<(), String> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        s => Err(format!(
            "`{url}`: the control plane must be reached over https (or http on a loopback address), not `{s}`"
        )),
    }
}

async fn problem_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            ["detail", "error_description", "error"]
                .iter()
                .find_map(|k| v.get(*k).and_then(|d| d.as_str()).map(str::to_owned))
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    format!("{status}: {detail}")
}

impl Remote {
    /// Discovers the Mandate at `config.control_plane`, reads its keys and
    /// obtains the gateway's first token, so a misconfigured gateway fails
    /// at start and not on its first request.
    pub(crate) async fn connect(
        config: RemoteConfig,
        http: reqwest::Client,
    ) -> Result<Self, String> {
        let base = url::Url::parse(&config.control_plane)
            .map_err(|e| format!("`{}` is not a URL: {e}", config.control_plane))?;
        check_transport(&base)?;
        let base = base.as_str().trim_end_matches('/').to_owned();
        let discovery = format!("{base}/.well-known/oauth-authorization-server");
        let resp = http
            .get(&discovery)
            .timeout(config.timeout)
            .send()
            .await
            .map_err(|e| format!("{discovery}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{discovery}: {}", problem_text(resp).await));
        }
        let meta: serde_json::Value = resp.json().await.map_err(|e| format!("{discovery}: {e}"))?;
        let field = |k: &str| {
            meta.get(k)
                .and_then(|v| v.as_str())
                .map(|s| s.trim_end_matches('/').to_owned())
                .ok_or_else(|| format!("{discovery}: no `{k}`"))
        };
        let issuer = field("issuer")?;
        let token_endpoint = field("token_endpoint")?;
        let jwks_uri = field("jwks_uri")?;
        for u in [&token_endpoint, &jwks_uri] {
            check_transport(&url::Url::parse(u).map_err(|e| format!("`{u}`: {e}"))?)?;
        }
        let dpop = SigningKey::generate(Algorithm::Es256)
            .map_err(|e| format!("cannot make the DPoP key: {e}"))?;
        let dpop_jwk = dpop
            .public_jwk()
            .map_err(|e| format!("cannot make the DPoP key: {e}"))?
            .to_json();
        let remote = Self {
            agent: config.agent,
            timeout: config.timeout,
            key: config.key,
            dpop,
            dpop_jwk,
            http,
            internal: format!("{base}{INTERNAL_PATH}"),
            issuer,
            token_endpoint,
            jwks_uri,
            own: RwLock::new(None),
            renewing: tokio::sync::Mutex::new(()),
            jwks: RwLock::new(None),
            routes: Mutex::default(),
        };
        remote.fetch_jwks().await?;
        remote.bearer().await?;
        Ok(remote)
    }

    /// The issuer whose tokens the gateway accepts.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn fetch_jwks(&self) -> Result<Arc<JwkSet>, String> {
        let resp = self
            .http
            .get(&self.jwks_uri)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.jwks_uri))?;
        if !resp.status().is_success() {
            return Err(format!("{}: {}", self.jwks_uri, problem_text(resp).await));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("{}: {e}", self.jwks_uri))?;
        let set =
            Arc::new(JwkSet::from_json(&bytes).map_err(|e| format!("{}: {e}", self.jwks_uri))?);
        if let Ok(mut j) = self.jwks.write() {
            *j = Some((set.clone(), Instant::now()));
        }
        Ok(set)
    }

    /// A DPoP proof of the gateway's key for `method` `htu` (RFC 9449 §4.2).
    fn proof(
        &self,
        method: &str,
        htu: &str,
        nonce: Option<&str>,
        token: Option<&str>,
    ) -> Result<String, String> {
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.dpop_jwk});
        let mut claims = serde_json::json!({
            "htm": method, "htu": htu,
            "iat": OffsetDateTime::now_utc().unix_timestamp(),
            "jti": mandate_jose::random::token::<16>().map_err(|e| e.to_string())?,
        });
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        if let Some(t) = token {
            claims["ath"] = mandate_engine::oauth::dpop::access_token_hash(t).into();
        }
        self.dpop
            .sign_with_header(header.to_string().as_bytes(), claims.to_string().as_bytes())
            .map_err(|e| format!("cannot sign a DPoP proof: {e}"))
    }

    /// The gateway's access token for the internal API, fetched anew a
    /// quarter of its lifetime before it expires.
    async fn bearer(&self) -> Result<String, String> {
        let current = || {
            self.own
                .read()
                .ok()
                .and_then(|o| o.clone())
                .filter(|o| Instant::now() < o.renew_at)
                .map(|o| o.token.clone())
        };
        if let Some(t) = current() {
            return Ok(t);
        }
        let _one = self.renewing.lock().await;
        if let Some(t) = current() {
            return Ok(t);
        }
        let mut nonce: Option<String> = None;
        let mut attempts = 0;
        let resp = loop {
            attempts += 1;
            let resp = self.request_token(nonce.as_deref()).await?;
            if resp.status().is_success() {
                break resp;
            }
            // RFC 9449 §8: the server asks for its nonce; once.
            let fresh = resp
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match fresh {
                Some(n) if attempts == 1 && resp.status() == http::StatusCode::BAD_REQUEST => {
                    nonce = Some(n);
                }
                _ => {
                    return Err(format!(
                        "the gateway's own token was refused: {}",
                        problem_text(resp).await
                    ));
                }
            }
        };
        let answer: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| format!("{}: {e}", self.token_endpoint))?;
        let token = answer
            .get("access_token")
            .and_then(|v| v.as_str())
            .ok_or("the token endpoint's answer has no access_token")?
            .to_owned();
        if answer.get("token_type").and_then(|v| v.as_str()) != Some("DPoP") {
            return Err(
                "the control plane did not bind the gateway's token to its DPoP key".into(),
            );
        }
        let lifetime = answer
            .get("expires_in")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(60);
        let own = Own {
            token: token.clone(),
            renew_at: Instant::now() + Duration::from_secs(lifetime * 3 / 4),
        };
        if let Ok(mut o) = self.own.write() {
            *o = Some(Arc::new(own));
        }
        Ok(token)
    }

    /// One token request: client credentials with a `private_key_jwt`, the
    /// token bound to the DPoP key.
    async fn request_token(&self, nonce: Option<&str>) -> Result<reqwest::Response, String> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let jti = mandate_jose::random::token::<16>().map_err(|e| e.to_string())?;
        let claims = serde_json::json!({
            "iss": self.agent, "sub": self.agent, "aud": self.token_endpoint,
            "iat": now, "exp": now + 60, "jti": jti,
        });
        let assertion = self
            .key
            .sign(Some("JWT"), claims.to_string().as_bytes())
            .map_err(|e| format!("cannot sign the client assertion: {e}"))?;
        let resource = format!("{}{INTERNAL_PATH}", self.issuer);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.agent.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("resource", resource.as_str()),
            ("scope", GATEWAY_SCOPE),
        ];
        let body = serde_urlencoded::to_string(form).map_err(|e| e.to_string())?;
        let proof = self.proof("POST", &self.token_endpoint, nonce, None)?;
        self.http
            .post(&self.token_endpoint)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header("dpop", proof)
            .body(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.token_endpoint))
    }

    /// One internal API call, retried once with a fresh token when the
    /// gateway's own token was refused.
    async fn call<B: Serialize, A: DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<A, String> {
        let url = format!("{}{path}", self.internal);
        for attempt in 0..2 {
            let token = self.bearer().await?;
            // The control plane checks `htu` against its own public URL.
            let htu = format!("{}{INTERNAL_PATH}{path}", self.issuer);
            let proof = self.proof(method.as_str(), &htu, None, Some(&token))?;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(http::header::AUTHORIZATION, format!("DPoP {token}"))
                .header("dpop", proof)
                .timeout(self.timeout);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
            if resp.status() == http::StatusCode::UNAUTHORIZED && attempt == 0 {
                if let Ok(mut o) = self.own.write() {
                    *o = None;
                }
                continue;
            }
            if !resp.status().is_success() {
                return Err(format!("{url}: {}", problem_text(resp).await));
            }
            return resp.json().await.map_err(|e| format!("{url}: {e}"));
        }
        Err(format!("{url}: the gateway's own token is refused"))
    }

    /// Route `name` as the control plane has it (kept [`ROUTE_TTL`]).
    pub(crate) async fn route(&self, name: &str) -> Result<RouteAnswer, String> {
        if let Ok(routes) = self.routes.lock()
            && let Some((a, at)) = routes.get(name)
            && at.elapsed() < ROUTE_TTL
        {
            return Ok(a.clone());
        }
        let path = format!("/routes/{}", urlencode(name));
        let answer: RouteAnswer = self.call(http::Method::GET, &path, None::<&()>).await?;
        if let Ok(mut routes) = self.routes.lock() {
            if routes.len() > 10_000 {
                routes.clear();
            }
            routes.insert(name.to_owned(), (answer.clone(), Instant::now()));
        }
        Ok(answer)
    }

    /// Checks the token's signature, type, issuer, audience and time with
    /// the published keys (fetched again, at most every
    /// [`JWKS_REFETCH`], when no key verifies it).
    fn precheck(&self, token: &str, audience: &str, jwks: &JwkSet) -> Result<(), String> {
        let jws = jws::decode(token, jws::DEFAULT_MAX_TOKEN_LEN)
            .map_err(|e| format!("not a JWT: {e}"))?;
        jws.header()
            .check_typ(mandate_engine::ACCESS_TOKEN_TYP)
            .map_err(|e| format!("not an access token: {e}"))?;
        let payload = jws
            .verify(jwks, &mandate_engine::oauth::ACCESS_TOKEN_ALGORITHMS)
            .map_err(|e| format!("signature: {e}"))?
            .into_parts()
            .1;
        let claims = Claims::from_json(&payload).map_err(|e| format!("claims: {e}"))?;
        Validation::new(self.issuer.clone(), audience.to_owned())
            .with_skew(0)
            .map_err(|e| e.to_string())?
            .validate(&claims, OffsetDateTime::now_utc().unix_timestamp())
            .map_err(|e| e.to_string())
    }

    pub(crate) async fn authenticate(
        &self,
        route: &GatewayRoute,
        request: Presented<'_>,
        calls: Vec<CallSpec>,
    ) -> Result<(Arc<AccessToken>, Vec<CallDecision>), Refusal> {
        let headers = request.headers;
        let Some((scheme, token)) = verify::credentials(headers)? else {
            return Err(Refusal::missing());
        };
        let current = self.jwks.read().ok().and_then(|j| j.clone());
        let first = match &current {
            Some((jwks, _)) => self.precheck(token, &route.audience, jwks),
            None => Err("signature: no keys yet".to_owned()),
        };
        let fetched = current.map_or_else(
            || {
                Instant::now()
                    .checked_sub(JWKS_REFETCH)
                    .unwrap_or_else(Instant::now)
            },
            |(_, at)| at,
        );
        if let Err(why) = first {
            let again = why.starts_with("signature") && fetched.elapsed() >= JWKS_REFETCH;
            let retried = match again {
                true => match self.fetch_jwks().await {
                    Ok(j) => self.precheck(token, &route.audience, &j),
                    Err(e) => Err(format!("{why} (and the keys cannot be fetched: {e})")),
                },
                false => Err(why),
            };
            if let Err(why) = retried {
                return Err(Refusal::new(401, "invalid_token", why));
            }
        }
        let req = AuthenticateRequest {
            resource: route.name.clone(),
            method: request.method.to_owned(),
            url: request.url.to_owned(),
            authorization: format!("{scheme} {token}"),
            dpop: headers
                .get("dpop")
                .map(|v| v.to_str().unwrap_or("\u{0}").to_owned()),
            calls,
            client_ip: request.client_ip,
        };
        match self
            .call::<_, AuthenticateAnswer>(http::Method::POST, "/authenticate", Some(&req))
            .await
        {
            Ok(AuthenticateAnswer::Token { token, decisions }) => Ok((Arc::new(*token), decisions)),
            Ok(AuthenticateAnswer::Refused {
                status,
                error,
                description,
                scope,
            }) => Err(Refusal {
                status,
                error: error.as_deref().map(verify::known_error),
                description,
                scope,
            }),
            Err(e) => Err(Refusal::unavailable(format!(
                "the control plane cannot check the token: {e}"
            ))),
        }
    }

    pub(crate) async fn decide(
        &self,
        token: &str,
        resource: &str,
        client_ip: Option<IpAddr>,
        calls: Vec<CallSpec>,
    ) -> Result<Vec<CallDecision>, String> {
        let req = DecisionsRequest {
            token: token.to_owned(),
            resource: resource.to_owned(),
            client_ip,
            calls,
        };
        let a: DecisionsAnswer = self
            .call(http::Method::POST, "/decisions", Some(&req))
            .await?;
        Ok(a.decisions)
    }

    pub(crate) async fn audit(&self, draft: AuditDraft, durable: bool) -> Result<(), String> {
        let req = AuditRequest {
            durable,
            events: vec![WireEvent {
                event_type: draft.event_type,
                actor: draft.actor,
                target: draft.target,
                outcome: draft.outcome.as_str().to_owned(),
                detail: draft.detail,
            }],
        };
        let _: serde_json::Value = self.call(http::Method::POST, "/audit", Some(&req)).await?;
        Ok(())
    }

    pub(crate) async fn credential(
        &self,
        name: &str,
        known: Option<OffsetDateTime>,
    ) -> Result<Option<(OpenedSecret, OffsetDateTime)>, String> {
        let path = format!("/credentials/{}", urlencode(name));
        let req = CredentialRequest {
            known_updated_at: known,
        };
        match self.call(http::Method::POST, &path, Some(&req)).await? {
            CredentialAnswer::Unchanged => Ok(None),
            CredentialAnswer::Opened {
                kind,
                config,
                value,
                updated_at,
            } => Ok(Some((
                OpenedSecret {
                    name: name.to_owned(),
                    kind,
                    config,
                    value: value.map(mandate_jose::SecretString::from),
                },
                updated_at,
            ))),
        }
    }

    pub(crate) async fn upstream_jwt(
        &self,
        token: &str,
        resource: &str,
        audience: String,
        ttl: time::Duration,
    ) -> Result<(String, i64), String> {
        let req = UpstreamJwtRequest {
            token: token.to_owned(),
            resource: resource.to_owned(),
            audience,
            ttl_secs: u64::try_from(ttl.whole_seconds()).unwrap_or(0),
        };
        let a: UpstreamJwtAnswer = self
            .call(http::Method::POST, "/upstream-jwt", Some(&req))
            .await?;
        Ok((a.jwt, a.exp))
    }
}

/// A path segment, percent-encoded.
fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::check_transport;

    #[test]
    fn plain_http_to_a_remote_control_plane_is_refused() {
        let ok = |u: &str| check_transport(&url::Url::parse(u).unwrap());
        assert!(ok("https://mandate.example.com").is_ok());
        assert!(ok("http://127.0.0.1:8420").is_ok());
        assert!(ok("http://[::1]:8420").is_ok());
        assert!(ok("http://localhost:8420").is_ok());
        // The gateway's token and the credentials would cross the network
        // in the clear.
        assert!(ok("http://mandate.example.com").is_err());
        assert!(ok("http://10.0.0.7:8420").is_err());
        assert!(ok("ftp://127.0.0.1").is_err());
    }
}
