-- Email channel (issue #18): what the store keeps beyond the conversation engine.
--
-- `email_cursors`: per channel and folder, the IMAP UIDVALIDITY and the highest UID
-- ingested (a new UIDVALIDITY starts the folder over; the message ids make the
-- re-read idempotent). `email_threads`: per email conversation, the reply token Parley
-- puts in Reply-To (`reply+<token>@domain`), the customer's address replies go to, and
-- the sender + normalised subject of threading rule 5. `email_messages`: per message
-- (both directions) its Message-ID header (threading rules 1-2, bounces), addresses,
-- the full text and sanitised HTML (the timeline shows the folded text), flags, and
-- the raw .eml's content hash (stored like attachments).
CREATE TABLE email_cursors (
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    folder      TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    last_uid    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, folder)
);

CREATE TABLE email_threads (
    conversation_id  TEXT PRIMARY KEY REFERENCES conversations(id),
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    channel_id       TEXT NOT NULL REFERENCES channels(id),
    reply_token      TEXT NOT NULL UNIQUE,
    customer_address TEXT NOT NULL,
    sender           TEXT NOT NULL,
    subject          TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX email_threads_sender ON email_threads (channel_id, sender, subject);

CREATE TABLE email_messages (
    message_id        TEXT PRIMARY KEY REFERENCES messages(id),
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    channel_id        TEXT NOT NULL REFERENCES channels(id),
    conversation_id   TEXT NOT NULL REFERENCES conversations(id),
    header_message_id TEXT NOT NULL,
    direction         TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    from_addr         TEXT,
    -- JSON arrays of addresses.
    to_addrs          TEXT NOT NULL DEFAULT '[]',
    cc_addrs          TEXT NOT NULL DEFAULT '[]',
    bcc_addrs         TEXT NOT NULL DEFAULT '[]',
    subject           TEXT,
    full_text         TEXT,
    html              TEXT,
    -- auto_reply, auto_generated, bulk, list (NULL: written by a person).
    auto_kind         TEXT,
    malformed         BIGINT NOT NULL DEFAULT 0,
    raw_sha256        TEXT,
    created_at        BIGINT NOT NULL
);
CREATE INDEX email_messages_header ON email_messages (channel_id, header_message_id);
CREATE INDEX email_messages_conversation ON email_messages (conversation_id, created_at);

-- The copies an agent put on an email reply (written with the reply; read by the
-- email adapter when it sends).
CREATE TABLE email_reply_copies (
    message_id TEXT PRIMARY KEY REFERENCES messages(id),
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    cc_addrs   TEXT NOT NULL DEFAULT '[]',
    bcc_addrs  TEXT NOT NULL DEFAULT '[]'
);
