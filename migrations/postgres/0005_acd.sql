-- Voice ACD: queues, agents' presence, the tenant's call-recording policy, and one call
-- detail record per call that entered a queue (or ran an IVR flow).

CREATE TABLE queues (
    id                      TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants(id),
    name                    TEXT NOT NULL,
    strategy                TEXT NOT NULL CHECK (strategy IN ('longest_idle', 'most_skilled', 'round_robin')),
    -- JSON array of {"skill": skill id, "min_proficiency": 1..5}.
    skills                  TEXT NOT NULL DEFAULT '[]',
    sl_threshold_s          BIGINT NOT NULL,
    overflow_queue_id       TEXT REFERENCES queues(id),
    overflow_after_s        BIGINT,
    max_wait_s              BIGINT,
    max_wait_action         TEXT NOT NULL CHECK (max_wait_action IN ('voicemail', 'callback')),
    wrap_up_s               BIGINT NOT NULL,
    ring_timeout_s          BIGINT NOT NULL,
    max_missed_offers       BIGINT NOT NULL,
    priority_aging_per_min  BIGINT NOT NULL,
    announce_interval_s     BIGINT NOT NULL,
    -- The DTMF key a waiting caller presses for a callback (NULL: none).
    callback_key            TEXT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE agent_presence (
    user_id     TEXT PRIMARY KEY REFERENCES users(id),
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    status      TEXT NOT NULL CHECK (status IN ('offline', 'available', 'away')),
    reason      TEXT,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE acd_settings (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    -- off | on | announce (record and play a notice to the caller first)
    recording   TEXT NOT NULL CHECK (recording IN ('off', 'on', 'announce')),
    updated_at  BIGINT NOT NULL
);

CREATE TABLE call_records (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    call_id         TEXT NOT NULL,
    direction       TEXT NOT NULL,
    caller          TEXT NOT NULL,
    dialled         TEXT NOT NULL,
    customer_id     TEXT,
    queue_id        TEXT,
    -- The agent who took the call (first answer), and every agent offered, as JSON.
    agent_id        TEXT,
    agents          TEXT NOT NULL DEFAULT '[]',
    started_at      BIGINT NOT NULL,
    enqueued_at     BIGINT,
    answered_at     BIGINT,
    ended_at        BIGINT NOT NULL,
    wait_ms         BIGINT NOT NULL,
    talk_ms         BIGINT NOT NULL,
    wrap_ms         BIGINT NOT NULL,
    -- answered | abandoned | timeout | callback | voicemail | no_queue
    outcome         TEXT NOT NULL,
    hangup_side     TEXT,
    hangup_cause    TEXT,
    recording       TEXT,
    sl_met          BIGINT NOT NULL
);
CREATE INDEX call_records_tenant_started ON call_records (tenant_id, started_at, id);
CREATE INDEX call_records_queue_started ON call_records (tenant_id, queue_id, started_at);
CREATE INDEX call_records_agent_started ON call_records (tenant_id, agent_id, started_at);
