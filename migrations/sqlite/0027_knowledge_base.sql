-- Knowledge base (issue #20 part B): a tenant's help articles, versioned, draft or
-- published, and the web-chat bot's state per conversation.
--
-- `kb_articles` holds one row per article (its slug is unique in the tenant) with the
-- number of its latest version and of the version customers see (`published_version`,
-- NULL while it has never been published). Every save adds a row to
-- `kb_article_versions` (never changed afterwards), so the published text stays what it
-- was while a new draft is edited.
CREATE TABLE kb_articles (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    slug              TEXT NOT NULL,
    version           BIGINT NOT NULL,
    published_version BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    published_at      BIGINT,
    UNIQUE (tenant_id, slug)
);

CREATE TABLE kb_article_versions (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    article_id  TEXT NOT NULL REFERENCES kb_articles(id),
    version     BIGINT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    -- JSON array of strings.
    tags        TEXT NOT NULL,
    author_id   TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (article_id, version)
);
CREATE INDEX kb_article_versions_tenant ON kb_article_versions (tenant_id, article_id);

-- Per-tenant switches of the knowledge-base features (no row: defaults, bot off).
CREATE TABLE kb_settings (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    bot_enabled BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The bot's part in a conversation: `active` while it answers (the conversation is not
-- routed to an agent), `handed_off` once it gave the conversation to the queue. `tried`
-- is a JSON array of the answers it gave ({"question","slugs","at"}).
CREATE TABLE conversation_bot (
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    state            TEXT NOT NULL,
    tried            TEXT NOT NULL,
    handoff_reason   TEXT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id)
);
CREATE INDEX conversation_bot_tenant ON conversation_bot (tenant_id, conversation_id);
