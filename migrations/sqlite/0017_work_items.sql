-- Work items routed through the same router as calls: chats, emails, messages and
-- tasks an integration creates (`POST /api/v1/work-items`). The router is the truth
-- while it runs; every decision it makes about an item (offered to an agent, back in
-- the queue, assigned, completed, expired) is written here in order and audited, and
-- the open ones (`queued`, `offered`, `assigned`) are restored at start-up.
-- `queue_id` and `customer_id` are not foreign keys: a queue may be deleted and a
-- customer erased while the item's history stays.
CREATE TABLE work_items (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    kind            TEXT NOT NULL CHECK (kind IN ('chat', 'email', 'message', 'task')),
    queue_id        TEXT NOT NULL,
    priority        TEXT NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    title           TEXT NOT NULL,
    customer_id     TEXT,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'offered', 'assigned', 'completed', 'expired')),
    -- The agent it is offered or assigned to (or who completed it).
    agent_id        TEXT,
    -- When its first response is due by the tenant's SLA policy for its priority.
    sla_due_at      BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    completed_at    BIGINT
);
CREATE INDEX work_items_by_tenant ON work_items (tenant_id, state, created_at);
CREATE INDEX work_items_by_agent ON work_items (tenant_id, agent_id, state);
CREATE INDEX work_items_open ON work_items (state);
