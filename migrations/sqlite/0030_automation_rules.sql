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
