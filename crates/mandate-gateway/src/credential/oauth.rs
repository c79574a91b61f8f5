//! `oauth-client-credentials`: an upstream access token fetched with
//! Mandate's own client credentials (RFC 6749 §4.4, `client_secret_basic`),
//! cached until shortly before it expires. One fetch at a time: concurrent
//! requests wait for it instead of each asking the token endpoint.

use std::time::Duration;

use base64::Engine as _;
use mandate_jose::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::CredentialError;

/// How long a token fetch may take.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A cached token is replaced this long before it expires.
pub(crate) const REFRESH_MARGIN_SECS: i64 = 30;
/// Lifetime assumed when the token endpoint gives no `expires_in`.
const DEFAULT_EXPIRES_IN: i64 = 300;
/// Largest token response read.
const MAX_RESPONSE: usize = 64 * 1024;

pub(super) struct Cached {
    token: SecretString,
    expires_at: i64,
    refresh_at: i64,
}

/// The provider: settings, the client secret and the cached token.
pub struct OAuthClientCredentials {
    pub(super) name: String,
    pub(super) token_url: url::Url,
    pub(super) client_id: String,
    pub(super) client_secret: SecretString,
    pub(super) scope: Option<String>,
    pub(super) audience: Option<String>,
    pub(super) http: reqwest::Client,
    pub(super) cache: tokio::sync::Mutex<Option<Cached>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Number>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

/// RFC 6749 §2.3.1: id and secret are form-encoded before basic encoding.
fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

impl OAuthClientCredentials {
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn describe(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("token_url", self.token_url.to_string()),
            ("client_id", self.client_id.clone()),
        ];
        if let Some(s) = &self.scope {
            v.push(("scope", s.clone()));
        }
        if let Some(a) = &self.audience {
            v.push(("audience", a.clone()));
        }
        v
    }

    /// A token valid at `now` (unix seconds) and its expiry: the cached one,
    /// or a fresh one.
    pub(super) async fn token(&self, now: i64) -> Result<(SecretString, i64), CredentialError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && now < c.refresh_at
        {
            return Ok((c.token.clone(), c.expires_at));
        }
        let (token, expires_in) = self.fetch().await?;
        let expires_at = now + expires_in;
        let margin = REFRESH_MARGIN_SECS.min(expires_in / 2);
        *cache = Some(Cached {
            token: token.clone(),
            expires_at,
            refresh_at: expires_at - margin,
        });
        Ok((token, expires_at))
    }

    async fn fetch(&self) -> Result<(SecretString, i64), CredentialError> {
        let fail = |m: String| CredentialError::TokenEndpoint(m);
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = &self.scope {
            form.push(("scope", s));
        }
        if let Some(a) = &self.audience {
            form.push(("audience", a));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        let mut auth = http::HeaderValue::from_str(&basic_auth(
            &self.client_id,
            self.client_secret.expose_secret(),
        ))
        .map_err(|_| fail("the client credentials are not a valid header".into()))?;
        auth.set_sensitive(true);
        let mut res = self
            .http
            .post(self.token_url.clone())
            .header(http::header::AUTHORIZATION, auth)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                fail(if e.is_timeout() {
                    format!("no answer from {} within {FETCH_TIMEOUT:?}", self.token_url)
                } else {
                    format!("cannot reach {}", self.token_url)
                })
            })?;
        let status = res.status();
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|_| fail("the answer was cut off".into()))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(fail(format!(
                    "the answer is larger than {MAX_RESPONSE} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            // Only the RFC 6749 error code, never the rest of the body.
            let code = serde_json::from_slice::<ErrorResponse>(&body)
                .ok()
                .map(|e| e.error)
                .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_graphic()));
            return Err(fail(match code {
                Some(code) => format!("{} answered {status} `{code}`", self.token_url),
                None => format!("{} answered {status}", self.token_url),
            }));
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| fail("the answer is not a token response".into()))?;
        if let Some(tt) = &t.token_type
            && !tt.eq_ignore_ascii_case("bearer")
        {
            return Err(fail(format!("token type `{tt}` is not bearer")));
        }
        if t.access_token.is_empty() || t.access_token.chars().any(char::is_control) {
            return Err(fail("the access token is empty or malformed".into()));
        }
        let expires_in = match t.expires_in {
            // Some servers send a float or a string; only whole seconds count.
            Some(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .filter(|s| *s > 0)
                .ok_or_else(|| fail("`expires_in` is not a positive number".into()))?,
            None => DEFAULT_EXPIRES_IN,
        };
        Ok((SecretString::from(t.access_token), expires_in))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_credentials_are_form_encoded_before_basic() {
        // RFC 6749 §2.3.1: `a:b` and `c d` are encoded first.
        let h = basic_auth("a:b", "c d");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.trim_start_matches("Basic "))
            .unwrap_or_default();
        assert_eq!(raw, b"a%3Ab:c+d");
    }
}
