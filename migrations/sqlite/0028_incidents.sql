-- Incidents (issue #21): problem records with a status machine, links to cases and
-- conversations, a timeline of notes and public updates fanned out to every affected
-- customer through the delivery outbox, and the Slack swarm's connection and outbox.
-- The `engineer` role joins the users' roles.
CREATE TABLE incidents (
    id                      TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants(id),
    title                   TEXT NOT NULL,
    severity                TEXT NOT NULL CHECK (severity IN ('P0', 'P1', 'P2', 'P3')),
    status                  TEXT NOT NULL CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved', 'post_mortem')),
    owner_id                TEXT REFERENCES users(id),
    comms_owner_id          TEXT REFERENCES users(id),
    services                TEXT NOT NULL DEFAULT '[]',
    started_at              BIGINT NOT NULL,
    resolved_at             BIGINT,
    last_public_update_at   BIGINT,
    -- The due time an alert was already raised for (one alert per missed update).
    cadence_alerted_for     BIGINT,
    slack_channel_id        TEXT,
    slack_channel_name      TEXT,
    created_by              TEXT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX incidents_by_status ON incidents (tenant_id, status, created_at);

-- Cases and conversations linked to an incident.
CREATE TABLE incident_links (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    incident_id  TEXT NOT NULL REFERENCES incidents(id),
    kind         TEXT NOT NULL CHECK (kind IN ('case', 'conversation')),
    item_id      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (incident_id, kind, item_id)
);
CREATE INDEX incident_links_by_item ON incident_links (tenant_id, kind, item_id);

-- The incident's timeline: internal notes, public updates, status changes. A public
-- update's fan-out to the affected customers is finished when `fanout_done` is 1; until
-- then a restart resumes it (each customer's message is idempotent on its client id).
CREATE TABLE incident_entries (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    incident_id  TEXT NOT NULL REFERENCES incidents(id),
    kind         TEXT NOT NULL CHECK (kind IN ('note', 'update', 'status')),
    text         TEXT NOT NULL,
    public       BIGINT NOT NULL DEFAULT 0,
    author_id    TEXT,
    source       TEXT NOT NULL DEFAULT 'parley',
    external_id  TEXT,
    fanout_done  BIGINT NOT NULL DEFAULT 1,
    created_at   BIGINT NOT NULL,
    UNIQUE (incident_id, external_id)
);
CREATE INDEX incident_entries_by_incident ON incident_entries (tenant_id, incident_id, created_at);

-- One row per (public update, affected customer): the message it became.
CREATE TABLE incident_update_deliveries (
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    entry_id         TEXT NOT NULL REFERENCES incident_entries(id),
    customer_id      TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    channel          TEXT NOT NULL,
    -- Set once the message is stored (the row is written first: a restart re-sends to
    -- the same conversation with the same client id, which stores nothing twice).
    message_id       TEXT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (entry_id, customer_id)
);

-- A tenant's Slack workspace connection (secrets sealed with the data-at-rest key ring).
CREATE TABLE slack_integrations (
    tenant_id        TEXT PRIMARY KEY REFERENCES tenants(id),
    bot_token        TEXT NOT NULL,
    signing_secret   TEXT NOT NULL,
    api_base_url     TEXT NOT NULL,
    invitees         TEXT NOT NULL DEFAULT '[]',
    updated_at       BIGINT NOT NULL
);

-- Calls to Slack waiting to be made (Slack being down never blocks an incident).
CREATE TABLE slack_outbox (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    incident_id      TEXT NOT NULL REFERENCES incidents(id),
    action           TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX slack_outbox_due ON slack_outbox (state, next_attempt_at);

-- Events API deliveries already taken (Slack retries with the same event_id).
CREATE TABLE slack_events_seen (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    event_id     TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

-- Widen users.role's CHECK to admit 'engineer'. SQLite cannot alter a CHECK; rebuilding
-- `users` would break the foreign keys that reference it, so the stored definition is
-- edited in place (SQLite's documented procedure for constraint-only changes, "Making
-- Other Kinds Of Table Schema Changes": existing rows satisfy the wider check) and the
-- schema reloaded; the CREATEs above changed the schema cookie, so every other
-- connection reloads it too.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (role IN (''admin'', ''supervisor'', ''agent''))',
                          'CHECK (role IN (''admin'', ''supervisor'', ''agent'', ''engineer''))')
 WHERE type = 'table' AND name = 'users';
PRAGMA writable_schema = RESET;
