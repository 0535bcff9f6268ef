-- Vantage schema, SQLite flavour. Timestamps are Unix milliseconds (BIGINT), ids are UUID text,
-- JSON documents are TEXT: the same shape works on PostgreSQL (BIGINT, TEXT/JSONB) so one query
-- code path serves both backends.

-- API tokens: only a SHA-256 of the secret is stored. Roles are checked per route.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

-- One-time enrolment tokens.
CREATE TABLE enrollment_tokens (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_by TEXT,
    used_at    BIGINT,
    agent_id   TEXT
);

-- Agents, identified by the UUID in their certificate.
CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    labels          TEXT NOT NULL DEFAULT '{}',
    country         TEXT,
    city            TEXT,
    region          TEXT,
    asn             BIGINT,
    version         TEXT,
    capabilities    TEXT,
    seen_address    TEXT,
    enrolled_at     BIGINT NOT NULL,
    connected_since BIGINT,
    last_seen       BIGINT,
    revoked_at      BIGINT,
    cert_serial     TEXT NOT NULL,
    cert_not_after  BIGINT NOT NULL,
    builtin         INTEGER NOT NULL DEFAULT 0
);

-- A measurement: one spec, a selector, and one row per selected agent below.
CREATE TABLE measurements (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    spec        TEXT NOT NULL,
    selector    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'finished')),
    created_at  BIGINT NOT NULL,
    deadline    BIGINT NOT NULL,
    finished_at BIGINT,
    created_by  TEXT
);
CREATE INDEX measurements_status ON measurements (status);
CREATE INDEX measurements_target ON measurements (target);

-- One job per selected agent. Exactly one result per job wins (result_id).
CREATE TABLE measurement_agents (
    job_id         TEXT PRIMARY KEY,
    measurement_id TEXT NOT NULL REFERENCES measurements (id),
    agent_id       TEXT NOT NULL REFERENCES agents (id),
    status         TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'agent_lost')),
    result_id      TEXT,
    reason         TEXT,
    late           INTEGER NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL,
    UNIQUE (measurement_id, agent_id)
);
CREATE INDEX measurement_agents_agent ON measurement_agents (agent_id, status);

-- Result envelopes, stored once per result id (agents may re-send after a reconnect).
CREATE TABLE results (
    id             TEXT PRIMARY KEY,
    measurement_id TEXT NOT NULL,
    agent_id       TEXT NOT NULL,
    job_id         TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    body           TEXT NOT NULL,
    stored_at      BIGINT NOT NULL
);
CREATE INDEX results_measurement ON results (measurement_id);
