-- Callback requests, kept across restarts: a customer who asked to be called back
-- (the queue's callback key, the IVR `callback` node, max wait → callback) waits here
-- with their original place (`since_ms`, when they entered the queue) until an agent
-- is free; the ACD router is rebuilt from the open ones (`waiting`, `dialling`) at
-- start-up. `item` is the router's work-item id.
CREATE TABLE callbacks (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    queue_id        TEXT NOT NULL,
    customer_id     TEXT NOT NULL REFERENCES customers(id),
    item            TEXT NOT NULL,
    number          TEXT NOT NULL,
    since_ms        BIGINT NOT NULL,
    priority        BIGINT NOT NULL DEFAULT 0,
    state           TEXT NOT NULL CHECK (state IN ('waiting', 'dialling', 'connected', 'failed', 'cancelled')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    -- The call (timeline entry) in which the customer asked for it.
    interaction_id  TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX callbacks_by_tenant ON callbacks (tenant_id, state, since_ms);
CREATE INDEX callbacks_open ON callbacks (state);

-- Recording policy `consent`: record only customers who opted in.
ALTER TABLE acd_settings DROP CONSTRAINT acd_settings_recording_check;
ALTER TABLE acd_settings ADD CONSTRAINT acd_settings_recording_check
    CHECK (recording IN ('off', 'on', 'announce', 'consent'));
