-- Automation rules (issue #23).
--
-- `automation_rules`: a tenant's rules as data. `definition` is the rule's JSON
-- (trigger, conditions, actions, stop_processing) as `parley-rules` reads it; the
-- columns beside it are what lists and ordering need.
CREATE TABLE automation_rules (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    enabled     BIGINT NOT NULL DEFAULT 1,
    position    BIGINT NOT NULL DEFAULT 0,
    definition  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX automation_rules_tenant ON automation_rules (tenant_id, position, id);

-- The execution log: one row per rule that fired (or was held back by loop
-- protection) on one event. (rule_id, event_id) is unique: an event replayed after a
-- crash is not logged — nor applied — twice.
CREATE TABLE automation_rule_runs (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_kind  TEXT NOT NULL,
    subject     TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    at          BIGINT NOT NULL,
    UNIQUE (rule_id, event_id)
);
CREATE INDEX automation_rule_runs_rule ON automation_rule_runs (tenant_id, rule_id, at);

-- The rules runtime's position in the event stream (the outbox, ordered by
-- (created_at, id)), and the events it has finished within the look-back window
-- (a transaction that committed late with an earlier time is still seen once).
CREATE TABLE automation_cursor (
    name        TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    event_id    TEXT NOT NULL
);
CREATE TABLE automation_seen (
    event_id    TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);
CREATE INDEX automation_seen_time ON automation_seen (created_at);

-- SLA milestones raised (`sla.warning` at 50/75/90 % of a target's time, `sla.breached`):
-- one row per case, target, milestone and due time, so each is raised once (a due
-- time that moves — a priority change, a pause — raises them again for the new one).
CREATE TABLE sla_alerts (
    case_id     TEXT NOT NULL,
    target      TEXT NOT NULL,
    milestone   TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    tenant_id   TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (case_id, target, milestone, due_at)
);

-- Outbound webhook subscriptions: the event types a tenant's URL receives, signed
-- (HMAC-SHA256) with `secret`.
CREATE TABLE webhook_subscriptions (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    event_types TEXT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX webhook_subscriptions_tenant ON webhook_subscriptions (tenant_id);

-- Their delivery outbox and log: one row per event and subscription (enqueued in the
-- transaction that finishes the event for the automation runtime), retried with
-- backoff, replayable.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_kind      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (tenant_id, subscription_id, created_at);

-- Tasks on cases: what to do, who, by when; `task.overdue` is raised once per task and
-- due time (the SLA scan, recorded in `sla_alerts` with target `task`).
CREATE TABLE case_tasks (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    case_id      TEXT NOT NULL,
    title        TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    assignee_id  TEXT,
    due_at       BIGINT,
    status       TEXT NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
    priority     TEXT NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX case_tasks_case ON case_tasks (tenant_id, case_id);
CREATE INDEX case_tasks_assignee ON case_tasks (tenant_id, assignee_id, status, due_at);
CREATE INDEX case_tasks_due ON case_tasks (status, due_at);
