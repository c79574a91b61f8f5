//! The one outbound HTTP client of attestation (discovery documents, JWKS,
//! SPIFFE bundles), with a guard against server-side request forgery.
//!
//! Rules, unless a provider explicitly allows private network targets:
//! - `https` only;
//! - the target must not be loopback, link-local (`169.254.0.0/16`,
//!   `fe80::/10`), private (`10/8`, `172.16/12`, `192.168/16`), unique-local
//!   (`fc00::/7`), carrier-grade NAT, unspecified, multicast or reserved. This
//!   is checked on the URL's host when it is an IP literal (the URL parser
//!   already turned `0x7f000001`, `2130706433`, `0177.0.0.1` and `127.1` into
//!   `127.0.0.1`; IPv4-mapped, -compatible, NAT64 and 6to4 IPv6 forms are
//!   checked by their embedded IPv4 address), and on **every resolved
//!   address** of a host name, in the resolver the connection uses, so a
//!   name cannot resolve differently between check and connect;
//! - redirects (at most [`MAX_REDIRECTS`]) pass the same checks;
//! - environment proxies are ignored (they would resolve names elsewhere);
//! - bodies are limited to [`MAX_BODY`] bytes, requests to [`TIMEOUT`].
//!
//! With `allow_private_network`, private and loopback targets are allowed,
//! and plain `http` too, but only to a loopback IP literal (a test issuer on
//! `127.0.0.1`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use url::{Host, Url};

/// Largest response body accepted, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;
/// Time limit of one fetch (connect, redirects and body).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 3;

/// Why a fetch was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL does not parse or has no host.
    #[error("invalid url `{0}`")]
    Url(String),
    /// The URL's scheme is not `https` (or `http` to loopback when allowed).
    #[error("url `{0}` must use https")]
    Scheme(String),
    /// The target is a private, loopback or otherwise internal address.
    #[error("refused to fetch `{url}`: {reason}")]
    PrivateTarget {
        /// The URL.
        url: String,
        /// Which address and why.
        reason: String,
    },
    /// The server answered with a non-success status.
    #[error("`{url}` answered http status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body exceeded [`MAX_BODY`].
    #[error("response from `{0}` exceeds {MAX_BODY} bytes")]
    TooLarge(String),
    /// The request failed (connection, TLS, timeout, refused redirect).
    #[error("fetching `{url}` failed: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// The error chain.
        reason: String,
    },
}

const INTERNAL: &str = "a loopback, link-local, private or reserved address";

/// Whether `ip` is an address an outbound fetch must not reach without
/// explicit permission.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", includes 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96).
    if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new(
            (s[6] >> 8) as u8,
            (s[6] & 0xff) as u8,
            (s[7] >> 8) as u8,
            (s[7] & 0xff) as u8,
        );
        return ip.is_unspecified() || ip.is_loopback() || is_internal_v4(v4);
    }
    // 6to4 (2002::/16) embeds an IPv4 address in the next 32 bits.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new(
            (s[1] >> 8) as u8,
            (s[1] & 0xff) as u8,
            (s[2] >> 8) as u8,
            (s[2] & 0xff) as u8,
        );
        return is_internal_v4(v4);
    }
    (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xfe00) == 0xfc00 // unique-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
}

/// Checks a URL before any connection: scheme, and the host when it is an
/// IP literal. Host names are checked at resolution.
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, FetchError> {
    let parsed = Url::parse(url).map_err(|_| FetchError::Url(url.to_owned()))?;
    check_parsed(&parsed, allow_private)?;
    Ok(parsed)
}

fn check_parsed(url: &Url, allow_private: bool) -> Result<(), FetchError> {
    let literal = match url.host() {
        None => return Err(FetchError::Url(url.to_string())),
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(Host::Domain(_)) => None,
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::Url(url.to_string()));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_private && literal.is_some_and(|ip| ip.is_loopback()) => {}
        _ => return Err(FetchError::Scheme(url.to_string())),
    }
    if let Some(ip) = literal
        && !allow_private
        && is_internal(ip)
    {
        return Err(FetchError::PrivateTarget {
            url: url.to_string(),
            reason: format!("address `{ip}` is loopback, link-local, private or reserved"),
        });
    }
    Ok(())
}

/// Resolves names and refuses the whole answer when any address is internal.
#[derive(Debug)]
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
                return Err(format!("`{host}` resolves to `{}`, {INTERNAL}", bad.ip()).into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The outbound client: one guarded and one permissive `reqwest` client
/// behind the same checks.
#[derive(Debug, Clone)]
pub struct Fetcher {
    guarded: reqwest::Client,
    permissive: reqwest::Client,
}

fn client(allow_private: bool) -> Result<reqwest::Client, FetchError> {
    let policy = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        match check_parsed(attempt.url(), allow_private) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e.to_string()),
        }
    });
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .redirect(policy)
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("mandate/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        b = b.dns_resolver(Arc::new(GuardedResolver));
    }
    b.build().map_err(|e| FetchError::Transport {
        url: String::new(),
        reason: chain(&e),
    })
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let msg = s.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        src = s.source();
    }
    parts.join(": ")
}

impl Fetcher {
    /// Builds both clients.
    pub fn new() -> Result<Self, FetchError> {
        Ok(Self {
            guarded: client(false)?,
            permissive: client(true)?,
        })
    }

    /// GETs `url`, accepting JSON, and returns the body.
    pub async fn get(&self, url: &str, allow_private: bool) -> Result<Vec<u8>, FetchError> {
        let parsed = check_url(url, allow_private)?;
        let client = if allow_private {
            &self.permissive
        } else {
            &self.guarded
        };
        let transport = |e: reqwest::Error| {
            let reason = chain(&e);
            if reason.contains(INTERNAL) {
                FetchError::PrivateTarget {
                    url: url.to_owned(),
                    reason,
                }
            } else {
                FetchError::Transport {
                    url: url.to_owned(),
                    reason,
                }
            }
        };
        let mut res = client
            .get(parsed)
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/jwk-set+json",
            )
            .send()
            .await
            .map_err(transport)?;
        if !res.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: res.status().as_u16(),
            });
        }
        if res.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(FetchError::TooLarge(url.to_owned()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(FetchError::TooLarge(url.to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        matches!(check_url(url, false), Err(FetchError::PrivateTarget { .. }))
    }

    #[test]
    fn encoded_loopback_forms_are_refused() {
        for url in [
            "https://127.0.0.1/",
            "https://0x7f000001/",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://0x7f.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:a00:1::]/",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
        ] {
            assert!(refused(url), "{url} must be refused");
        }
    }

    #[test]
    fn public_targets_and_schemes() {
        assert!(check_url("https://93.184.216.34/jwks", false).is_ok());
        assert!(check_url("https://[2606:4700::1111]/", false).is_ok());
        assert!(check_url("https://issuer.example.com/jwks", false).is_ok());
        assert!(matches!(
            check_url("http://issuer.example.com/", false),
            Err(FetchError::Scheme(_))
        ));
        assert!(matches!(
            check_url("ftp://issuer.example.com/x", true),
            Err(FetchError::Scheme(_))
        ));
        assert!(matches!(
            check_url("https://user:pw@issuer.example.com/", false),
            Err(FetchError::Url(_))
        ));
        // Allowed private: loopback literals may use http, names may not.
        assert!(check_url("http://127.0.0.1:8080/jwks", true).is_ok());
        assert!(check_url("https://10.0.0.1/jwks", true).is_ok());
        assert!(check_url("http://localhost:8080/jwks", true).is_err());
        assert!(check_url("http://10.0.0.1/jwks", true).is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_at_connect() {
        let f = Fetcher::new().unwrap();
        let err = f.get("https://localhost:1/x", false).await.unwrap_err();
        match err {
            FetchError::PrivateTarget { reason, .. } => {
                assert!(reason.contains("loopback"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
