-- Routing for every kind of work (issue #15): a queue's channel settings and each
-- agent's capacity per channel.
--
-- `auto_assign` (0/1): the router assigns items without an offer to accept.
-- `sticky_window_s`: a customer's item goes to the agent who last handled one of theirs
-- within this many seconds, when that agent is free (0: off).
-- `channel`: items overflowing into this queue take this channel's capacity
-- (`voice`, `chat`, `async`; NULL keeps theirs: a chat queue overflowing into an email
-- queue with `async`).
ALTER TABLE queues ADD COLUMN auto_assign BIGINT NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN sticky_window_s BIGINT NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN channel TEXT CHECK (channel IN ('voice', 'chat', 'async'));

-- An agent's capacity: items at once per channel, and whether a call blocks other work
-- (0/1). No row: the defaults (1 call, 3 chats, 5 async items, a call blocks).
CREATE TABLE agent_capacity (
    user_id                 TEXT PRIMARY KEY REFERENCES users(id),
    tenant_id               TEXT NOT NULL REFERENCES tenants(id),
    voice_capacity          BIGINT NOT NULL CHECK (voice_capacity BETWEEN 0 AND 1),
    chat_capacity           BIGINT NOT NULL CHECK (chat_capacity BETWEEN 0 AND 20),
    async_capacity          BIGINT NOT NULL CHECK (async_capacity BETWEEN 0 AND 50),
    call_blocks_other_work  BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
