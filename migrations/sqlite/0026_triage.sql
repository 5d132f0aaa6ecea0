-- Triage (issue #20): what the classifier decided about each inbound message and each
-- call's transcript, the tenants' own intents, and agents' corrections (the examples
-- triage learns from, kept with who and when).
--
-- `message_triage.result` is the whole result as JSON (intent, priority, noise,
-- language, sentiment, entities, confidence, source); intent, priority and noise are
-- also columns for filtering. `subject_kind` says whether `subject_id` is a message or
-- an interaction (a call). `conversations.intent` is the latest inbound message's
-- intent, or an agent's correction.
CREATE TABLE message_triage (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    subject_kind    TEXT NOT NULL CHECK (subject_kind IN ('message', 'interaction')),
    subject_id      TEXT NOT NULL,
    conversation_id TEXT,
    intent          TEXT NOT NULL,
    priority        TEXT NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    noise           BIGINT NOT NULL DEFAULT 0,
    result          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, subject_kind, subject_id)
);
CREATE INDEX message_triage_conversation ON message_triage (tenant_id, conversation_id);
CREATE INDEX message_triage_intent ON message_triage (tenant_id, intent, created_at);

ALTER TABLE conversations ADD COLUMN intent TEXT;

CREATE TABLE triage_corrections (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    conversation_id TEXT,
    message_id      TEXT,
    -- The text triaged: what the classifier learns from (blanked by GDPR erasure).
    text            TEXT NOT NULL,
    intent_before   TEXT,
    priority_before TEXT,
    intent          TEXT NOT NULL,
    priority        TEXT NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    corrected_by    TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX triage_corrections_tenant ON triage_corrections (tenant_id, created_at);

CREATE TABLE ai_intents (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- JSON array of example messages.
    examples    TEXT NOT NULL,
    priority    TEXT CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    created_by  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);
