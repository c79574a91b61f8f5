-- Agents, admin tokens, the audit chain and server metadata.
CREATE TABLE agents (
    name         TEXT PRIMARY KEY NOT NULL,
    spiffe_id    TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    owner        TEXT NOT NULL,
    description  TEXT NOT NULL,
    provenance   TEXT NOT NULL,
    envelope     TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    review_by    BIGINT NOT NULL,
    last_seen_at BIGINT
);
CREATE INDEX agents_owner ON agents (owner);
CREATE INDEX agents_status ON agents (status);

CREATE TABLE agent_labels (
    agent_name TEXT NOT NULL REFERENCES agents (name),
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (agent_name, key)
);
CREATE INDEX agent_labels_kv ON agent_labels (key, value);

CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT,
    expires_at  BIGINT,
    revoked_at  BIGINT
);

CREATE TABLE audit_events (
    seq        BIGINT PRIMARY KEY NOT NULL,
    time_ms    BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    actor      TEXT,
    target     TEXT,
    outcome    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_events_type ON audit_events (event_type, seq);
CREATE INDEX audit_events_target ON audit_events (target, seq);
CREATE INDEX audit_events_time ON audit_events (time_ms);

-- One row: the chain's head, locked by every append so the chain stays linear.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
