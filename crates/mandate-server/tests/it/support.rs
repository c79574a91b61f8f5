use std::sync::Arc;

use mandate_core::SystemClock;
use mandate_engine::{Engine, EngineConfig};
use mandate_jose::secret::ExposeSecret;
use mandate_server::AppState;
use mandate_testkit::TestDb;

pub struct Running {
    pub url: String,
    pub token: String,
    pub engine: Engine,
    _db: TestDb,
}

pub async fn start() -> Running {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let engine = Engine::new(
        store,
        Arc::new(SystemClock),
        EngineConfig {
            trust_domain: "mandate.local".parse().unwrap(),
            review_period: time::Duration::days(90),
        },
    )
    .await
    .unwrap();
    let token = engine
        .bootstrap_admin_token()
        .await
        .unwrap()
        .unwrap()
        .secret
        .expose_secret()
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState {
        engine: engine.clone(),
        public_url: url.clone(),
    };
    tokio::spawn(mandate_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Running {
        url,
        token,
        engine,
        _db: db,
    }
}
