-- Canned responses: a tenant's library of reply templates for the agent desktop's reply
-- box (issue #17). `shortcut` is what an agent types after `/` to find one; `body` may
-- hold placeholders such as `{{customer.name}}`, checked against the known names when
-- written and filled in by the reply box. Admins write them; every agent reads them.
CREATE TABLE canned_responses (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    shortcut    TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, shortcut)
);
