-- Conversations (issue #17): the engine every text channel feeds.
--
-- A channel is a tenant's entry point of one kind (`web_chat` now; email, messaging
-- apps later) with where its conversations are routed (queue, team). A conversation is
-- one thread with a customer on one channel (`thread_key`, unique per channel): it is
-- never deleted (GDPR erasure scrubs it) and never ends, it changes status; a new
-- inbound message reopens it. Messages are numbered per conversation (`seq`), are
-- idempotent by the provider's id (per channel) and the browser's client id (per
-- conversation), and each non-private one is also an interaction on the customer's
-- timeline (`interaction_id`, searchable). Agents' replies wait in
-- `message_deliveries` (the delivery outbox, written in the reply's transaction) until
-- the delivery worker hands them to the channel's adapter.
-- `customer_id`, `assignee_id`, `team_id`, `queue_id`, `work_item_id` are not foreign
-- keys: the history stays when those go.
CREATE TABLE channels (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    kind        TEXT NOT NULL CHECK (kind IN ('web_chat', 'email', 'sms', 'whatsapp', 'messenger', 'instagram', 'telegram', 'x', 'api')),
    name        TEXT NOT NULL,
    -- Where new conversations are routed (NULL: not routed, listed only).
    queue_id    TEXT,
    team_id     TEXT,
    -- JSON object: per-channel settings (greeting, colours, limits).
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    customer_id     TEXT NOT NULL,
    channel_id      TEXT NOT NULL REFERENCES channels(id),
    thread_key      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'pending', 'snoozed', 'resolved', 'closed')),
    snoozed_until   BIGINT,
    assignee_id     TEXT,
    team_id         TEXT,
    queue_id        TEXT,
    priority        TEXT NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    -- JSON array of lowercase tags.
    tags            TEXT NOT NULL DEFAULT '[]',
    subject         TEXT,
    -- The work item routing it now (the last one created).
    work_item_id    TEXT,
    csat_score      BIGINT,
    csat_comment    TEXT,
    csat_at         BIGINT,
    -- The highest message seq given out.
    last_seq        BIGINT NOT NULL DEFAULT 0,
    last_message_at BIGINT NOT NULL,
    -- The first customer message not yet answered by an agent (waiting since).
    waiting_since   BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    resolved_at     BIGINT,
    UNIQUE (channel_id, thread_key)
);
CREATE INDEX conversations_list ON conversations (tenant_id, last_message_at, id);
CREATE INDEX conversations_status ON conversations (tenant_id, status, last_message_at);
CREATE INDEX conversations_assignee ON conversations (tenant_id, assignee_id, last_message_at);
CREATE INDEX conversations_customer ON conversations (tenant_id, customer_id);
CREATE INDEX conversations_work_item ON conversations (work_item_id);
CREATE INDEX conversations_snoozed ON conversations (status, snoozed_until);

-- A conversation can open a case; a case can hold several conversations.
CREATE TABLE conversation_cases (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    case_id         TEXT NOT NULL REFERENCES cases(id),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, case_id)
);
CREATE INDEX conversation_cases_case ON conversation_cases (tenant_id, case_id);

CREATE TABLE messages (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    conversation_id     TEXT NOT NULL REFERENCES conversations(id),
    channel_id          TEXT NOT NULL,
    seq                 BIGINT NOT NULL,
    direction           TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    author_kind         TEXT NOT NULL CHECK (author_kind IN ('customer', 'agent', 'bot', 'system')),
    author_user_id      TEXT,
    text                TEXT NOT NULL,
    -- Sanitised HTML (NULL: plain text only).
    html                TEXT,
    -- The provider's id: the idempotency key of inbound messages, unique per channel.
    provider_message_id TEXT,
    -- The browser's id: idempotency of a visitor's (or agent's) retried send.
    client_id           TEXT,
    reply_to            TEXT,
    -- 1: an internal note, never sent to the customer.
    private             BIGINT NOT NULL DEFAULT 0,
    status              TEXT NOT NULL CHECK (status IN ('received', 'note', 'queued', 'sent', 'delivered', 'read', 'failed')),
    failure_reason      TEXT,
    interaction_id      TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (conversation_id, seq),
    UNIQUE (channel_id, provider_message_id),
    UNIQUE (conversation_id, client_id)
);
CREATE INDEX messages_tenant ON messages (tenant_id, created_at);

-- Every delivery status a message went through, with its time.
CREATE TABLE message_status_events (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    message_id  TEXT NOT NULL REFERENCES messages(id),
    status      TEXT NOT NULL,
    reason      TEXT,
    at          BIGINT NOT NULL
);
CREATE INDEX message_status_events_message ON message_status_events (message_id, at);

-- Attachment metadata; the bytes are stored by content hash under the data directory.
CREATE TABLE message_attachments (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    message_id      TEXT NOT NULL REFERENCES messages(id),
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    name            TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size            BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX message_attachments_message ON message_attachments (message_id);
CREATE INDEX message_attachments_hash ON message_attachments (sha256);

-- The delivery outbox: one row per outbound message to send, written in the
-- transaction that stores the message. The delivery worker claims due rows
-- (`next_attempt_at`), sends through the channel adapter and, in one transaction,
-- marks the row done with the message's new status; failures are retried with backoff
-- until `failed`.
CREATE TABLE message_deliveries (
    message_id      TEXT PRIMARY KEY REFERENCES messages(id),
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    channel_id      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX message_deliveries_due ON message_deliveries (state, next_attempt_at);
