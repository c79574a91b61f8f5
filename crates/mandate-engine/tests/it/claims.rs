//! Every claim a policy can name is populated, for every provider kind: each
//! kind's verified claims, from the real fixtures in `testdata/`, go through
//! the token endpoint, and a `forbid` on each claim of the schema's
//! vocabulary (`context.attestation.claims`) and on a claim outside it
//! (`context.attestation.evidence`) denies the grant.

use mandate_attest::ProviderSpec;
use mandate_core::ProviderKind;
use mandate_engine::oauth::{
    AWS_IID_ASSERTION_TYPE, GRANT_JWT_BEARER, OAuthError, TokenRequest, TokenResponse,
};
use mandate_engine::{NewResource, PolicyFile, TokenConfig};
use serde_json::{Value, json};

use crate::support::*;

const ISSUER: &str = "https://mandate.test";
const API: &str = "https://api.test";
const PERMIT: &str =
    "@id(\"tokens\")\npermit(principal, action == Mandate::Action::\"token:issue\", resource);\n";

/// An engine issuing tokens for `api`, with agent `bot` bound to `provider`
/// (added from `spec`) by `rule`.
async fn setup(provider: &str, spec: Value, rule: &str) -> Env {
    let env = env().await;
    env.engine
        .start_token_service([7; 32], ISSUER.into(), TokenConfig::default())
        .await
        .unwrap();
    let spec: ProviderSpec = serde_json::from_value(spec).unwrap();
    env.engine
        .add_provider(&env.admin, provider, spec, false)
        .await
        .unwrap();
    env.agent("bot").await;
    env.bind(provider, "bot", &[rule]).await;
    env.engine
        .add_resource(
            &env.admin,
            NewResource {
                name: "api".into(),
                audience: API.into(),
                scopes: vec!["read".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env
}

async fn push(env: &Env, text: &str) {
    env.engine
        .push_policies(
            &env.admin,
            vec![PolicyFile {
                name: "claims.cedar".into(),
                text: format!("{PERMIT}{text}"),
            }],
            "claims".into(),
        )
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

/// How the workload proves itself at the token endpoint.
enum Proof {
    /// A workload JWT as a jwt-bearer assertion.
    Jwt(String),
    /// An AWS instance identity document as a client assertion.
    Aws(String),
}

async fn grant(env: &Env, proof: &Proof) -> Result<TokenResponse, OAuthError> {
    let mut p = vec![("resource", API.to_owned()), ("scope", "read".to_owned())];
    match proof {
        Proof::Jwt(t) => {
            p.push(("grant_type", GRANT_JWT_BEARER.to_owned()));
            p.push(("assertion", t.clone()));
        }
        Proof::Aws(doc) => {
            p.push(("grant_type", "client_credentials".to_owned()));
            p.push(("client_assertion_type", AWS_IID_ASSERTION_TYPE.to_owned()));
            p.push(("client_assertion", doc.clone()));
        }
    }
    env.engine
        .token_grant(TokenRequest {
            params: p.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            dpop: None,
            endpoint_url: format!("{ISSUER}/oauth2/token"),
            client_ip: None,
        })
        .await
}

fn cedar_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Shows that `proof` arrives in the policy context with exactly the
/// vocabulary claims `expected` (which must name every claim the kind maps),
/// and that a `forbid` on each of them, and on the evidence claim
/// `evidence`, denies the grant.
async fn vocabulary_populated(
    env: &Env,
    kind: ProviderKind,
    proof: Proof,
    expected: &[(&str, &str)],
    evidence: (&str, &str),
) {
    let mut names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    let mut mapped: Vec<&str> = kind.vocabulary().into_iter().map(|(n, _)| n).collect();
    names.sort_unstable();
    mapped.sort_unstable();
    assert_eq!(names, mapped, "the test must check every claim {kind} maps");

    // Every claim present with exactly this value: no forbid fires.
    let exact: String = expected
        .iter()
        .map(|(name, value)| {
            format!(
                "@id(\"{name}-differs\")\nforbid(principal, action, resource) when {{ !(context has attestation && context.attestation.claims has {name} && context.attestation.claims.{name} == {}) }};\n",
                cedar_string(value)
            )
        })
        .collect();
    push(env, &exact).await;
    if let Err(e) = grant(env, &proof).await {
        let ev = env.last_event().await;
        panic!(
            "{kind}: a claim is missing or differs: {e:?}; policies {}",
            ev.detail["policies"]
        );
    }

    // A forbid on each claim denies.
    for (name, value) in expected {
        push(
            env,
            &format!(
                "@id(\"no-{name}\")\nforbid(principal, action, resource) when {{ context has attestation && context.attestation.claims has {name} && context.attestation.claims.{name} == {} }};\n",
                cedar_string(value)
            ),
        )
        .await;
        let r = grant(env, &proof).await;
        assert_eq!(
            r.as_ref().err().map(|e| e.error),
            Some("access_denied"),
            "{kind}: a forbid on `{name}` must deny"
        );
        let ev = env.last_event().await;
        assert_eq!(ev.event_type, "token.denied");
        assert_eq!(ev.detail["policies"], json!([format!("no-{name}")]));
    }

    // A claim outside the vocabulary: reachable as an evidence tag.
    let (tag, value) = evidence;
    push(
        env,
        &format!(
            "@id(\"no-evidence\")\nforbid(principal, action, resource) when {{ context has attestation && context.attestation.evidence.hasTag({tag}) && context.attestation.evidence.getTag({tag}) == {value} }};\n",
            tag = cedar_string(tag),
            value = cedar_string(value)
        ),
    )
    .await;
    let r = grant(env, &proof).await;
    assert_eq!(
        r.err().map(|e| e.error),
        Some("access_denied"),
        "{kind}: a forbid on the evidence tag `{tag}` must deny"
    );
    assert_eq!(
        env.last_event().await.detail["policies"],
        json!(["no-evidence"])
    );
    // The same tag with another value does not fire.
    push(
        env,
        &format!(
            "@id(\"no-evidence\")\nforbid(principal, action, resource) when {{ context has attestation && context.attestation.evidence.hasTag({tag}) && context.attestation.evidence.getTag({tag}) == \"other\" }};\n",
            tag = cedar_string(tag),
        ),
    )
    .await;
    grant(env, &proof).await.unwrap();
}

/// The fixture `rel` with `aud` and the times set for the test clock.
fn fixture(rel: &str) -> Value {
    let mut c: Value = serde_json::from_slice(&read(rel)).unwrap();
    c["aud"] = json!(AUDIENCE);
    c["iat"] = json!(now() - 10);
    c["nbf"] = json!(now() - 10);
    c["exp"] = json!(now() + 600);
    c
}

fn inline_jwks() -> Value {
    let jwks: Value = serde_json::from_slice(&read("kubernetes/jwks.json")).unwrap();
    json!({"from": "inline", "document": jwks})
}

fn oidc_config(issuer: Option<&str>) -> Value {
    let mut c = json!({"audience": AUDIENCE, "keys": inline_jwks()});
    if let Some(i) = issuer {
        c["issuer"] = json!(i);
    }
    c
}

#[tokio::test]
async fn claims_01_kubernetes_vocabulary_populated() {
    let env = setup(
        "k8s",
        json!({"kind": "kubernetes", "config": oidc_config(Some(K8S_ISSUER))}),
        "kubernetes.io.serviceaccount.name=my-service-account",
    )
    .await;
    let token = sign(&es_key(), &fixture("kubernetes/claims-example.json"));
    vocabulary_populated(
        &env,
        ProviderKind::Kubernetes,
        Proof::Jwt(token),
        &[
            ("iss", K8S_ISSUER),
            ("sub", "system:serviceaccount:test:my-service-account"),
            ("aud", AUDIENCE),
            ("namespace", "test"),
            ("service_account", "my-service-account"),
            ("pod", "my-pod"),
            ("node", "node-1"),
        ],
        (
            "kubernetes.io.pod.uid",
            "5f2a8e61-1c4d-4b7a-a0e9-3d6b2c8f7e15",
        ),
    )
    .await;
}

#[tokio::test]
async fn claims_01_github_vocabulary_populated() {
    let env = setup(
        "gha",
        json!({"kind": "github-actions", "config": oidc_config(None)}),
        "repository=octo-org/octo-repo",
    )
    .await;
    let token = sign(&es_key(), &fixture("github-actions/claims-example.json"));
    vocabulary_populated(
        &env,
        ProviderKind::GithubActions,
        Proof::Jwt(token),
        &[
            ("iss", "https://token.actions.githubusercontent.com"),
            ("sub", "repo:octo-org/octo-repo:environment:prod"),
            ("aud", AUDIENCE),
            ("repository", "octo-org/octo-repo"),
            ("repository_owner", "octo-org"),
            ("ref", "refs/heads/main"),
            ("workflow", "example-workflow"),
            ("environment", "prod"),
            ("actor", "octocat"),
        ],
        (
            "job_workflow_ref",
            "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
        ),
    )
    .await;
}

#[tokio::test]
async fn claims_01_gitlab_vocabulary_populated() {
    let env = setup(
        "gitlab",
        json!({"kind": "gitlab-ci", "config": oidc_config(None)}),
        "project_path=my-group/my-project",
    )
    .await;
    let token = sign(&es_key(), &fixture("gitlab-ci/claims-example.json"));
    vocabulary_populated(
        &env,
        ProviderKind::GitlabCi,
        Proof::Jwt(token),
        &[
            ("iss", "https://gitlab.com"),
            (
                "sub",
                "project_path:my-group/my-project:ref_type:branch:ref:feature-branch-1",
            ),
            ("aud", AUDIENCE),
            ("repository", "my-group/my-project"),
            ("repository_owner", "my-group"),
            ("ref", "refs/heads/feature-branch-1"),
            ("environment", "test-environment2"),
            ("actor", "sample-user"),
        ],
        ("pipeline_source", "push"),
    )
    .await;
}

/// A plain OIDC issuer (here a cluster's, trusted as any OIDC issuer): only
/// the registered claims are in the vocabulary; the rest is evidence.
#[tokio::test]
async fn claims_01_oidc_vocabulary_populated() {
    let env = setup(
        "idp",
        json!({"kind": "oidc", "config": oidc_config(Some(K8S_ISSUER))}),
        "sub=system:serviceaccount:test:my-service-account",
    )
    .await;
    let token = sign(&rs_key(), &fixture("kubernetes/claims-example.json"));
    vocabulary_populated(
        &env,
        ProviderKind::Oidc,
        Proof::Jwt(token),
        &[
            ("iss", K8S_ISSUER),
            ("sub", "system:serviceaccount:test:my-service-account"),
            ("aud", AUDIENCE),
        ],
        ("kubernetes.io.namespace", "test"),
    )
    .await;
}

#[tokio::test]
async fn claims_01_aws_vocabulary_populated() {
    let env = setup(
        "aws",
        json!({"kind": "aws-iid", "config": {"accounts": ["692406183521"], "regions": ["us-west-2"], "max_age_secs": 315_360_000}}),
        "account_id=692406183521",
    )
    .await;
    let doc = String::from_utf8(read("aws-iid/rsa2048")).unwrap();
    vocabulary_populated(
        &env,
        ProviderKind::AwsIid,
        Proof::Aws(doc),
        &[
            ("account_id", "692406183521"),
            ("region", "us-west-2"),
            ("instance_id", "i-0a30e04d85e6f8793"),
        ],
        ("image_id", "ami-6b8cef13"),
    )
    .await;
}

#[tokio::test]
async fn claims_01_spiffe_vocabulary_populated() {
    let mut jwk: Value =
        serde_json::from_slice::<Value>(&read("kubernetes/jwks.json")).unwrap()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == ES_KID)
            .cloned()
            .unwrap();
    jwk["use"] = json!("jwt-svid");
    let bundle = json!({"spiffe_refresh_hint": 60, "keys": [jwk]});
    let env = setup(
        "partner",
        json!({"kind": "spiffe", "config": {"trust_domain": "partner.example", "audience": AUDIENCE, "bundle": {"from": "inline", "document": bundle}}}),
        "spiffe_id=spiffe://partner.example/ns/pay/sa/payments",
    )
    .await;
    let id = "spiffe://partner.example/ns/pay/sa/payments";
    let svid = sign_raw(
        &es_key(),
        &format!(r#"{{"alg":"ES256","kid":"{ES_KID}","typ":"JWT"}}"#),
        &json!({
            "iss": "https://oidc.partner.example", "sub": id, "aud": [AUDIENCE],
            "exp": now() + 300, "iat": now(), "x-workload": "payments-v2",
        }),
    );
    vocabulary_populated(
        &env,
        ProviderKind::Spiffe,
        Proof::Jwt(svid),
        &[
            ("iss", "https://oidc.partner.example"),
            ("sub", id),
            ("aud", AUDIENCE),
            ("spiffe_id", id),
        ],
        ("x-workload", "payments-v2"),
    )
    .await;
}

/// The issue's case: a Kubernetes workload in namespace `reports`, and a
/// `forbid` on `claims.namespace`, through the token endpoint.
#[tokio::test]
async fn claims_02_forbid_on_claim_denies() {
    let env = setup(
        "k8s",
        json!({"kind": "kubernetes", "config": oidc_config(Some(K8S_ISSUER))}),
        "kubernetes.io.serviceaccount.name=exporter",
    )
    .await;
    push(
        &env,
        "@id(\"no-reports\")\nforbid(principal, action == Mandate::Action::\"token:issue\", resource)\n  when { context has attestation && context.attestation.claims has namespace && context.attestation.claims.namespace == \"reports\" };\n",
    )
    .await;
    let reports = Proof::Jwt(sign(&es_key(), &k8s_claims("reports", "exporter")));
    let err = grant(&env, &reports).await.unwrap_err();
    assert_eq!(err.error, "access_denied");
    let ev = env.last_event().await;
    assert_eq!(ev.event_type, "token.denied");
    assert_eq!(ev.detail["policies"], json!(["no-reports"]));
    // The same service account in another namespace gets its token.
    let billing = Proof::Jwt(sign(&es_key(), &k8s_claims("billing", "exporter")));
    grant(&env, &billing).await.unwrap();
}

/// A misspelt claim in a binding rule would match nothing, silently: for a
/// kind whose claims are known, it is refused with the closest name.
#[tokio::test]
async fn binding_rule_with_a_misspelt_claim_is_refused_with_a_suggestion() {
    let env = setup(
        "k8s",
        json!({"kind": "kubernetes", "config": oidc_config(Some(K8S_ISSUER))}),
        "kubernetes.io.namespace=test",
    )
    .await;
    env.agent("other").await;
    let typo = mandate_attest::binding::ClaimMatch::parse("kubernets.io.namespace=test").unwrap();
    let err = env
        .engine
        .add_binding(&env.admin, "k8s", &"other".parse().unwrap(), vec![typo])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("did you mean `kubernetes.io.namespace`?"),
        "{err}"
    );
    // An `oidc` issuer may carry any claim: no check there.
    let env = setup(
        "idp",
        json!({"kind": "oidc", "config": oidc_config(Some(K8S_ISSUER))}),
        "groups~*admins*",
    )
    .await;
    assert_eq!(
        env.engine.list_bindings(Some("idp")).await.unwrap().len(),
        1
    );
}
