use std::collections::BTreeMap;

use mandate_core::{
    Agent, AgentKind, AgentName, AgentStatus, AuditDraft, Labels, Outcome, Provenance, SpiffeId,
    TrustDomain,
};
use mandate_store::{AdminTokenRecord, AgentFilter, AuditFilter, ChainReport, Error, Store};
use mandate_testkit::{Backend, TestDb};
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-11-23 12:00:00 UTC);

/// Runs `case` on every configured backend.
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
    agents_round_trip_with_labels_and_provenance,
    duplicate_names_are_refused_even_after_decommissioning,
    updates_check_the_expected_version,
    listing_filters_and_pages,
    audit_chain_links_and_verifies,
    audit_tampering_is_located,
    admin_tokens_store_hashes_and_revoke_once,
    bootstrap_happens_once,
    meta_keeps_the_first_value,
    data_survives_reopening,
    policy_versions_push_list_and_roll_back,
    concurrent_audit_appends_keep_one_linear_chain,
    buffered_audit_appends_are_committed_in_order_before_a_later_durable_one,
);

async fn run<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(TestDb, Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.open().await;
    case(db, store).await;
}

fn agent(name: &str, owner: &str, kind: AgentKind, labels: &[(&str, &str)]) -> Agent {
    let name: AgentName = name.parse().unwrap();
    let td: TrustDomain = "mandate.local".parse().unwrap();
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Agent {
        spiffe_id: SpiffeId::for_agent(&td, &name),
        name,
        kind,
        owner: owner.parse().unwrap(),
        description: "test agent".into(),
        provenance: Provenance {
            model: Some("claude".into()),
            framework: Some("langgraph".into()),
            version: None,
            created_by: Some("ci".into()),
        },
        labels: Labels::try_from(labels).unwrap(),
        envelope: "reads invoices".into(),
        status: AgentStatus::Active,
        created_at: T0,
        updated_at: T0,
        review_by: T0 + time::Duration::days(90),
        last_seen_at: None,
    }
}

fn ev(kind: &str, target: &str) -> AuditDraft {
    AuditDraft::new(
        mandate_core::EventKind::parse(kind).expect("a known event type"),
        Outcome::Success,
    )
    .actor("tok-test")
    .target(target)
    .detail(serde_json::json!({"n": 1, "s": "x"}))
}

async fn agents_round_trip_with_labels_and_provenance(_db: TestDb, store: Store) {
    let a = agent(
        "invoice-bot",
        "alice@example.com",
        AgentKind::Autonomous,
        &[("env", "prod"), ("team", "billing")],
    );
    let e = store
        .create_agent(&a, ev("agent.registered", "agent/invoice-bot"), T0)
        .await
        .unwrap();
    assert_eq!(e.seq, 1);
    let back = store.agent(&a.name).await.unwrap().expect("stored");
    assert_eq!(back, a);
    assert!(
        store
            .agent(&"nobody".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

async fn duplicate_names_are_refused_even_after_decommissioning(_db: TestDb, store: Store) {
    let mut a = agent("dup", "alice@example.com", AgentKind::Autonomous, &[]);
    store
        .create_agent(&a, ev("agent.registered", "agent/dup"), T0)
        .await
        .unwrap();
    let before = a.updated_at;
    a.status = AgentStatus::Decommissioned;
    a.updated_at = T0 + time::Duration::minutes(1);
    store
        .update_agent(&a, before, ev("agent.decommissioned", "agent/dup"), T0)
        .await
        .unwrap();
    let again = agent("dup", "bob@example.com", AgentKind::OnBehalfOf, &[]);
    let err = store
        .create_agent(&again, ev("agent.registered", "agent/dup"), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Duplicate { .. }), "{err:?}");
    // The failed insert left no audit event behind.
    let events = store
        .list_audit(&AuditFilter::default())
        .await
        .unwrap()
        .items;
    assert_eq!(events.len(), 2);
}

async fn updates_check_the_expected_version(_db: TestDb, store: Store) {
    let mut a = agent(
        "racer",
        "alice@example.com",
        AgentKind::Autonomous,
        &[("a", "1")],
    );
    store
        .create_agent(&a, ev("agent.registered", "agent/racer"), T0)
        .await
        .unwrap();
    a.description = "changed".into();
    a.labels = Labels::try_from(BTreeMap::from([("b".to_owned(), "2".to_owned())])).unwrap();
    a.updated_at = T0 + time::Duration::seconds(1);
    store
        .update_agent(&a, T0, ev("agent.updated", "agent/racer"), T0)
        .await
        .unwrap();
    let back = store.agent(&a.name).await.unwrap().unwrap();
    assert_eq!(back.description, "changed");
    assert_eq!(back.labels.get("b"), Some("2"));
    assert_eq!(back.labels.get("a"), None);
    // A writer that read the old version loses, and writes no event.
    let stale = store
        .update_agent(&a, T0, ev("agent.updated", "agent/racer"), T0)
        .await
        .unwrap_err();
    assert!(matches!(stale, Error::Conflict(_)), "{stale:?}");
    assert_eq!(
        store
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

async fn listing_filters_and_pages(_db: TestDb, store: Store) {
    for (i, name) in ["a-1", "a-2", "b-1", "b-2", "c-1"].iter().enumerate() {
        let owner = if i % 2 == 0 {
            "alice@example.com"
        } else {
            "bob@example.com"
        };
        let kind = if i < 3 {
            AgentKind::Autonomous
        } else {
            AgentKind::OnBehalfOf
        };
        let env = if i == 4 { "dev" } else { "prod" };
        let a = agent(name, owner, kind, &[("env", env)]);
        store
            .create_agent(&a, ev("agent.registered", name), T0)
            .await
            .unwrap();
    }
    let names = |p: &mandate_store::Page<Agent>| {
        p.items
            .iter()
            .map(|a| a.name.to_string())
            .collect::<Vec<_>>()
    };
    let all = store.list_agents(&AgentFilter::default()).await.unwrap();
    assert_eq!(names(&all), ["a-1", "a-2", "b-1", "b-2", "c-1"]);
    assert_eq!(all.next_cursor, None);

    let f = AgentFilter {
        owner: Some("alice@example.com".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(
        names(&store.list_agents(&f).await.unwrap()),
        ["a-1", "b-1", "c-1"]
    );
    let f = AgentFilter {
        kind: Some(AgentKind::OnBehalfOf),
        ..Default::default()
    };
    assert_eq!(names(&store.list_agents(&f).await.unwrap()), ["b-2", "c-1"]);
    let f = AgentFilter {
        label: Some(("env".into(), "dev".into())),
        ..Default::default()
    };
    assert_eq!(names(&store.list_agents(&f).await.unwrap()), ["c-1"]);
    let f = AgentFilter {
        status: Some(AgentStatus::Suspended),
        ..Default::default()
    };
    assert!(store.list_agents(&f).await.unwrap().items.is_empty());

    let mut f = AgentFilter {
        limit: 2,
        ..Default::default()
    };
    let mut pages = Vec::new();
    loop {
        let p = store.list_agents(&f).await.unwrap();
        pages.push(names(&p));
        match p.next_cursor {
            Some(c) => f.after = Some(c),
            None => break,
        }
    }
    assert_eq!(
        pages,
        vec![vec!["a-1", "a-2"], vec!["b-1", "b-2"], vec!["c-1"]]
    );
}

async fn audit_chain_links_and_verifies(_db: TestDb, store: Store) {
    assert_eq!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact {
            count: 0,
            head: mandate_core::audit::GENESIS_HASH.into()
        }
    );
    let mut last = None;
    for i in 0..5 {
        let e = store
            .append_audit(ev("agent.updated", &format!("t/{i}")), T0)
            .await
            .unwrap();
        if let Some(prev) = &last {
            assert_eq!(&e.prev_hash, prev);
        }
        last = Some(e.hash.clone());
    }
    let ChainReport::Intact { count, head } = store.verify_audit_chain().await.unwrap() else {
        panic!("chain should verify");
    };
    assert_eq!(count, 5);
    assert_eq!(Some(head), last);
    let f = AuditFilter {
        target: Some("t/3".into()),
        ..Default::default()
    };
    let only = store.list_audit(&f).await.unwrap().items;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].seq, 4);
    assert_eq!(only[0].detail, serde_json::json!({"n": 1, "s": "x"}));
    let f = AuditFilter {
        after_seq: Some(3),
        limit: 1,
        ..Default::default()
    };
    let p = store.list_audit(&f).await.unwrap();
    assert_eq!(p.items[0].seq, 4);
    assert_eq!(p.next_cursor.as_deref(), Some("4"));
}

async fn audit_tampering_is_located(db: TestDb, store: Store) {
    for i in 0..4 {
        store
            .append_audit(ev("agent.updated", &format!("t/{i}")), T0)
            .await
            .unwrap();
    }
    store.close().await;
    // Change row 3 behind the store's back, as an attacker with database access would.
    let raw = raw_pool(&db).await;
    raw.execute_sql("UPDATE audit_events SET outcome = 'denied' WHERE seq = 3")
        .await;
    let store = db.open().await;
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Broken { seq: 3, .. }
    ));
    // Deleting the newest row is caught by the head.
    raw.execute_sql("UPDATE audit_events SET outcome = 'success' WHERE seq = 3")
        .await;
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { count: 4, .. }
    ));
    raw.execute_sql("DELETE FROM audit_events WHERE seq = 4")
        .await;
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Broken { seq: 4, .. }
    ));
}

async fn admin_tokens_store_hashes_and_revoke_once(_db: TestDb, store: Store) {
    let t = AdminTokenRecord {
        id: "abc123".into(),
        name: "ci".into(),
        secret_hash: "ff".repeat(32),
        created_at: T0,
        created_by: Some("boot".into()),
        expires_at: Some(T0 + time::Duration::days(1)),
        revoked_at: None,
    };
    store
        .create_admin_token(&t, ev("admin_token.created", "admin_token/abc123"), T0)
        .await
        .unwrap();
    assert_eq!(store.admin_token("abc123").await.unwrap(), Some(t.clone()));
    assert_eq!(store.list_admin_tokens().await.unwrap(), vec![t]);
    assert!(
        store
            .revoke_admin_token("abc123", ev("admin_token.revoked", "x"), T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_admin_token("abc123", ev("admin_token.revoked", "x"), T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_admin_token("nope", ev("admin_token.revoked", "x"), T0)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .admin_token("abc123")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(T0)
    );
    assert_eq!(
        store
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

async fn bootstrap_happens_once(_db: TestDb, store: Store) {
    let t = |id: &str| AdminTokenRecord {
        id: id.into(),
        name: "bootstrap".into(),
        secret_hash: "00".repeat(32),
        created_at: T0,
        created_by: None,
        expires_at: None,
        revoked_at: None,
    };
    assert!(
        store
            .bootstrap_admin_token(&t("one"), ev("admin_token.bootstrapped", "one"), T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .bootstrap_admin_token(&t("two"), ev("admin_token.bootstrapped", "two"), T0)
            .await
            .unwrap()
    );
    assert!(store.admin_token("two").await.unwrap().is_none());
    assert_eq!(
        store
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

async fn meta_keeps_the_first_value(_db: TestDb, store: Store) {
    assert_eq!(store.meta("k").await.unwrap(), None);
    assert_eq!(store.meta_insert_if_absent("k", "v1").await.unwrap(), "v1");
    assert_eq!(store.meta_insert_if_absent("k", "v2").await.unwrap(), "v1");
    assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v1"));
}

async fn data_survives_reopening(db: TestDb, store: Store) {
    let a = agent(
        "keeper",
        "alice@example.com",
        AgentKind::Autonomous,
        &[("x", "y")],
    );
    store
        .create_agent(&a, ev("agent.registered", "agent/keeper"), T0)
        .await
        .unwrap();
    store.close().await;
    let store = db.open().await;
    assert_eq!(store.agent(&a.name).await.unwrap(), Some(a));
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { count: 1, .. }
    ));
}

/// A connection that bypasses the store, for tampering.
struct Raw(String);

async fn raw_pool(db: &TestDb) -> Raw {
    Raw(db.url_string.clone())
}

impl Raw {
    async fn execute_sql(&self, sql: &'static str) {
        use sqlx::Connection;
        if self.0.starts_with("sqlite") {
            let mut c = sqlx::SqliteConnection::connect(&self.0).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        } else {
            let mut c = sqlx::PgConnection::connect(&self.0).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        }
    }
}

async fn policy_versions_push_list_and_roll_back(_db: TestDb, store: Store) {
    use mandate_store::PolicyVersionRecord;
    assert_eq!(store.active_policy_version().await.unwrap(), None);
    let rec = |msg: &str| PolicyVersionRecord {
        version: 0,
        sources: r#"[{"name":"a.cedar","text":"permit(principal,action,resource);"}]"#.into(),
        message: msg.into(),
        author: Some("tok".into()),
        digest: "ab".repeat(32),
        created_at: T0,
    };
    let (v1, e1) = store
        .push_policy_version(
            &rec("first"),
            |v| ev("policy.activated", &format!("policy/{v}")),
            T0,
        )
        .await
        .unwrap();
    let (v2, _) = store
        .push_policy_version(
            &rec("second"),
            |v| ev("policy.activated", &format!("policy/{v}")),
            T0,
        )
        .await
        .unwrap();
    assert_eq!((v1, v2), (1, 2));
    assert_eq!(e1.target.as_deref(), Some("policy/1"));
    assert_eq!(store.active_policy_version().await.unwrap(), Some(2));
    let listed = store.list_policy_versions().await.unwrap();
    assert_eq!(listed.iter().map(|p| p.version).collect::<Vec<_>>(), [2, 1]);
    assert!(
        listed[0].sources.is_empty(),
        "listings leave the sources out"
    );
    let one = store.policy_version(1).await.unwrap().unwrap();
    assert_eq!(one.message, "first");
    assert!(one.sources.contains("permit"));
    assert!(
        store
            .activate_policy_version(1, ev("policy.activated", "policy/1"), T0)
            .await
            .unwrap()
    );
    assert_eq!(store.active_policy_version().await.unwrap(), Some(1));
    assert!(
        !store
            .activate_policy_version(9, ev("policy.activated", "policy/9"), T0)
            .await
            .unwrap()
    );
    assert_eq!(store.active_policy_version().await.unwrap(), Some(1));
    assert_eq!(
        store
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
            .items
            .len(),
        3
    );
}

async fn concurrent_audit_appends_keep_one_linear_chain(_db: TestDb, store: Store) {
    // Concurrent writers are grouped into shared transactions; every caller
    // still gets its own event back, and the chain stays linear.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.append_audit(ev("agent.updated", &format!("t/{i}")), T0)
                .await
                .unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        let e = t.await.unwrap();
        assert_eq!(e.event_type, "agent.updated");
        seqs.push(e.seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>());
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { count: 200, .. }
    ));
}

async fn buffered_audit_appends_are_committed_in_order_before_a_later_durable_one(
    _db: TestDb,
    store: Store,
) {
    // Buffered appends return once queued; the writer commits in queue
    // order, so once a later durable append is answered every earlier
    // buffered event is in the chain, in the order it was queued.
    for i in 0..50 {
        store
            .append_audit_buffered(ev("agent.updated", &format!("t/{i}")), T0)
            .await
            .unwrap();
    }
    let last = store
        .append_audit(ev("agent.reviewed", "t/last"), T0)
        .await
        .unwrap();
    assert_eq!(last.seq, 51);
    let page = store
        .list_audit(&AuditFilter {
            event_type: Some("agent.updated".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let targets: Vec<String> = page.items.iter().filter_map(|e| e.target.clone()).collect();
    let expected: Vec<String> = (0..50).map(|i| format!("t/{i}")).collect();
    assert_eq!(targets, expected);
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { count: 51, .. }
    ));
}
