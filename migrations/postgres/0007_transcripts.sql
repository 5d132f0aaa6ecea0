-- Live transcription (issue 7). Per-tenant speech settings (the "AI toggle" and the
-- phrases that alert supervisors) and the transcript segments of calls, stored with the
-- call's interaction (whose body carries the full transcript, summary and keywords for
-- the timeline and full-text search).
CREATE TABLE speech_settings (
    tenant_id       TEXT PRIMARY KEY REFERENCES tenants(id),
    transcription   BIGINT NOT NULL DEFAULT 0,
    require_consent BIGINT NOT NULL DEFAULT 1,
    alert_phrases   TEXT NOT NULL DEFAULT '[]',
    updated_at      BIGINT NOT NULL
);

CREATE TABLE transcript_segments (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    interaction_id  TEXT NOT NULL REFERENCES interactions(id),
    seq             BIGINT NOT NULL,
    speaker         TEXT NOT NULL CHECK (speaker IN ('caller', 'agent')),
    start_ms        BIGINT NOT NULL,
    end_ms          BIGINT NOT NULL,
    text            TEXT NOT NULL,
    sentiment       DOUBLE PRECISION NOT NULL,
    live            BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX transcript_segments_interaction ON transcript_segments (tenant_id, interaction_id, seq);
