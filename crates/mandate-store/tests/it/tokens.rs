//! Conformance cases for the token service's tables, on both backends.

use mandate_core::{AuditDraft, Outcome};
use mandate_store::{
    AuditFilter, ChainReport, CredentialRecord, Error, GrantWrite, KeyStateChange, ResourceRecord,
    RouteRecord, SigningKeyRecord, Store, TokenFilter, TokenRecord,
};
use mandate_testkit::{Backend, TestDb};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-11-23 12:00:00 UTC);

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::run(mandate_testkit::Backend::Sqlite, super::$name).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::run(mandate_testkit::Backend::Postgres, super::$name).await })*
        }
    };
}

conformance!(
    first_signing_key_is_created_once,
    rotation_changes_old_keys_and_adds_the_new_one,
    resources_round_trip_and_refuse_duplicates,
    tokens_are_recorded_once,
    token_for_an_agent_suspended_meanwhile_is_not_recorded,
    revoking_a_token_revokes_its_descendants_only,
    one_time_jtis_are_accepted_once,
    resource_routes_round_trip,
    credentials_are_replaced_listed_and_removed,
);

async fn run<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.open().await;
    case(store).await;
    drop(db);
}

fn ev(kind: &str, target: &str) -> AuditDraft {
    AuditDraft::new(
        mandate_core::EventKind::parse(kind).expect("a known event type"),
        Outcome::Success,
    )
    .actor("tok-test")
    .target(target)
}

fn key(kid: &str, state: &str, activate_after: OffsetDateTime) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        sealed_pkcs8: vec![1, 2, 3, 0, 255],
        state: state.into(),
        created_at: T0,
        activate_after,
        retire_after: None,
    }
}

async fn events(store: &Store, kind: &str) -> usize {
    let page = store
        .list_audit(&AuditFilter {
            event_type: Some(kind.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    page.items.len()
}

async fn first_signing_key_is_created_once(store: Store) {
    assert!(
        store
            .create_first_signing_key(&key("k1", "active", T0), ev("key.created", "k1"), T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_first_signing_key(&key("k2", "active", T0), ev("key.created", "k2"), T0)
            .await
            .unwrap()
    );
    let keys = store.list_signing_keys().await.unwrap();
    assert_eq!(keys, vec![key("k1", "active", T0)]);
    assert_eq!(events(&store, "key.created").await, 1);
}

async fn rotation_changes_old_keys_and_adds_the_new_one(store: Store) {
    store
        .create_first_signing_key(&key("k1", "active", T0), ev("key.created", "k1"), T0)
        .await
        .unwrap();
    let later = T0 + Duration::seconds(300);
    let retire = later + Duration::hours(1);
    store
        .rotate_signing_keys(
            &key("k2", "next", later),
            &[KeyStateChange {
                kid: "k1".into(),
                state: "active".into(),
                retire_after: Some(retire),
            }],
            ev("key.rotated", "k2"),
            T0,
        )
        .await
        .unwrap();
    let keys = store.list_signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid, "k1");
    assert_eq!(keys[0].retire_after, Some(retire));
    assert_eq!(keys[1], key("k2", "next", later));
    assert_eq!(keys[1].sealed_pkcs8, vec![1, 2, 3, 0, 255]);
    assert_eq!(events(&store, "key.rotated").await, 1);
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { count: 2, .. }
    ));
}

fn resource(name: &str, audience: &str) -> ResourceRecord {
    ResourceRecord {
        name: name.into(),
        audience: audience.into(),
        scopes: vec!["read".into(), "write".into()],
        max_ttl_secs: 300,
        kind: "http".into(),
        sensitivity: "internal".into(),
        owner: Some("ops@example.com".into()),
        labels: [("team".to_owned(), "billing".to_owned())].into(),
        created_at: T0,
        route: None,
    }
}

async fn resources_round_trip_and_refuse_duplicates(store: Store) {
    let a = resource("billing", "https://billing.example.com");
    store
        .insert_resource(&a, ev("resource.added", "billing"), T0)
        .await
        .unwrap();
    store
        .insert_resource(
            &resource("Alpha", "https://alpha.example.com"),
            ev("resource.added", "Alpha"),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(store.resource("billing").await.unwrap(), Some(a.clone()));
    assert_eq!(store.resource("nope").await.unwrap(), None);
    let names: Vec<String> = store
        .list_resources()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["Alpha", "billing"]);

    let same_name = store
        .insert_resource(
            &resource("billing", "https://other.example.com"),
            ev("resource.added", "billing"),
            T0,
        )
        .await;
    assert!(matches!(
        same_name,
        Err(Error::Duplicate {
            kind: "resource",
            ..
        })
    ));
    let same_aud = store
        .insert_resource(
            &resource("other", "https://billing.example.com"),
            ev("resource.added", "other"),
            T0,
        )
        .await;
    assert!(matches!(
        same_aud,
        Err(Error::Duplicate {
            kind: "resource audience",
            ..
        })
    ));
    assert_eq!(events(&store, "resource.added").await, 2);

    assert!(
        store
            .delete_resource("billing", ev("resource.removed", "billing"), T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_resource("billing", ev("resource.removed", "billing"), T0)
            .await
            .unwrap()
    );
    assert_eq!(events(&store, "resource.removed").await, 1);
    assert_eq!(store.list_resources().await.unwrap().len(), 1);
}

fn tok(jti: &str, parent: Option<&str>, agent: &str, expires: OffsetDateTime) -> TokenRecord {
    TokenRecord {
        jti: jti.into(),
        parent_jti: parent.map(Into::into),
        agent: agent.into(),
        txn: "txn-1".into(),
        audience: "https://billing.example.com".into(),
        issued_at: T0,
        expires_at: expires,
        revoked_at: None,
        scope: "invoices:read".into(),
        chain: vec![agent.to_owned()],
    }
}

fn grant(t: &TokenRecord) -> GrantWrite {
    GrantWrite {
        token: Some(t.clone()),
        touch_agent: None,
    }
}

async fn tokens_are_recorded_once(store: Store) {
    let t = tok("j1", Some("j0"), "invoice-bot", T0 + Duration::minutes(5));
    store
        .record_grant(grant(&t), ev("token.issued", "j1"), T0)
        .await
        .unwrap();
    assert_eq!(store.token("j1").await.unwrap(), Some(t.clone()));
    // A second token with the same jti fails the whole write, event included.
    assert!(
        store
            .record_grant(grant(&t), ev("token.issued", "j1"), T0)
            .await
            .is_err()
    );
    assert_eq!(events(&store, "token.issued").await, 1);
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { count: 1, .. }
    ));
}

/// The kill switch against a grant already under way: a token whose agent
/// was suspended after the grant looked at it is not recorded, nor its
/// event, while the other grants of the same batch are.
async fn token_for_an_agent_suspended_meanwhile_is_not_recorded(store: Store) {
    crate::attestation::agent(&store, "runner").await;
    crate::attestation::agent(&store, "walker").await;
    let mut a = store
        .agent(&"runner".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let before = a.updated_at;
    a.status = mandate_core::AgentStatus::Suspended;
    a.updated_at = T0 + Duration::seconds(1);
    store
        .update_agent_revoking_tokens(&a, before, ev("agent.suspended", "agent/runner"), T0)
        .await
        .unwrap();
    let late = tok("late", None, "runner", T0 + Duration::minutes(5));
    let fine = tok("fine", None, "walker", T0 + Duration::minutes(5));
    let (l, f) = tokio::join!(
        store.record_grant(grant(&late), ev("token.issued", "late"), T0),
        store.record_grant(grant(&fine), ev("token.issued", "fine"), T0),
    );
    assert!(
        matches!(&l, Err(Error::AgentInactive(n)) if n == "runner"),
        "{l:?}"
    );
    f.unwrap();
    assert_eq!(store.token("late").await.unwrap(), None);
    assert!(store.token("fine").await.unwrap().is_some());
    assert_eq!(events(&store, "token.issued").await, 1);
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { .. }
    ));
}

async fn revoking_a_token_revokes_its_descendants_only(store: Store) {
    let exp = T0 + Duration::minutes(5);
    // a -> b -> c, a -> d; e unrelated.
    for t in [
        tok("a", None, "alpha", exp),
        tok("b", Some("a"), "beta", exp),
        tok("c", Some("b"), "gamma", exp),
        tok("d", Some("a"), "delta", exp),
        tok("e", None, "alpha", exp),
    ] {
        store
            .record_grant(grant(&t), ev("token.issued", &t.jti), T0)
            .await
            .unwrap();
    }
    let at = T0 + Duration::minutes(1);
    assert_eq!(
        store
            .revoke_token_family("b", ev("token.revoked", "b"), at)
            .await
            .unwrap(),
        Some(2)
    );
    let revoked = |jti: &'static str| {
        let store = store.clone();
        async move {
            store
                .token(jti)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        }
    };
    assert!(revoked("b").await && revoked("c").await);
    assert!(!revoked("a").await && !revoked("d").await && !revoked("e").await);
    // Revoking again changes nothing; an unknown jti writes nothing.
    assert_eq!(
        store
            .revoke_token_family("b", ev("token.revoked", "b"), at)
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        store
            .revoke_token_family("zz", ev("token.revoked", "zz"), at)
            .await
            .unwrap(),
        None
    );
    assert_eq!(events(&store, "token.revoked").await, 2);
    let live = store
        .list_tokens(&TokenFilter {
            agent: Some("alpha".into()),
            live_at: Some(at),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(live.len(), 2);
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { count: 7, .. }
    ));
}

async fn one_time_jtis_are_accepted_once(store: Store) {
    let exp = T0 + Duration::minutes(1);
    assert!(store.consume_jti("dpop", "k1", exp).await.unwrap());
    assert!(!store.consume_jti("dpop", "k1", exp).await.unwrap());
    // Kinds are separate namespaces.
    assert!(
        store
            .consume_jti("client_assertion", "k1", exp)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .purge_seen_jti(exp + Duration::seconds(1))
            .await
            .unwrap(),
        2
    );
    assert!(store.consume_jti("dpop", "k1", exp).await.unwrap());
}

async fn resource_routes_round_trip(store: Store) {
    let mut gw = resource("gw", "https://mandate.example.com/gw/gw");
    gw.route = Some(RouteRecord {
        upstream: "https://api.example.com/v1".into(),
        credential: Some("api-key".into()),
        record_arguments: true,
        required_scopes: vec!["read".into()],
        timeout_ms: 30_000,
        empty_segments: mandate_store::EmptySegments::Refuse,
        scrub_responses: false,
    });
    store
        .insert_resource(&gw, ev("resource.added", "gw"), T0)
        .await
        .unwrap();
    let plain = resource("plain", "https://plain.example.com");
    store
        .insert_resource(&plain, ev("resource.added", "plain"), T0)
        .await
        .unwrap();
    assert_eq!(store.resource("gw").await.unwrap(), Some(gw.clone()));
    assert_eq!(store.resource("plain").await.unwrap(), Some(plain));
    let listed = store.list_resources().await.unwrap();
    assert_eq!(listed[0], gw);
    assert_eq!(listed[1].route, None);
}

fn credential(
    name: &str,
    kind: &str,
    sealed: Option<Vec<u8>>,
    at: OffsetDateTime,
) -> CredentialRecord {
    CredentialRecord {
        name: name.into(),
        kind: kind.into(),
        config: r#"{"header":"x-api-key"}"#.into(),
        sealed,
        created_at: at,
        updated_at: at,
    }
}

async fn credentials_are_replaced_listed_and_removed(store: Store) {
    let a = credential("api-key", "static", Some(vec![0, 1, 2, 255]), T0);
    store
        .put_credential(&a, ev("secret.set", "api-key"), T0)
        .await
        .unwrap();
    let b = credential("Jwt", "mandate-jwt", None, T0);
    store
        .put_credential(&b, ev("secret.set", "Jwt"), T0)
        .await
        .unwrap();
    assert_eq!(store.credential("api-key").await.unwrap(), Some(a.clone()));
    assert_eq!(store.credential("nope").await.unwrap(), None);

    // Replacing keeps the first creation time and takes everything else.
    let later = T0 + Duration::minutes(5);
    let mut a2 = credential("api-key", "static", Some(vec![9, 9]), later);
    a2.config = r#"{"bearer":true}"#.into();
    store
        .put_credential(&a2, ev("secret.set", "api-key"), later)
        .await
        .unwrap();
    let got = store.credential("api-key").await.unwrap().unwrap();
    assert_eq!(got.created_at, T0);
    assert_eq!(got.updated_at, later);
    assert_eq!(got.sealed, Some(vec![9, 9]));
    assert_eq!(got.config, r#"{"bearer":true}"#);

    let names: Vec<String> = store
        .list_credentials()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Jwt", "api-key"]);
    // The sealed bytes never appear in debug output.
    assert!(!format!("{got:?}").contains("[9, 9]"));

    assert!(
        store
            .delete_credential("api-key", ev("secret.removed", "api-key"), later)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_credential("api-key", ev("secret.removed", "api-key"), later)
            .await
            .unwrap()
    );
    assert_eq!(store.credential("api-key").await.unwrap(), None);
    assert_eq!(events(&store, "secret.set").await, 3);
    assert_eq!(events(&store, "secret.removed").await, 1);
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { count: 4, .. }
    ));
}
