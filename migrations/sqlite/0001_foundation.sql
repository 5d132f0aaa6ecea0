-- Parley foundation schema (SQLite). Landed migrations never change: add a new file.
-- Conventions shared with migrations/postgres: ids are TEXT (UUIDv7), times are
-- BIGINT milliseconds since the Unix epoch (UTC), flags are BIGINT 0/1, JSON is TEXT.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

-- Per-tenant sequences (human case numbers). One row per (tenant, name).
CREATE TABLE tenant_counters (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    value       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    email          TEXT NOT NULL,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent')),
    password_hash  TEXT NOT NULL,
    active         BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (tenant_id, email)
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE team_members (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    team_id     TEXT NOT NULL REFERENCES teams(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (team_id, user_id)
);

CREATE TABLE skills (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE user_skills (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    user_id      TEXT NOT NULL REFERENCES users(id),
    skill_id     TEXT NOT NULL REFERENCES skills(id),
    proficiency  BIGINT NOT NULL CHECK (proficiency BETWEEN 1 AND 5),
    PRIMARY KEY (user_id, skill_id)
);

CREATE TABLE customers (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    name               TEXT NOT NULL,
    consent_recording  BIGINT NOT NULL DEFAULT 0,
    consent_marketing  BIGINT NOT NULL DEFAULT 0,
    merged_into        TEXT REFERENCES customers(id),
    erased_at          BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX customers_tenant ON customers (tenant_id, id);

CREATE TABLE customer_identities (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    customer_id  TEXT NOT NULL REFERENCES customers(id),
    kind         TEXT NOT NULL,
    value        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (tenant_id, kind, value)
);
CREATE INDEX customer_identities_customer ON customer_identities (customer_id);

CREATE TABLE case_types (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    fields      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE sla_policies (
    tenant_id              TEXT NOT NULL REFERENCES tenants(id),
    priority               TEXT NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    first_response_minutes BIGINT NOT NULL CHECK (first_response_minutes > 0),
    resolution_minutes     BIGINT NOT NULL CHECK (resolution_minutes > 0),
    updated_at             BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, priority)
);

CREATE TABLE cases (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    number                BIGINT NOT NULL,
    customer_id           TEXT REFERENCES customers(id),
    case_type_id          TEXT REFERENCES case_types(id),
    title                 TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('new', 'open', 'pending_customer', 'on_hold', 'resolved', 'closed')),
    priority              TEXT NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    assignee_id           TEXT REFERENCES users(id),
    team_id               TEXT REFERENCES teams(id),
    custom_fields         TEXT NOT NULL DEFAULT '{}',
    merged_into           TEXT REFERENCES cases(id),
    first_response_due_at BIGINT,
    resolution_due_at     BIGINT,
    first_responded_at    BIGINT,
    sla_paused_at         BIGINT,
    resolved_at           BIGINT,
    closed_at             BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (tenant_id, number)
);
CREATE INDEX cases_tenant_created ON cases (tenant_id, created_at, id);
CREATE INDEX cases_tenant_status ON cases (tenant_id, status, created_at, id);
CREATE INDEX cases_tenant_assignee ON cases (tenant_id, assignee_id, created_at, id);
CREATE INDEX cases_customer ON cases (customer_id);

-- Every state change of a case, in order; nothing here is ever updated or deleted.
CREATE TABLE case_events (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    case_id      TEXT NOT NULL REFERENCES cases(id),
    kind         TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT,
    actor_id     TEXT REFERENCES users(id),
    data         TEXT NOT NULL DEFAULT '{}',
    occurred_at  BIGINT NOT NULL
);
CREATE INDEX case_events_case ON case_events (case_id, occurred_at, id);

CREATE TABLE case_tags (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    case_id    TEXT NOT NULL REFERENCES cases(id),
    tag        TEXT NOT NULL,
    PRIMARY KEY (case_id, tag)
);
CREATE INDEX case_tags_tenant_tag ON case_tags (tenant_id, tag);

CREATE TABLE case_links (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    case_id        TEXT NOT NULL REFERENCES cases(id),
    other_case_id  TEXT NOT NULL REFERENCES cases(id),
    kind           TEXT NOT NULL CHECK (kind IN ('relates_to', 'duplicate_of', 'blocks', 'blocked_by', 'merged_into')),
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (case_id, other_case_id, kind)
);

-- The timeline: every interaction on every channel, one table.
CREATE TABLE interactions (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    customer_id     TEXT NOT NULL REFERENCES customers(id),
    case_id         TEXT REFERENCES cases(id),
    kind            TEXT NOT NULL CHECK (kind IN ('call', 'message', 'email', 'note', 'system')),
    channel         TEXT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    author_user_id  TEXT REFERENCES users(id),
    body            TEXT NOT NULL DEFAULT '',
    attachments     TEXT NOT NULL DEFAULT '[]',
    sentiment       DOUBLE PRECISION,
    intent          TEXT,
    tags            TEXT NOT NULL DEFAULT '[]',
    occurred_at     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX interactions_timeline ON interactions (tenant_id, customer_id, occurred_at, id);
CREATE INDEX interactions_case ON interactions (case_id, occurred_at);

CREATE TABLE mentions (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    interaction_id  TEXT NOT NULL REFERENCES interactions(id),
    user_id         TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (interaction_id, user_id)
);
CREATE INDEX mentions_user ON mentions (user_id);

-- Full-text search over interaction bodies (external-content FTS5 kept in step by triggers).
CREATE VIRTUAL TABLE interactions_fts USING fts5(body, content='interactions', content_rowid='rowid');
CREATE TRIGGER interactions_fts_ai AFTER INSERT ON interactions BEGIN
    INSERT INTO interactions_fts(rowid, body) VALUES (new.rowid, new.body);
END;
CREATE TRIGGER interactions_fts_ad AFTER DELETE ON interactions BEGIN
    INSERT INTO interactions_fts(interactions_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
END;
CREATE TRIGGER interactions_fts_au AFTER UPDATE OF body ON interactions BEGIN
    INSERT INTO interactions_fts(interactions_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
    INSERT INTO interactions_fts(rowid, body) VALUES (new.rowid, new.body);
END;

-- Who did what, when; before/after snapshots with sensitive fields redacted.
CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    actor_id     TEXT,
    actor_role   TEXT,
    action       TEXT NOT NULL,
    entity_kind  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    subject_customer_id TEXT,
    before       TEXT,
    after        TEXT,
    occurred_at  BIGINT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, occurred_at, id);
CREATE INDEX audit_log_entity ON audit_log (entity_id);
CREATE INDEX audit_log_subject ON audit_log (subject_customer_id);
