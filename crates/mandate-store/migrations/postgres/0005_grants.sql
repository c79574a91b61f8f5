-- The token endpoint: keys agents sign client assertions with
-- (private_key_jwt), a replay cache of one-time `jti`s shared by every
-- replica (client assertions, DPoP proofs), and what a family revocation and
-- `mandate token list` need on each issued token.
CREATE TABLE agent_keys (
    agent      TEXT PRIMARY KEY NOT NULL,
    jwks       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE seen_jti (
    kind       TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, jti)
);
CREATE INDEX seen_jti_expiry ON seen_jti (expires_at);

ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN chain TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_agent ON tokens (agent, expires_at);
