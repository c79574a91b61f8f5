-- Governance: the tools each resource offers (for access review), per-agent
-- drift baselines, drift findings, and how far the detector has read the
-- audit log.
CREATE TABLE resource_tools (
    resource TEXT NOT NULL REFERENCES resources (name) ON DELETE CASCADE,
    tool     TEXT NOT NULL,
    PRIMARY KEY (resource, tool)
);

CREATE TABLE drift_baselines (
    agent      TEXT PRIMARY KEY NOT NULL,
    state      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE drift_findings (
    id         TEXT PRIMARY KEY NOT NULL,
    agent      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    summary    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    risk       BIGINT NOT NULL,
    event_seq  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    acked_at   BIGINT,
    acked_by   TEXT,
    ack_note   TEXT
);
CREATE INDEX drift_findings_agent ON drift_findings (agent, created_at);
CREATE INDEX drift_findings_created ON drift_findings (created_at);

CREATE TABLE drift_cursor (
    id  INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO drift_cursor (id, seq) VALUES (1, 0);
