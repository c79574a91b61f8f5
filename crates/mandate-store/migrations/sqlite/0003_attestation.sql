-- Trust providers, binding rules, shadow agents, join tokens and AWS
-- instance-id bindings.
CREATE TABLE trust_providers (
    name                  TEXT PRIMARY KEY NOT NULL,
    kind                  TEXT NOT NULL,
    spec                  TEXT NOT NULL,
    allow_private_network BOOLEAN NOT NULL,
    created_at            BIGINT NOT NULL,
    created_by            TEXT
);

CREATE TABLE binding_rules (
    id         TEXT PRIMARY KEY NOT NULL,
    provider   TEXT NOT NULL REFERENCES trust_providers (name),
    agent      TEXT NOT NULL REFERENCES agents (name),
    matches    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT
);
CREATE INDEX binding_rules_provider ON binding_rules (provider);

-- Verified attestations that matched no binding rule: one row per
-- (provider, subject), counted.
CREATE TABLE shadow_agents (
    id            TEXT PRIMARY KEY NOT NULL,
    provider      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    claims_digest TEXT NOT NULL,
    claims        TEXT NOT NULL,
    first_seen    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    seen_count    BIGINT NOT NULL,
    UNIQUE (provider, subject)
);

CREATE TABLE join_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    provider    TEXT NOT NULL REFERENCES trust_providers (name),
    agent       TEXT NOT NULL REFERENCES agents (name),
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT,
    expires_at  BIGINT NOT NULL,
    consumed_at BIGINT
);

-- AWS replay protection: the first agent an instance id attested as.
CREATE TABLE instance_bindings (
    provider    TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    agent       TEXT NOT NULL REFERENCES agents (name),
    bound_at    BIGINT NOT NULL,
    PRIMARY KEY (provider, instance_id)
);
