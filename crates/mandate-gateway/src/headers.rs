//! What crosses the gateway in headers: the request shapes refused before
//! anything else (smuggling shapes), the inbound headers the
//! agent must not pass on (its own credentials, identity claims a proxy or
//! the upstream might trust, hop-by-hop headers and the ones `Connection`
//! names), and the scrubbing of injected secrets from what comes back.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Hop-by-hop headers (RFC 9110 §7.6.1) and their old proxy cousins: never
/// forwarded in either direction.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers that carry the agent's own credentials or an identity a proxy
/// or upstream might believe: removed from every forwarded request.
const IDENTITY: &[&str] = &[
    "authorization",
    "cookie",
    "dpop",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "x-cluster-client-ip",
    "x-original-forwarded-for",
    "x-request-id",
    "x-correlation-id",
    "x-remote-user",
    "x-remote-addr",
    "x-user",
    "x-user-id",
    "x-auth-user",
    "x-authenticated-user",
    "x-client-cert",
    "x-ssl-client-cert",
    "x-amzn-oidc-data",
    "x-amzn-oidc-identity",
    "x-goog-authenticated-user-email",
    "x-ms-client-principal",
];

/// Prefixes of identity headers (`X-Forwarded-For`, `X-Forwarded-Host`, ...,
/// and every header the gateway itself sets).
const IDENTITY_PREFIXES: &[&str] = &["x-forwarded-", "x-mandate-", "x-amz-", "x-envoy-"];

/// Why a request shape is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadShape(pub String);

/// Refuses request shapes a downstream parser could read differently from
/// the gateway (RFC 9112 §6.3): `Content-Length` together with
/// `Transfer-Encoding`, several different lengths, a transfer coding other
/// than a single `chunked`. (Control characters in header values never get
/// here: hyper's parser and `HeaderValue` refuse them.)
pub(crate) fn check_shape(headers: &HeaderMap) -> Result<(), BadShape> {
    let lengths: Vec<&HeaderValue> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
    let codings: Vec<&HeaderValue> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
    if !lengths.is_empty() && !codings.is_empty() {
        return Err(BadShape(
            "both Content-Length and Transfer-Encoding are present".into(),
        ));
    }
    if let Some(first) = lengths.first()
        && lengths.iter().any(|l| l.as_bytes() != first.as_bytes())
    {
        return Err(BadShape("conflicting Content-Length values".into()));
    }
    if let Some(first) = lengths.first()
        && (first.is_empty() || !first.as_bytes().iter().all(u8::is_ascii_digit))
    {
        return Err(BadShape("Content-Length is not a number".into()));
    }
    if !codings.is_empty() {
        let all: Vec<String> = codings
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if all != ["chunked"] {
            return Err(BadShape(format!(
                "unsupported Transfer-Encoding `{}`",
                all.join(", ")
            )));
        }
    }
    Ok(())
}

/// Headers (and query parameters) frameworks read as "treat this request
/// as another method" (Rails, Laravel, Symfony, ASP.NET, Express's
/// method-override).
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The name of the first method override the request carries, if any. The
/// policy decides on the request's own method, so a request asking the
/// upstream for another one is refused, never forwarded.
pub(crate) fn method_override(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(h) = METHOD_OVERRIDES.iter().find(|h| headers.contains_key(**h)) {
        return Some((*h).to_owned());
    }
    let query = query?;
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, _)| k.to_ascii_lowercase())
        .find(|k| k == "_method" || METHOD_OVERRIDES.contains(&k.as_str()))
}

/// The names `Connection` lists (lower case), which are hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn is_identity(name: &str) -> bool {
    IDENTITY.contains(&name) || IDENTITY_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The headers to forward upstream: `inbound` without hop-by-hop headers,
/// the headers `Connection` names, `Host`, the agent's credentials and
/// identity headers, and any header the credential will set (`injected`).
/// Done before injection, so nothing the agent sends can remove or
/// override what the gateway adds.
pub(crate) fn forwardable(inbound: &HeaderMap, injected: &[HeaderName]) -> HeaderMap {
    let listed = connection_listed(inbound);
    let mut out = HeaderMap::with_capacity(inbound.len());
    for (name, value) in inbound {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || n == "host"
            || is_identity(n)
            || listed.iter().any(|l| l == n)
            || injected.contains(name)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The upstream's response headers to pass back: without hop-by-hop
/// headers, the ones its `Connection` names, and with every injected
/// secret scrubbed from the values.
pub(crate) fn returnable(upstream: &HeaderMap, scrub: &Scrubber) -> HeaderMap {
    let listed = connection_listed(upstream);
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || listed.iter().any(|l| l == n) {
            continue;
        }
        let value = match scrub.scrub(value.as_bytes()) {
            Some(clean) => match HeaderValue::from_bytes(&clean) {
                Ok(v) => v,
                Err(_) => continue,
            },
            None => value.clone(),
        };
        out.append(name.clone(), value);
    }
    out
}

/// What replaces a secret found in an upstream's answer.
pub const REDACTED: &str = "[REDACTED]";

/// Replaces injected secret values in what an upstream sends back.
#[derive(Default)]
pub(crate) struct Scrubber {
    secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

impl Scrubber {
    /// A scrubber for `secrets` (values shorter than 4 bytes are ignored:
    /// they would match everywhere and protect nothing).
    pub(crate) fn new(secrets: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut secrets: Vec<Vec<u8>> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    /// Whether there is anything to scrub.
    pub(crate) fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The length of the longest tail of `data` that is the start of a
    /// secret (a secret the next chunk may complete).
    pub(crate) fn partial_tail(&self, data: &[u8]) -> usize {
        let mut best = 0;
        for secret in &self.secrets {
            for k in (best + 1..secret.len()).rev() {
                if k <= data.len() && data[data.len() - k..] == secret[..k] {
                    best = k;
                    break;
                }
            }
        }
        best
    }

    /// `data` with every secret replaced, or `None` when it holds none.
    pub(crate) fn scrub(&self, data: &[u8]) -> Option<Vec<u8>> {
        let mut current: Option<Vec<u8>> = None;
        for secret in &self.secrets {
            let haystack = current.as_deref().unwrap_or(data);
            if let Some(replaced) = replace_all(haystack, secret, REDACTED.as_bytes()) {
                current = Some(replaced);
            }
        }
        current
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut start = 0;
    for i in memchr::memmem::find_iter(haystack, needle) {
        // Overlapping matches: the first one is replaced whole.
        if i < start {
            continue;
        }
        let o = out.get_or_insert_with(|| Vec::with_capacity(haystack.len()));
        o.extend_from_slice(&haystack[start..i]);
        o.extend_from_slice(with);
        start = i + needle.len();
    }
    let mut o = out?;
    o.extend_from_slice(&haystack[start..]);
    Some(o)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        let both = map(&[("content-length", "5"), ("transfer-encoding", "chunked")]);
        assert!(check_shape(&both).is_err());
        let two = map(&[("content-length", "5"), ("content-length", "6")]);
        assert!(check_shape(&two).is_err());
        let odd = map(&[("transfer-encoding", "gzip, chunked")]);
        assert!(check_shape(&odd).is_err());
        let ok = map(&[("content-length", "5"), ("content-length", "5")]);
        assert!(check_shape(&ok).is_ok());
        // Control characters never get this far: `HeaderValue` (and hyper's
        // parser before it) refuses them.
        assert!(HeaderValue::from_bytes(b"a\x01b").is_err());
        assert!(HeaderValue::from_bytes(b"a\rb").is_err());
    }

    #[test]
    fn identity_and_connection_listed_headers_are_dropped() {
        let inbound = map(&[
            ("authorization", "Bearer agent-token"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-mandate-agent", "root"),
            ("connection", "close, x-keep-me-not"),
            ("x-keep-me-not", "1"),
            ("x-api-key", "agent-chosen"),
            ("accept", "application/json"),
        ]);
        let out = forwardable(&inbound, &[HeaderName::from_static("x-api-key")]);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept"]);
    }

    #[test]
    fn secrets_are_scrubbed_longest_first() {
        let s = Scrubber::new([b"abcd".to_vec(), b"abcdef".to_vec(), b"x".to_vec()]);
        assert_eq!(
            s.scrub(b"<abcdef|abcd|x>").unwrap(),
            b"<[REDACTED]|[REDACTED]|x>".to_vec()
        );
        assert_eq!(s.scrub(b"nothing"), None);
    }
}
