//! Conformance of the attestation tables on both backends: providers,
//! binding rules, shadow agents, join tokens and instance bindings, each
//! change with its audit event in one transaction.

use mandate_core::{
    Agent, AgentKind, AgentName, AgentStatus, AuditDraft, Outcome, SpiffeId, TrustDomain,
};
use mandate_store::{
    AttestationWrite, AttestationWritten, AuditFilter, BindingRecord, ChainReport, Error,
    JoinTokenRecord, ProviderRecord, ShadowRecord, Store,
};
use mandate_testkit::{Backend, TestDb};
use time::OffsetDateTime;
use time::macros::datetime;

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
    providers_round_trip_and_names_are_unique,
    bindings_list_by_provider_and_remove,
    shadows_count_sightings,
    join_tokens_are_consumed_once_and_not_after_expiry,
    instances_bind_to_their_first_agent,
    removing_a_provider_removes_its_rules_tokens_and_shadows,
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

fn ev(t: &str) -> AuditDraft {
    AuditDraft::new(
        mandate_core::EventKind::parse(t).expect("a known event type"),
        Outcome::Success,
    )
}

pub(crate) async fn agent(store: &Store, name: &str) {
    let name: AgentName = name.parse().unwrap();
    let td: TrustDomain = "mandate.local".parse().unwrap();
    let a = Agent {
        spiffe_id: SpiffeId::for_agent(&td, &name),
        name,
        kind: AgentKind::Autonomous,
        owner: "alice@example.com".parse().unwrap(),
        description: String::new(),
        provenance: Default::default(),
        labels: Default::default(),
        envelope: String::new(),
        status: AgentStatus::Active,
        created_at: T0,
        updated_at: T0,
        review_by: T0,
        last_seen_at: None,
    };
    store
        .create_agent(&a, ev("agent.registered"), T0)
        .await
        .unwrap();
}

fn provider(name: &str) -> ProviderRecord {
    ProviderRecord {
        name: name.into(),
        kind: "kubernetes".into(),
        spec: r#"{"kind":"kubernetes","config":{}}"#.into(),
        allow_private_network: name.ends_with("lab"),
        created_at: T0,
        created_by: Some("admin".into()),
    }
}

fn binding(id: &str, provider: &str, agent: &str) -> BindingRecord {
    BindingRecord {
        id: id.into(),
        provider: provider.into(),
        agent: agent.into(),
        matches: r#"[{"claim":"sub","op":"exact","value":"x"}]"#.into(),
        created_at: T0,
        created_by: None,
    }
}

fn join(id: &str, expires: OffsetDateTime) -> JoinTokenRecord {
    JoinTokenRecord {
        id: id.into(),
        provider: "k8s".into(),
        agent: "bot".into(),
        secret_hash: "ab".repeat(32),
        created_at: T0,
        created_by: None,
        expires_at: expires,
        consumed_at: None,
    }
}

fn write(agent: &str) -> AttestationWrite {
    AttestationWrite {
        agent: agent.into(),
        touch_last_seen: true,
        bind_instance: None,
        consume_join_token: None,
    }
}

async fn events(store: &Store, ty: &str) -> usize {
    let f = AuditFilter {
        event_type: Some(ty.into()),
        limit: 500,
        ..Default::default()
    };
    store.list_audit(&f).await.unwrap().items.len()
}

async fn providers_round_trip_and_names_are_unique(store: Store) {
    store
        .create_provider(&provider("k8s"), ev("provider.added"), T0)
        .await
        .unwrap();
    store
        .create_provider(&provider("a-lab"), ev("provider.added"), T0)
        .await
        .unwrap();
    let dup = store
        .create_provider(&provider("k8s"), ev("provider.added"), T0)
        .await;
    assert!(
        matches!(
            dup,
            Err(Error::Duplicate {
                kind: "provider",
                ..
            })
        ),
        "{dup:?}"
    );
    assert_eq!(store.provider("k8s").await.unwrap(), Some(provider("k8s")));
    let all = store.list_providers().await.unwrap();
    assert_eq!(
        all.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["a-lab", "k8s"]
    );
    assert!(all[0].allow_private_network);
    assert_eq!(events(&store, "provider.added").await, 2);
}

async fn bindings_list_by_provider_and_remove(store: Store) {
    agent(&store, "bot").await;
    for p in ["k8s", "aws"] {
        store
            .create_provider(&provider(p), ev("provider.added"), T0)
            .await
            .unwrap();
    }
    store
        .create_binding(&binding("bnd_1", "k8s", "bot"), ev("binding.added"), T0)
        .await
        .unwrap();
    store
        .create_binding(&binding("bnd_2", "aws", "bot"), ev("binding.added"), T0)
        .await
        .unwrap();
    // A rule for an unknown agent or provider cannot exist.
    assert!(
        store
            .create_binding(&binding("bnd_3", "k8s", "ghost"), ev("binding.added"), T0)
            .await
            .is_err()
    );
    assert!(
        store
            .create_binding(&binding("bnd_4", "gone", "bot"), ev("binding.added"), T0)
            .await
            .is_err()
    );
    assert_eq!(
        store.list_bindings(Some("k8s")).await.unwrap(),
        vec![binding("bnd_1", "k8s", "bot")]
    );
    assert_eq!(store.list_bindings(None).await.unwrap().len(), 2);
    assert!(
        store
            .remove_binding("bnd_1", ev("binding.removed"), T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_binding("bnd_1", ev("binding.removed"), T0)
            .await
            .unwrap()
    );
    assert_eq!(events(&store, "binding.removed").await, 1);
    assert_eq!(events(&store, "binding.added").await, 2);
}

async fn shadows_count_sightings(store: Store) {
    let mut s = ShadowRecord {
        id: "shd_1".into(),
        provider: "k8s".into(),
        subject: "system:serviceaccount:ops:stray".into(),
        claims_digest: "d1".into(),
        claims: r#"{"sub":"x"}"#.into(),
        first_seen: T0,
        last_seen: T0,
        count: 1,
    };
    for n in 1..=3 {
        s.last_seen = T0 + time::Duration::seconds(n);
        s.claims_digest = format!("d{n}");
        let (stored, e) = store
            .record_shadow(
                &s,
                |r| ev("attestation.shadow").detail(serde_json::json!({"count": r.count})),
                s.last_seen,
            )
            .await
            .unwrap();
        assert_eq!(stored.count, n);
        assert_eq!(stored.first_seen, T0 + time::Duration::seconds(1));
        assert_eq!(stored.last_seen, s.last_seen);
        assert_eq!(stored.claims_digest, format!("d{n}"));
        assert_eq!(e.detail["count"], n);
    }
    let all = store.list_shadows(Some("k8s")).await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(store.list_shadows(Some("aws")).await.unwrap().is_empty());
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { count: 3, .. }
    ));
}

async fn join_tokens_are_consumed_once_and_not_after_expiry(store: Store) {
    agent(&store, "bot").await;
    store
        .create_provider(&provider("k8s"), ev("provider.added"), T0)
        .await
        .unwrap();
    store
        .create_join_token(
            &join("j1", T0 + time::Duration::hours(1)),
            ev("join_token.created"),
            T0,
        )
        .await
        .unwrap();
    store
        .create_join_token(
            &join("j2", T0 + time::Duration::seconds(1)),
            ev("join_token.created"),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        store.join_token("j1").await.unwrap(),
        Some(join("j1", T0 + time::Duration::hours(1)))
    );
    let mut w = write("bot");
    w.consume_join_token = Some("j1".into());
    assert!(matches!(
        store
            .write_attestation(&w, ev("attestation.verified"), T0)
            .await
            .unwrap(),
        AttestationWritten::Done(_)
    ));
    assert_eq!(
        store
            .write_attestation(&w, ev("attestation.verified"), T0)
            .await
            .unwrap(),
        AttestationWritten::JoinTokenSpent
    );
    assert_eq!(
        store.join_token("j1").await.unwrap().unwrap().consumed_at,
        Some(T0)
    );
    w.consume_join_token = Some("j2".into());
    let late = T0 + time::Duration::seconds(2);
    assert_eq!(
        store
            .write_attestation(&w, ev("attestation.verified"), late)
            .await
            .unwrap(),
        AttestationWritten::JoinTokenSpent
    );
    // Only the successful write left an event; last_seen moved with it.
    assert_eq!(events(&store, "attestation.verified").await, 1);
    let bot = store.agent(&"bot".parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(bot.last_seen_at, Some(T0));
}

async fn instances_bind_to_their_first_agent(store: Store) {
    agent(&store, "builder").await;
    agent(&store, "intruder").await;
    let mut w = write("builder");
    w.bind_instance = Some(("aws".into(), "i-1".into()));
    assert!(matches!(
        store
            .write_attestation(&w, ev("attestation.verified"), T0)
            .await
            .unwrap(),
        AttestationWritten::Done(_)
    ));
    assert!(matches!(
        store
            .write_attestation(&w, ev("attestation.verified"), T0)
            .await
            .unwrap(),
        AttestationWritten::Done(_)
    ));
    assert_eq!(
        store
            .instance_binding("aws", "i-1")
            .await
            .unwrap()
            .as_deref(),
        Some("builder")
    );
    w.agent = "intruder".into();
    assert_eq!(
        store
            .write_attestation(&w, ev("attestation.verified"), T0)
            .await
            .unwrap(),
        AttestationWritten::InstanceBoundElsewhere("builder".into())
    );
    let intruder = store
        .agent(&"intruder".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(intruder.last_seen_at, None);
    assert_eq!(events(&store, "attestation.verified").await, 2);
}

async fn removing_a_provider_removes_its_rules_tokens_and_shadows(store: Store) {
    agent(&store, "bot").await;
    store
        .create_provider(&provider("k8s"), ev("provider.added"), T0)
        .await
        .unwrap();
    store
        .create_binding(&binding("bnd_1", "k8s", "bot"), ev("binding.added"), T0)
        .await
        .unwrap();
    store
        .create_join_token(
            &join("j1", T0 + time::Duration::hours(1)),
            ev("join_token.created"),
            T0,
        )
        .await
        .unwrap();
    let s = ShadowRecord {
        id: "shd_1".into(),
        provider: "k8s".into(),
        subject: "s".into(),
        claims_digest: "d".into(),
        claims: "{}".into(),
        first_seen: T0,
        last_seen: T0,
        count: 1,
    };
    store
        .record_shadow(&s, |_| ev("attestation.shadow"), T0)
        .await
        .unwrap();
    assert!(
        store
            .remove_provider("k8s", ev("provider.removed"), T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_provider("k8s", ev("provider.removed"), T0)
            .await
            .unwrap()
    );
    assert!(store.list_bindings(None).await.unwrap().is_empty());
    assert!(store.list_shadows(None).await.unwrap().is_empty());
    assert_eq!(store.join_token("j1").await.unwrap(), None);
    assert_eq!(events(&store, "provider.removed").await, 1);
}
