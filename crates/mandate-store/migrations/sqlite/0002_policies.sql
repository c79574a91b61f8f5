-- Versioned Cedar policy sets and which one is active.
CREATE TABLE policy_versions (
    version    BIGINT PRIMARY KEY NOT NULL,
    sources    TEXT NOT NULL,
    message    TEXT NOT NULL,
    author     TEXT,
    digest     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- At most one row: the active version. No row means no policy: deny all.
CREATE TABLE policy_head (
    id           INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version      BIGINT NOT NULL REFERENCES policy_versions (version),
    activated_at BIGINT NOT NULL
);
