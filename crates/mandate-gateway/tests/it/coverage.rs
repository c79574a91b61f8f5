//! Declared means populated: for every attribute the Cedar schema declares
//! (in the context and on the entities), a request that sets it goes through
//! the real path — the token endpoint or the gateway — and a `forbid` on it
//! denies that request. The list of cases is checked against the schema:
//! an attribute added to it without a case here fails the test.

use std::collections::{BTreeMap, BTreeSet};

use mandate_attest::ProviderSpec;
use mandate_core::Labels;
use mandate_engine::oauth::{
    AWS_IID_ASSERTION_TYPE, GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS,
    TOKEN_TYPE_ID, TOKEN_TYPE_JWT, TokenRequest,
};
use mandate_engine::{NewAgent, NewResource, PolicyFile};
use mandate_jose::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::support::*;

const TEST_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");
const K8S_ISSUER: &str = "https://issuer.example.com";
const ES_KID: &str = "SoABiieYuNx4UdqYvZRVeuC6SihxgLrhLy9peHMHpTc";
const LEDGER: &str = "https://ledger.test";
const SPIFFE_ID: &str = "spiffe://partner.example/ns/pay/sa/payments";

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{TEST_DATA}/{rel}")).unwrap()
}

fn es_key() -> SigningKey {
    SigningKey::from_pem(
        Algorithm::Es256,
        &read("kubernetes/ecdsa-p256-private-key.pem"),
    )
    .unwrap()
    .with_kid(ES_KID)
}

/// A fixture's claims with `aud` and the times set for now.
fn fixture(rel: &str) -> Value {
    let mut c: Value = serde_json::from_slice(&read(rel)).unwrap();
    c["aud"] = json!("mandate");
    c["iat"] = json!(now() - 10);
    c["nbf"] = json!(now() - 10);
    c["exp"] = json!(now() + 600);
    c
}

fn sign(claims: &Value) -> String {
    es_key()
        .sign(None, &serde_json::to_vec(claims).unwrap())
        .unwrap()
}

/// How the request that sets an attribute is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// jwt-bearer with the Kubernetes fixture, for resource `ledger`.
    Kubernetes,
    /// jwt-bearer with the GitHub Actions fixture.
    Github,
    /// client_credentials with the AWS instance identity document.
    Aws,
    /// jwt-bearer with a SPIFFE JWT-SVID.
    Spiffe,
    /// Token exchange: `bot` (Kubernetes) exchanges `alpha`'s token.
    Delegated,
    /// Token exchange: `bot` acts for user ann (ID token with groups).
    User,
    /// `GET /gw/api/probe/x` with alpha's token.
    Http,
    /// `tools/call` of tool `echo` on MCP route `tools`, with arguments.
    Mcp,
}

impl Via {
    /// The action the probe `forbid` is scoped to.
    fn action(self) -> &'static str {
        match self {
            Via::Http => "http:request",
            Via::Mcp => "mcp:tools/call",
            _ => "token:issue",
        }
    }
}

/// `(attribute, condition true for the request, how it is made)`.
fn cases(hours: &str, weekdays: &str, unix: i64) -> Vec<(&'static str, String, Via)> {
    let claim = |name: &str, value: &str| {
        format!(
            "context has attestation && context.attestation.claims has {name} && context.attestation.claims.{name} == \"{value}\""
        )
    };
    let arg = |name: &str, value: &str| {
        format!("context.args has {name} && context.args.{name} == \"{value}\"")
    };
    let user = |c: &str| format!("context has on_behalf_of && {c}");
    let mut v: Vec<(&'static str, String, Via)> = vec![
        ("context.attestation.provider", "context has attestation && context.attestation.provider == \"k8s\"".into(), Via::Kubernetes),
        ("context.attestation.claims.iss", claim("iss", K8S_ISSUER), Via::Kubernetes),
        ("context.attestation.claims.sub", claim("sub", "system:serviceaccount:test:my-service-account"), Via::Kubernetes),
        ("context.attestation.claims.aud", claim("aud", "mandate"), Via::Kubernetes),
        ("context.attestation.claims.namespace", claim("namespace", "test"), Via::Kubernetes),
        ("context.attestation.claims.service_account", claim("service_account", "my-service-account"), Via::Kubernetes),
        ("context.attestation.claims.pod", claim("pod", "my-pod"), Via::Kubernetes),
        ("context.attestation.claims.node", claim("node", "node-1"), Via::Kubernetes),
        ("context.attestation.claims.repository", claim("repository", "octo-org/octo-repo"), Via::Github),
        ("context.attestation.claims.repository_owner", claim("repository_owner", "octo-org"), Via::Github),
        ("context.attestation.claims.ref", claim("ref", "refs/heads/main"), Via::Github),
        ("context.attestation.claims.workflow", claim("workflow", "example-workflow"), Via::Github),
        ("context.attestation.claims.environment", claim("environment", "prod"), Via::Github),
        ("context.attestation.claims.actor", claim("actor", "octocat"), Via::Github),
        ("context.attestation.claims.account_id", claim("account_id", "692406183521"), Via::Aws),
        ("context.attestation.claims.region", claim("region", "us-west-2"), Via::Aws),
        ("context.attestation.claims.instance_id", claim("instance_id", "i-0a30e04d85e6f8793"), Via::Aws),
        ("context.attestation.claims.spiffe_id", claim("spiffe_id", SPIFFE_ID), Via::Spiffe),
        ("context.attestation.evidence", "context has attestation && context.attestation.evidence.hasTag(\"kubernetes.io.pod.uid\") && context.attestation.evidence.getTag(\"kubernetes.io.pod.uid\") == \"5f2a8e61-1c4d-4b7a-a0e9-3d6b2c8f7e15\"".into(), Via::Kubernetes),
        ("Evidence[tag]", "context has attestation && context.attestation.evidence.hasTag(\"kubernetes.io.node.uid\") && context.attestation.evidence.getTag(\"kubernetes.io.node.uid\") == \"0d4e9c1a-6b55-4f0e-8c3b-91a7e2f4b6d0\"".into(), Via::Kubernetes),
        ("context.delegation.chain", "context.delegation.chain.contains(\"alpha\")".into(), Via::Delegated),
        ("context.delegation.depth", "context.delegation.depth == 1".into(), Via::Delegated),
        ("context.on_behalf_of", user("context.on_behalf_of == Mandate::User::\"ann@example.com\""), Via::User),
        ("User.email", user("context.on_behalf_of.email == \"ann@example.com\""), Via::User),
        ("User in Group", user("context.on_behalf_of in Mandate::Group::\"sales\""), Via::User),
        ("context.env", "context.env == \"prod\"".into(), Via::Kubernetes),
        ("context.time.hour", format!("[{hours}].contains(context.time.hour)"), Via::Kubernetes),
        ("context.time.weekday", format!("[{weekdays}].contains(context.time.weekday)"), Via::Kubernetes),
        ("context.time.unix", format!("context.time.unix >= {unix} && context.time.unix <= {}", unix + 120), Via::Kubernetes),
        ("context.scopes", "context.scopes.contains(\"read\")".into(), Via::Kubernetes),
        // No drift has been seen: the score is there, and 0.
        ("context.risk", "context.risk == 0".into(), Via::Kubernetes),
        ("context.client_ip", "context has client_ip && context.client_ip == ip(\"127.0.0.1\")".into(), Via::Http),
        ("context.http.method", "context has http && context.http.method == \"GET\"".into(), Via::Http),
        ("context.http.path", "context has http && context.http.path == \"/probe/x\"".into(), Via::Http),
        ("context.mcp.method", "context has mcp && context.mcp.method == \"tools/call\"".into(), Via::Mcp),
        ("context.mcp.target", "context has mcp && context.mcp.target == \"echo\"".into(), Via::Mcp),
        ("context.args.labels", "context.args has labels && context.args.labels.contains(\"bug\")".into(), Via::Mcp),
        ("context.args.limit", "context.args has limit && context.args.limit == 5".into(), Via::Mcp),
        ("Agent.kind", "principal.kind == \"autonomous\"".into(), Via::Kubernetes),
        ("Agent.owner", "principal.owner == \"alice@example.com\"".into(), Via::Kubernetes),
        ("Agent.status", "principal.status == \"active\"".into(), Via::Kubernetes),
        ("Agent.env", "principal.env == \"prod\"".into(), Via::Kubernetes),
        ("Agent.trust_provider", "principal.trust_provider == \"k8s\"".into(), Via::Kubernetes),
        ("Agent[tag]", "principal.hasTag(\"team\") && principal.getTag(\"team\") == \"payments\"".into(), Via::Kubernetes),
        ("Resource.kind", "resource.kind == \"http\"".into(), Via::Kubernetes),
        ("Resource.owner", "resource.owner == \"fiona@example.com\"".into(), Via::Kubernetes),
        ("Resource.sensitivity", "resource.sensitivity == \"restricted\"".into(), Via::Kubernetes),
        ("Resource[tag]", "resource.hasTag(\"tier\") && resource.getTag(\"tier\") == \"gold\"".into(), Via::Kubernetes),
        ("Tool.name", "resource.name == \"echo\"".into(), Via::Mcp),
        ("Tool.sensitivity", "resource.sensitivity == \"confidential\"".into(), Via::Mcp),
        ("Tool in Resource", "resource in Mandate::Resource::\"tools\"".into(), Via::Mcp),
    ];
    for (name, value) in ARGS {
        let attr: &'static str = Box::leak(format!("context.args.{name}").into_boxed_str());
        v.push((attr, arg(name, value), Via::Mcp));
    }
    v
}

/// The string tool arguments the MCP call sends.
const ARGS: [(&str, &str); 11] = [
    ("repo", "acme/web"),
    ("owner", "acme"),
    ("title", "Crash"),
    ("body", "steps"),
    ("branch", "main"),
    ("path", "src/lib.rs"),
    ("url", "https://example.com/x"),
    ("method", "GET"),
    ("query", "select 1"),
    ("database", "prod"),
    ("table", "users"),
];

/// An MCP upstream answering every request with an empty result.
async fn mcp_upstream() -> String {
    let app =
        axum::Router::new().fallback(axum::routing::post(|body: axum::body::Bytes| async move {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            axum::Json(json!({"jsonrpc": "2.0", "id": v["id"], "result": {"content": []}}))
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

struct World {
    env: Env,
    idp: mandate_testkit::oidc::TestIssuer,
}

async fn world() -> World {
    let (up, _log) = upstream(None).await;
    let env = env(&up).await;
    let admin = &env.admin;
    let e = &env.engine;
    let labels: BTreeMap<String, String> = [
        ("env", "prod"),
        ("team", "payments"),
        ("trust-provider", "k8s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    e.register_agent(
        admin,
        NewAgent {
            name: "bot".parse().unwrap(),
            kind: mandate_core::AgentKind::Autonomous,
            owner: "alice@example.com".parse().unwrap(),
            description: String::new(),
            provenance: Default::default(),
            labels: Labels::try_from(labels).unwrap(),
            envelope: String::new(),
            review_by: None,
        },
    )
    .await
    .unwrap();
    let jwks: Value = serde_json::from_slice(&read("kubernetes/jwks.json")).unwrap();
    let keys = json!({"from": "inline", "document": jwks});
    let mut svid_jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == ES_KID)
        .cloned()
        .unwrap();
    svid_jwk["use"] = json!("jwt-svid");
    let idp = mandate_testkit::oidc::TestIssuer::start().await;
    for (name, spec, rule, private) in [
        (
            "k8s",
            json!({"kind": "kubernetes", "config": {"issuer": K8S_ISSUER, "audience": "mandate", "keys": keys}}),
            "kubernetes.io.serviceaccount.name=my-service-account",
            false,
        ),
        (
            "gha",
            json!({"kind": "github-actions", "config": {"audience": "mandate", "keys": keys}}),
            "repository=octo-org/octo-repo",
            false,
        ),
        (
            "aws",
            json!({"kind": "aws-iid", "config": {"accounts": ["692406183521"], "regions": ["us-west-2"], "max_age_secs": 315_360_000}}),
            "account_id=692406183521",
            false,
        ),
        (
            "partner",
            json!({"kind": "spiffe", "config": {"trust_domain": "partner.example", "audience": "mandate", "bundle": {"from": "inline", "document": {"keys": [svid_jwk]}}}}),
            "spiffe_id=spiffe://partner.example/ns/pay/sa/payments",
            false,
        ),
        (
            "corp",
            json!({"kind": "oidc", "config": {"issuer": idp.issuer(), "audience": "mandate"}}),
            "",
            true,
        ),
    ] {
        let spec: ProviderSpec = serde_json::from_value(spec).unwrap();
        e.add_provider(admin, name, spec, private).await.unwrap();
        if !rule.is_empty() {
            let m = mandate_attest::binding::ClaimMatch::parse(rule).unwrap();
            e.add_binding(admin, name, &"bot".parse().unwrap(), vec![m])
                .await
                .unwrap();
        }
    }
    e.add_resource(
        admin,
        NewResource {
            name: "ledger".into(),
            audience: LEDGER.into(),
            scopes: vec!["read".into()],
            kind: Some("http".into()),
            sensitivity: Some("restricted".into()),
            owner: Some("fiona@example.com".into()),
            labels: [("tier".to_owned(), "gold".to_owned())].into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mcp = mcp_upstream().await;
    e.add_resource(
        admin,
        NewResource {
            name: "tools".into(),
            audience: format!("{}/gw/tools", env.url),
            scopes: vec!["read".into()],
            kind: Some("mcp".into()),
            sensitivity: Some("confidential".into()),
            upstream: Some(mcp),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    World { env, idp }
}

impl World {
    async fn grant(&self, params: Vec<(&str, String)>) -> Result<(), String> {
        self.env
            .engine
            .token_grant(TokenRequest {
                params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                dpop: None,
                endpoint_url: format!("{}/oauth2/token", self.env.url),
                client_ip: None,
            })
            .await
            .map(|_| ())
            .map_err(|e| format!("{}: {}", e.error, e.description))
    }

    fn k8s(&self) -> String {
        sign(&fixture("kubernetes/claims-example.json"))
    }

    /// Makes the request `via`; `Ok` when it was allowed, else the
    /// determining policies of its denial.
    async fn request(&self, via: Via) -> Result<(), Value> {
        let jwt_bearer = |assertion: String| {
            vec![
                ("grant_type", GRANT_JWT_BEARER.to_owned()),
                ("assertion", assertion),
                ("resource", LEDGER.to_owned()),
                ("scope", "read".to_owned()),
            ]
        };
        let exchange = |subject: String, subject_type: &str, actor: String| {
            vec![
                ("grant_type", GRANT_TOKEN_EXCHANGE.to_owned()),
                ("subject_token", subject),
                ("subject_token_type", subject_type.to_owned()),
                ("actor_token", actor),
                ("actor_token_type", TOKEN_TYPE_JWT.to_owned()),
                ("resource", LEDGER.to_owned()),
                ("scope", "read".to_owned()),
            ]
        };
        let granted = match via {
            Via::Kubernetes => self.grant(jwt_bearer(self.k8s())).await,
            Via::Github => {
                self.grant(jwt_bearer(sign(&fixture(
                    "github-actions/claims-example.json",
                ))))
                .await
            }
            Via::Spiffe => {
                let svid = sign(&json!({
                    "sub": SPIFFE_ID, "aud": ["mandate"], "exp": now() + 300, "iat": now(),
                }));
                self.grant(jwt_bearer(svid)).await
            }
            Via::Aws => {
                let doc = String::from_utf8(read("aws-iid/rsa2048")).unwrap();
                self.grant(vec![
                    ("grant_type", "client_credentials".to_owned()),
                    ("client_assertion_type", AWS_IID_ASSERTION_TYPE.to_owned()),
                    ("client_assertion", doc),
                    ("resource", LEDGER.to_owned()),
                    ("scope", "read".to_owned()),
                ])
                .await
            }
            Via::Delegated => {
                let alpha = self.env.token_for(LEDGER, "read", None).await;
                self.grant(exchange(alpha, TOKEN_TYPE_ACCESS, self.k8s()))
                    .await
            }
            Via::User => {
                let id_token = self.idp.sign(&json!({
                    "iss": self.idp.issuer(), "sub": "u-1", "aud": "mandate",
                    "email": "ann@example.com", "groups": ["sales"],
                    "exp": now() + 600, "iat": now(),
                }));
                self.grant(exchange(id_token, TOKEN_TYPE_ID, self.k8s()))
                    .await
            }
            Via::Http | Via::Mcp => {
                let route = if via == Via::Http { "api" } else { "tools" };
                let token = self.env.token(route, "read", None).await;
                let r = if via == Via::Http {
                    client()
                        .get(format!("{}/gw/api/probe/x", self.env.url))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap()
                } else {
                    let mut args: serde_json::Map<String, Value> = ARGS
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), json!(v)))
                        .collect();
                    args.insert("labels".into(), json!(["bug", "p1"]));
                    args.insert("limit".into(), json!(5));
                    client()
                        .post(format!("{}/gw/tools", self.env.url))
                        .bearer_auth(&token)
                        .header("accept", "application/json, text/event-stream")
                        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                      "params": {"name": "echo", "arguments": args}}))
                        .send()
                        .await
                        .unwrap()
                };
                let status = r.status();
                let body: Value = r.json().await.unwrap_or_default();
                let ty = if via == Via::Http {
                    "gateway.request"
                } else {
                    "gateway.mcp"
                };
                let ev = &self.env.events(ty).await[0];
                let allowed = ev.detail["result"] == "answered";
                assert_eq!(
                    allowed,
                    status.is_success() && body.get("error").is_none(),
                    "{ev:?}"
                );
                return if allowed {
                    Ok(())
                } else {
                    Err(ev.detail["decision"]["policies"].clone())
                };
            }
        };
        match granted {
            Ok(()) => Ok(()),
            Err(e) => {
                let ev = &self.env.events("token.denied").await[0];
                assert!(e.starts_with("access_denied"), "{e}");
                Err(ev.detail["policies"].clone())
            }
        }
    }

    async fn push(&self, extra: &str) {
        self.env
            .engine
            .push_policies(
                &self.env.admin,
                vec![PolicyFile {
                    name: "coverage.cedar".into(),
                    text: format!("@id(\"all\")\npermit(principal, action, resource);\n{extra}"),
                }],
                "coverage".into(),
            )
            .await
            .unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
}

#[tokio::test]
async fn policy_01_every_declared_attribute_enforced() {
    let w = world().await;
    let t = time::OffsetDateTime::now_utc();
    let later = t + time::Duration::minutes(2);
    let hours = format!("{}, {}", t.hour(), later.hour());
    let weekdays = format!(
        "{}, {}",
        t.weekday().number_from_monday(),
        later.weekday().number_from_monday()
    );
    let cases = cases(&hours, &weekdays, t.unix_timestamp() - 5);

    // Every declared attribute has a case, and every case a declared attribute.
    let schema = mandate_policy::Schema::mandate().unwrap();
    let declared: BTreeSet<&str> = schema
        .declared_attributes()
        .iter()
        .map(String::as_str)
        .collect();
    let covered: BTreeSet<&str> = cases.iter().map(|(a, _, _)| *a).collect();
    let missing: Vec<_> = declared.difference(&covered).collect();
    let unknown: Vec<_> = covered.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "attributes the schema declares with no enforcement case here: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "cases for undeclared attributes: {unknown:?}"
    );

    // With only the permit, every request goes through.
    w.push("").await;
    for via in [
        Via::Kubernetes,
        Via::Github,
        Via::Aws,
        Via::Spiffe,
        Via::Delegated,
        Via::User,
        Via::Http,
        Via::Mcp,
    ] {
        assert_eq!(w.request(via).await, Ok(()), "{via:?} without a forbid");
    }
    // A forbid on each attribute denies the request that sets it.
    for (attribute, condition, via) in &cases {
        w.push(&format!(
            "@id(\"probe\")\nforbid(principal, action == Mandate::Action::\"{}\", resource) when {{ {condition} }};",
            via.action()
        ))
        .await;
        assert_eq!(
            w.request(*via).await,
            Err(json!(["probe"])),
            "a forbid on `{attribute}` ({condition}) must deny"
        );
    }
}
