-- Signing keys (private keys sealed under the master key), resources tokens
-- can be issued for, and the record of every issued token.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY NOT NULL,
    alg            TEXT NOT NULL,
    sealed_pkcs8   BLOB NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    created_at     BIGINT NOT NULL,
    activate_after BIGINT NOT NULL,
    retire_after   BIGINT
);

CREATE TABLE resources (
    name        TEXT PRIMARY KEY NOT NULL,
    audience    TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    max_ttl_s   BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    sensitivity TEXT NOT NULL,
    owner       TEXT,
    labels      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    parent_jti TEXT,
    agent      TEXT NOT NULL,
    txn        TEXT NOT NULL,
    audience   TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX tokens_parent ON tokens (parent_jti);
CREATE INDEX tokens_txn ON tokens (txn);
