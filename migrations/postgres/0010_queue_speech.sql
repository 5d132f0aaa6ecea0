-- Per-queue AI toggle (issue 7): a queue may switch live transcription off for the
-- calls it takes (the tenant's toggle in speech_settings still wins when it is off).
-- No row: the queue follows the tenant.
CREATE TABLE queue_speech (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    queue_id      TEXT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    transcription BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, queue_id)
);
