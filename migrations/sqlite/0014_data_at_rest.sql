-- Data at rest (issue #13).
--
-- Per-tenant retention of recordings (voicemail and call recordings): files older
-- than `days` are deleted by the purge task and their rows marked. No row: kept.
CREATE TABLE recording_retention (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    days        BIGINT NOT NULL CHECK (days >= 1),
    updated_at  BIGINT NOT NULL
);

-- Calls in progress, written when a call starts and updated as it goes (answered,
-- recording started), removed when its call record is stored. Rows left here at
-- start-up belong to calls a crash cut off: they are closed as call records with
-- cause `server_restart`, their recording kept and linked.
CREATE TABLE live_calls (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    call_id      TEXT NOT NULL,
    direction    TEXT NOT NULL,
    caller       TEXT NOT NULL,
    dialled      TEXT NOT NULL,
    queue_id     TEXT,
    agent_id     TEXT,
    started_at   BIGINT NOT NULL,
    answered_at  BIGINT,
    -- Relative to the data directory, as on call records.
    recording    TEXT,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX live_calls_by_call ON live_calls (tenant_id, call_id);

-- When a call record's recording was deleted (retention or erasure).
ALTER TABLE call_records ADD COLUMN recording_deleted_at BIGINT;
