//! Stored credentials for the tests.

use mandate_engine::{Actor, Engine};
use mandate_engine::{NewSecret, SecretConfig};
use mandate_jose::SecretString;

/// A `static` credential sent in header `header`.
pub async fn static_header(engine: &Engine, admin: &Actor, name: &str, header: &str, value: &str) {
    engine
        .set_secret(
            admin,
            NewSecret {
                name: name.into(),
                kind: "static".into(),
                config: SecretConfig {
                    header: Some(header.into()),
                    ..Default::default()
                },
                value: Some(SecretString::from(value.to_owned())),
            },
        )
        .await
        .unwrap();
}
