-- IVR administration (issue #5, PostgreSQL): flows with a draft and immutable published versions,
-- the history of publish/rollback events, business-hours calendars, routes from
-- dialled numbers to flows, and uploaded prompts. Depends only on 0001.
-- Conventions as in 0001: TEXT ids, BIGINT milliseconds, JSON as TEXT.

-- One row per flow; `id` is the flow's own id from its JSON (what `sub_flow` nodes
-- and routes reference), unique within the tenant.
CREATE TABLE ivr_flows (
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    id               TEXT NOT NULL,
    name             TEXT NOT NULL,
    draft            TEXT NOT NULL,
    current_version  BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Published versions: never updated, never deleted. `definition` is the exact JSON.
CREATE TABLE ivr_flow_versions (
    tenant_id     TEXT NOT NULL,
    flow_id       TEXT NOT NULL,
    version       BIGINT NOT NULL CHECK (version >= 1),
    definition    TEXT NOT NULL,
    published_by  TEXT REFERENCES users(id),
    published_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, flow_id, version),
    FOREIGN KEY (tenant_id, flow_id) REFERENCES ivr_flows(tenant_id, id)
);

-- What made a version current: a publish or a rollback. Append-only.
CREATE TABLE ivr_flow_events (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    flow_id      TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('publish', 'rollback')),
    version      BIGINT NOT NULL,
    from_version BIGINT,
    actor_id     TEXT REFERENCES users(id),
    occurred_at  BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, flow_id, version) REFERENCES ivr_flow_versions(tenant_id, flow_id, version)
);
CREATE INDEX ivr_flow_events_flow ON ivr_flow_events (tenant_id, flow_id, occurred_at);

-- Business-hours calendars by name (JSON: time zone, weekly hours, holidays).
CREATE TABLE ivr_calendars (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    definition  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Uploaded prompt audio; the file lives under the storage root at `storage_path`.
CREATE TABLE ivr_prompts (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    storage_path  TEXT NOT NULL,
    created_by    TEXT REFERENCES users(id),
    created_at    BIGINT NOT NULL
);
CREATE INDEX ivr_prompts_tenant ON ivr_prompts (tenant_id, created_at);

-- Prompts each published version plays: a version's audio can never be deleted
-- (rollback must be able to play it).
CREATE TABLE ivr_version_prompts (
    tenant_id  TEXT NOT NULL,
    flow_id    TEXT NOT NULL,
    version    BIGINT NOT NULL,
    prompt_id  TEXT NOT NULL REFERENCES ivr_prompts(id),
    PRIMARY KEY (tenant_id, flow_id, version, prompt_id),
    FOREIGN KEY (tenant_id, flow_id, version) REFERENCES ivr_flow_versions(tenant_id, flow_id, version)
);
CREATE INDEX ivr_version_prompts_prompt ON ivr_version_prompts (prompt_id);

-- Dialled number (E.164) -> flow. A number reaches one tenant: inbound routing looks
-- it up by number alone, so it is unique across tenants, not only within one.
CREATE TABLE ivr_routes (
    number      TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    flow_id     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, flow_id) REFERENCES ivr_flows(tenant_id, id)
);
CREATE INDEX ivr_routes_tenant ON ivr_routes (tenant_id, flow_id);
