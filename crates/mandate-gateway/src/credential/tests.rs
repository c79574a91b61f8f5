#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mandate_core::Clock as _;
use mandate_engine::{
    Actor, Engine, EngineConfig, NewResource, NewSecret, OpenedSecret, TokenConfig,
};
use mandate_jose::claims::Validation;
use mandate_jose::jws::Algorithm;
use mandate_jose::jwt::JwtVerifier;
use mandate_testkit::{FakeClock, TestDb};
use serde_json::json;
use time::macros::datetime;

use super::*;

const ISSUER: &str = "https://mandate.example.com";
const SECRET: &str = "s3cr3t-value-that-must-not-leak";

struct Env {
    _db: TestDb,
    engine: Engine,
    clock: Arc<FakeClock>,
}

async fn env() -> Env {
    let db = TestDb::sqlite();
    let clock = Arc::new(FakeClock::at(datetime!(2026-11-23 12:00:00 UTC)));
    let engine = Engine::new(
        db.open().await,
        clock.clone(),
        EngineConfig {
            trust_domain: "mandate.local".parse().unwrap(),
            review_period: time::Duration::days(90),
        },
    )
    .await
    .unwrap();
    engine
        .start_token_service([3; 32], ISSUER.into(), TokenConfig::default())
        .await
        .unwrap();
    Env {
        _db: db,
        engine,
        clock,
    }
}

/// The context of a request by `invoice-bot` (leaked: a test's lifetime).
fn ctx(engine: &Engine, act: Option<&serde_json::Value>) -> InjectContext<'static> {
    let mut claims = serde_json::Map::new();
    if let Some(a) = act {
        claims.insert("act".into(), a.clone());
    }
    let now = engine.now();
    let token = mandate_engine::oauth::AccessToken {
        claims,
        subject: "spiffe://mandate.local/agent/invoice-bot".into(),
        audience: "https://internal.example.com".into(),
        scopes: Vec::new(),
        exp: now.unix_timestamp() + 300,
        cnf_jkt: None,
        record: mandate_store::TokenRecord {
            jti: "jti-1".into(),
            parent_jti: None,
            agent: "invoice-bot".into(),
            txn: "txn-42".into(),
            audience: "https://internal.example.com".into(),
            issued_at: now,
            expires_at: now + time::Duration::minutes(5),
            revoked_at: None,
            scope: String::new(),
            chain: vec!["invoice-bot".into()],
        },
        env: String::new(),
    };
    InjectContext {
        plane: Box::leak(Box::new(crate::plane::Plane::Local(engine.clone()))),
        token: Box::leak(Box::new(token)),
        token_text: "the-agents-token",
        resource: "internal",
        upstream: "https://internal.example.com/api",
    }
}

fn opened(kind: &str, config: serde_json::Value, value: Option<&str>) -> OpenedSecret {
    OpenedSecret {
        name: "cred".into(),
        kind: kind.into(),
        config,
        value: value.map(|v| SecretString::from(v.to_owned())),
    }
}

fn credential(kind: &str, config: serde_json::Value, value: Option<&str>) -> Credential {
    Credential::from_opened(opened(kind, config, value), reqwest::Client::new()).unwrap()
}

struct Request {
    method: http::Method,
    url: url::Url,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Request {
    fn get(url: &str) -> Self {
        Self {
            method: http::Method::GET,
            url: url.parse().unwrap(),
            headers: http::HeaderMap::new(),
            body: Vec::new(),
        }
    }

    fn outbound(&mut self) -> Outbound<'_> {
        Outbound {
            method: &self.method,
            url: &mut self.url,
            headers: &mut self.headers,
            body: Some(&self.body),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

/// Neither `Debug` nor `Serialize` shows `secret`.
fn assert_redacted(c: &Credential, secret: &str) {
    let debug = format!("{c:?}");
    let json = serde_json::to_string(c).unwrap();
    assert!(!debug.contains(secret), "{debug}");
    assert!(!json.contains(secret), "{json}");
    assert!(json.contains("<redacted>"), "{json}");
}

#[tokio::test]
async fn static_secrets_go_where_configured() {
    let env = env().await;
    let cx = ctx(&env.engine, None);

    let bearer = credential("static", json!({"inject": "bearer"}), Some(SECRET));
    let mut r = Request::get("https://api.example.com/v1/items");
    let lease = bearer.inject(r.outbound(), &cx).await.unwrap();
    assert_eq!(r.header("authorization"), format!("Bearer {SECRET}"));
    assert!(r.headers.get("authorization").unwrap().is_sensitive());
    assert_eq!(lease.expires_at, None);
    assert_eq!(lease.scrub[0].expose_secret(), SECRET);
    assert_eq!(bearer.injected_headers(), [http::header::AUTHORIZATION]);
    assert_redacted(&bearer, SECRET);

    let header = credential(
        "static",
        json!({"inject": "header", "header": "X-Api-Key"}),
        Some(SECRET),
    );
    let mut r = Request::get("https://api.example.com/v1/items");
    header.inject(r.outbound(), &cx).await.unwrap();
    assert_eq!(r.header("x-api-key"), SECRET);
    assert!(r.headers.get("authorization").is_none());
    assert_eq!(
        header.injected_headers(),
        [HeaderName::from_static("x-api-key")]
    );
    assert_redacted(&header, SECRET);

    let query = credential(
        "static",
        json!({"inject": "query", "query": "api_key"}),
        Some("a&b=c"),
    );
    let mut r = Request::get("https://api.example.com/v1/items?page=2");
    query.inject(r.outbound(), &cx).await.unwrap();
    assert_eq!(r.url.query(), Some("page=2&api_key=a%26b%3Dc"));
    assert_eq!(query.injected_query(), Some("api_key"));
    assert!(query.injected_headers().is_empty());
    assert_redacted(&query, "a&b=c");

    let basic = credential(
        "static",
        json!({"inject": "basic", "basic_user": "svc"}),
        Some(SECRET),
    );
    let mut r = Request::get("https://api.example.com/");
    basic.inject(r.outbound(), &cx).await.unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("svc:{SECRET}"));
    assert_eq!(r.header("authorization"), format!("Basic {b64}"));
    assert_redacted(&basic, SECRET);
    assert_eq!(basic.kind(), "static");
    assert!(!basic.needs_body());
}

#[test]
fn unusable_secrets_are_refused_without_showing_the_value() {
    let cases = [
        opened("static", json!({"inject": "header"}), Some(SECRET)),
        opened("static", json!({}), None),
        opened("static", json!({}), Some("line\r\nInjected: yes")),
        opened(
            "oauth-client-credentials",
            json!({"client_id": "c"}),
            Some(SECRET),
        ),
        opened(
            "aws-sigv4",
            json!({"access_key_id": "AKID", "region": "us-east-1"}),
            Some(SECRET),
        ),
        opened("vault", json!({}), Some(SECRET)),
    ];
    for o in cases {
        let kind = o.kind.clone();
        let e = Credential::from_opened(o, reqwest::Client::new()).unwrap_err();
        assert!(!e.to_string().contains(SECRET), "{kind}: {e}");
        assert!(matches!(e, CredentialError::Config { .. }), "{kind}: {e}");
    }
}

/// A token endpoint on loopback: counts its calls and answers
/// `tok-<n>` valid for 120 s, or 401 when the client secret is wrong.
async fn token_server() -> (String, Arc<AtomicUsize>) {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    let hits = Arc::new(AtomicUsize::new(0));
    async fn token(
        State(hits): State<Arc<AtomicUsize>>,
        headers: HeaderMap,
        body: String,
    ) -> axum::response::Response {
        let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("mandate:{SECRET}"))
        );
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(expected.as_str()) {
            let err =
                json!({"error": "invalid_client", "error_description": format!("bad {auth:?}")});
            return (StatusCode::UNAUTHORIZED, axum::Json(err)).into_response();
        }
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert!(form.contains(&("grant_type".into(), "client_credentials".into())));
        assert!(form.contains(&("scope".into(), "read write".into())));
        axum::Json(
            json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 120}),
        )
        .into_response()
    }
    let app = axum::Router::new()
        .route("/token", axum::routing::post(token))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/token"), hits)
}

#[tokio::test]
async fn oauth_tokens_are_fetched_once_and_refreshed_before_expiry() {
    let env = env().await;
    let cx = ctx(&env.engine, None);
    let (url, hits) = token_server().await;
    let config = json!({"token_url": url, "client_id": "mandate", "scope": "read write"});
    let c = credential("oauth-client-credentials", config, Some(SECRET));
    assert_eq!(c.injected_headers(), [http::header::AUTHORIZATION]);

    let mut r = Request::get("https://api.example.com/");
    let lease = c.inject(r.outbound(), &cx).await.unwrap();
    assert_eq!(r.header("authorization"), "Bearer tok-1");
    let now = env.clock.now().unix_timestamp();
    assert_eq!(lease.expires_at, Some(now + 120));
    assert_eq!(lease.scrub[0].expose_secret(), "tok-1");

    // Cached: the second request does not reach the token endpoint.
    env.clock.advance(time::Duration::seconds(60));
    let mut r = Request::get("https://api.example.com/");
    c.inject(r.outbound(), &cx).await.unwrap();
    assert_eq!(r.header("authorization"), "Bearer tok-1");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Within 30 s of expiry it is replaced.
    env.clock.advance(time::Duration::seconds(31));
    let mut r = Request::get("https://api.example.com/");
    let lease = c.inject(r.outbound(), &cx).await.unwrap();
    assert_eq!(r.header("authorization"), "Bearer tok-2");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(
        lease.expires_at,
        Some(env.clock.now().unix_timestamp() + 120)
    );
    assert_redacted(&c, SECRET);
    assert_redacted(&c, "tok-2");
}

#[tokio::test]
async fn a_refused_client_gets_the_error_code_only() {
    let env = env().await;
    let (url, _hits) = token_server().await;
    let config = json!({"token_url": url, "client_id": "mandate", "scope": "read write"});
    let c = credential("oauth-client-credentials", config, Some("wrong-secret"));
    let mut r = Request::get("https://api.example.com/");
    let e = c
        .inject(r.outbound(), &ctx(&env.engine, None))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("401") && msg.contains("invalid_client"),
        "{msg}"
    );
    assert!(
        !msg.contains("wrong-secret") && !msg.contains("bad"),
        "{msg}"
    );
    assert!(r.headers.get("authorization").is_none());

    // Nothing listens: a clear error, no panic.
    let dead = json!({"token_url": "http://127.0.0.1:9/token", "client_id": "mandate"});
    let c = credential("oauth-client-credentials", dead, Some(SECRET));
    let e = c
        .inject(r.outbound(), &ctx(&env.engine, None))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot reach"), "{e}");
}

#[test]
fn aws_sigv4_matches_the_get_vanilla_vector() {
    // AWS SigV4 test suite, `get-vanilla`.
    let c = credential(
        "aws-sigv4",
        json!({"access_key_id": "AKIDEXAMPLE", "region": "us-east-1", "service": "service"}),
        Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    );
    assert!(c.needs_body());
    assert_redacted(&c, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let Credential::AwsSigV4(aws) = &c else {
        panic!("not aws");
    };
    let mut r = Request::get("https://example.amazonaws.com/");
    let at = datetime!(2015-08-30 12:36:00 UTC);
    aws.sign_at(r.outbound(), at.into()).unwrap();
    assert_eq!(r.header("x-amz-date"), "20150830T123600Z");
    assert_eq!(
        r.header("authorization"),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    for h in ["authorization", "x-amz-date"] {
        assert!(c.injected_headers().contains(&HeaderName::from_static(h)));
    }
}

#[tokio::test]
async fn aws_sigv4_signs_the_body_and_sends_the_session_token() {
    let env = env().await;
    let c = credential(
        "aws-sigv4",
        json!({"access_key_id": "AKIDEXAMPLE", "region": "eu-west-1", "service": "execute-api"}),
        Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\nsession-token-value"),
    );
    assert_redacted(&c, "session-token-value");
    let sign = |body: &[u8]| {
        let mut r = Request {
            method: http::Method::POST,
            url: "https://abc.execute-api.eu-west-1.amazonaws.com/prod/items"
                .parse()
                .unwrap(),
            headers: http::HeaderMap::new(),
            body: body.to_vec(),
        };
        let c = &c;
        let engine = &env.engine;
        async move {
            let lease = c.inject(r.outbound(), &ctx(engine, None)).await.unwrap();
            (r, lease)
        }
    };
    let (a, lease) = sign(b"{\"n\":1}").await;
    let (b, _) = sign(b"{\"n\":2}").await;
    assert_eq!(a.header("x-amz-security-token"), "session-token-value");
    assert_eq!(lease.scrub[0].expose_secret(), "session-token-value");
    // The engine's clock is the signing time.
    assert_eq!(a.header("x-amz-date"), "20261123T120000Z");
    assert!(a.header("authorization").contains("x-amz-security-token"));
    // A different body is a different signature.
    assert_ne!(a.header("authorization"), b.header("authorization"));

    // Without a buffered body there is nothing to sign.
    let mut r = Request::get("https://abc.execute-api.eu-west-1.amazonaws.com/");
    let out = Outbound {
        body: None,
        ..r.outbound()
    };
    assert!(c.inject(out, &ctx(&env.engine, None)).await.is_err());
}

#[tokio::test]
async fn mandate_jwts_verify_with_the_published_jwks() {
    let env = env().await;
    let admin = Actor {
        token_id: "tok-admin".into(),
    };
    env.engine
        .set_secret(
            &admin,
            NewSecret {
                name: "jwt".into(),
                kind: "mandate-jwt".into(),
                config: Default::default(),
                value: None,
            },
        )
        .await
        .unwrap();
    env.engine
        .add_resource(
            &admin,
            NewResource {
                name: "internal".into(),
                scopes: vec!["read".into()],
                upstream: Some("https://internal.example.com/api".into()),
                credential: Some("jwt".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let opened = env.engine.open_secret("jwt").await.unwrap();
    let c = Credential::from_opened(opened, reqwest::Client::new()).unwrap();
    assert_eq!(c.kind(), "mandate-jwt");
    let act = json!({"sub": "spiffe://mandate.local/agent/planner"});
    let mut r = Request::get("https://internal.example.com/api/x");
    let lease = c
        .inject(r.outbound(), &ctx(&env.engine, Some(&act)))
        .await
        .unwrap();
    let jwt = r
        .header("authorization")
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let now = env.clock.now().unix_timestamp();
    assert_eq!(lease.expires_at, Some(now + 60));
    assert_eq!(lease.scrub[0].expose_secret(), jwt);

    // The upstream URL is the audience when none is configured.
    let verified = JwtVerifier::new(
        env.engine.published_jwks().await.unwrap(),
        &[Algorithm::Es256],
        Validation::new(ISSUER, "https://internal.example.com/api"),
    )
    .require_typ("JWT")
    .verify(&jwt, now)
    .unwrap();
    let claims = verified.claims();
    assert_eq!(
        claims.sub(),
        Some("spiffe://mandate.local/agent/invoice-bot")
    );
    assert_eq!(claims.get("txn").unwrap(), "txn-42");
    assert_eq!(claims.get("act").unwrap(), &act);
    assert_eq!(claims.exp().unwrap(), Some(now + 60));
    assert_redacted(&c, &jwt);

    // A configured audience wins.
    let c = credential(
        "mandate-jwt",
        json!({"audience": "urn:example:internal", "ttl_secs": 30}),
        None,
    );
    let mut r = Request::get("https://internal.example.com/api/x");
    let lease = c
        .inject(r.outbound(), &ctx(&env.engine, None))
        .await
        .unwrap();
    assert_eq!(lease.expires_at, Some(now + 30));
    let jwt = r
        .header("authorization")
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    JwtVerifier::new(
        env.engine.published_jwks().await.unwrap(),
        &[Algorithm::Es256],
        Validation::new(ISSUER, "urn:example:internal"),
    )
    .verify(&jwt, now)
    .unwrap();
}

/// The proxy awaits injections inside axum handlers: the future is `Send`.
#[expect(dead_code, reason = "a compile-time check")]
fn inject_is_send(c: &Credential, out: Outbound<'_>, cx: &InjectContext<'_>) {
    fn send<T: Send>(_: T) {}
    send(c.inject(out, cx));
}
