-- The gateway: a resource exposed at `/gw/<name>` has a route (JSON: the
-- upstream URL, the credential it injects, what it records, the scopes it
-- requires, its timeout); NULL when it is not exposed. Upstream credentials
-- are stored by name: non-secret settings as JSON, the secret sealed under
-- the master key (AES-256-GCM, the name as associated data).
ALTER TABLE resources ADD COLUMN route TEXT;

CREATE TABLE credentials (
    name       TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    config     TEXT NOT NULL,
    sealed     BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
