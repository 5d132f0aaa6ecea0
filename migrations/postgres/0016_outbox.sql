-- The transactional outbox (issue #15).
--
-- Every audited mutation writes the events it publishes here, in the transaction that
-- stores the change and its audit record. After the commit the relay hands them to
-- the event sinks (the in-process broadcast; NATS across nodes later) and sets
-- `published_at`. Rows still unpublished at start-up (a crash between commit and
-- publish, a sink that was down) are published then: delivery is at-least-once,
-- and `id` (the event's id) lets consumers drop duplicates. Published rows are
-- pruned after a week.
CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    event        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    published_at BIGINT
);

CREATE INDEX outbox_unpublished ON outbox (created_at, id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
