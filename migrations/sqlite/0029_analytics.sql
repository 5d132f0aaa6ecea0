-- Analytics (issue #22): facts, rollups, the fold's checkpoint, saved reports.
--
-- The analytics fold (cases/src/analytics.rs) reads committed events from the outbox
-- in order and turns each into zero or more *facts* (a call ended, a conversation
-- opened, a first response, a resolution, a reopen, a CSAT score, a callback kept).
-- A fact has a deterministic key: inserting it a second time does nothing, so replaying
-- events (at-least-once delivery, a restart) never counts twice. A new fact adds its
-- measures to two rollup rows (its 15-minute bucket and its UTC day) for its
-- dimensions. Reports read rollups only; drill-down lists the facts of a bucket.
-- Dimensions unknown for a fact are '' (not NULL: they are part of the key).
CREATE TABLE analytics_facts (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    fact_key    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    channel     TEXT NOT NULL,
    queue_id    TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    team_id     TEXT NOT NULL,
    priority    TEXT NOT NULL,
    intent      TEXT NOT NULL,
    -- What it is about: `call_record`, `conversation`, `interaction`, `callback`.
    ref_kind    TEXT NOT NULL,
    ref_id      TEXT NOT NULL,
    -- The fact's duration or score, when it has one (ms; CSAT score 1-5).
    value       BIGINT,
    -- A word on it: the call outcome, the CSAT score's survey.
    detail      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, fact_key)
);
CREATE INDEX analytics_facts_at ON analytics_facts (tenant_id, at);

-- `grain_s`: 900 (15 minutes) or 86400 (a UTC day); `bucket`: its start (ms).
CREATE TABLE analytics_rollups (
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    grain_s             BIGINT NOT NULL,
    bucket              BIGINT NOT NULL,
    channel             TEXT NOT NULL,
    queue_id            TEXT NOT NULL,
    agent_id            TEXT NOT NULL,
    team_id             TEXT NOT NULL,
    priority            TEXT NOT NULL,
    intent              TEXT NOT NULL,
    contacts            BIGINT NOT NULL DEFAULT 0,
    offered             BIGINT NOT NULL DEFAULT 0,
    answered            BIGINT NOT NULL DEFAULT 0,
    abandoned           BIGINT NOT NULL DEFAULT 0,
    short_abandoned     BIGINT NOT NULL DEFAULT 0,
    sl_met              BIGINT NOT NULL DEFAULT 0,
    wait_answered_ms    BIGINT NOT NULL DEFAULT 0,
    talk_ms             BIGINT NOT NULL DEFAULT 0,
    hold_ms             BIGINT NOT NULL DEFAULT 0,
    wrap_ms             BIGINT NOT NULL DEFAULT 0,
    transfers           BIGINT NOT NULL DEFAULT 0,
    callbacks_requested BIGINT NOT NULL DEFAULT 0,
    callbacks_kept      BIGINT NOT NULL DEFAULT 0,
    frt_n               BIGINT NOT NULL DEFAULT 0,
    frt_ms              BIGINT NOT NULL DEFAULT 0,
    resolved            BIGINT NOT NULL DEFAULT 0,
    resolution_ms       BIGINT NOT NULL DEFAULT 0,
    reopened            BIGINT NOT NULL DEFAULT 0,
    csat_n              BIGINT NOT NULL DEFAULT 0,
    csat_positive       BIGINT NOT NULL DEFAULT 0,
    nps_n               BIGINT NOT NULL DEFAULT 0,
    nps_promoters       BIGINT NOT NULL DEFAULT 0,
    nps_detractors      BIGINT NOT NULL DEFAULT 0,
    res_b0              BIGINT NOT NULL DEFAULT 0,
    res_b1              BIGINT NOT NULL DEFAULT 0,
    res_b2              BIGINT NOT NULL DEFAULT 0,
    res_b3              BIGINT NOT NULL DEFAULT 0,
    res_b4              BIGINT NOT NULL DEFAULT 0,
    res_b5              BIGINT NOT NULL DEFAULT 0,
    res_b6              BIGINT NOT NULL DEFAULT 0,
    res_b7              BIGINT NOT NULL DEFAULT 0,
    res_b8              BIGINT NOT NULL DEFAULT 0,
    res_b9              BIGINT NOT NULL DEFAULT 0,
    res_b10             BIGINT NOT NULL DEFAULT 0,
    calls_offered       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, grain_s, bucket, channel, queue_id, agent_id, team_id, priority, intent)
);

-- The fold reads the outbox in commit-time order.
CREATE INDEX outbox_created ON outbox (created_at, id);

-- How far the fold has read the outbox (per consumer; one today: `rollups`).
CREATE TABLE analytics_checkpoint (
    consumer    TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    event_id    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Saved reports of the report builder: metrics, dimension, filters (JSON).
CREATE TABLE analytics_reports (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    owner_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    shared      BIGINT NOT NULL DEFAULT 0,
    definition  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX analytics_reports_tenant ON analytics_reports (tenant_id, owner_id);
