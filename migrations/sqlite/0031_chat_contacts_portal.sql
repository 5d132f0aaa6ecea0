-- Issue #17 (live chat, continued): contacts a customer claimed, transcript requests,
-- and the customer portal's sign-in.
--
-- customer_claims: a contact a customer gave but has not proven (the web chat's
--   pre-chat email). Never an identity: identities resolve and merge customers, and an
--   unverified claim must not (anyone can type anyone's address). Kept so the
--   conversation can continue by email and so a later proof (the portal's emailed
--   link) can turn it into an identity. verified_at: when it was proven.
CREATE TABLE customer_claims (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    customer_id     TEXT NOT NULL REFERENCES customers(id),
    kind            TEXT NOT NULL,
    value           TEXT NOT NULL,
    source          TEXT NOT NULL,
    conversation_id TEXT,
    created_at      BIGINT NOT NULL,
    verified_at     BIGINT,
    UNIQUE (tenant_id, customer_id, kind, value)
);
CREATE INDEX customer_claims_value ON customer_claims (tenant_id, kind, value);

-- transcript_requests: a visitor asked for the conversation's transcript by email
-- (sent by the email channel's worker: sent_at, or failed with a reason).
CREATE TABLE transcript_requests (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    customer_id     TEXT NOT NULL REFERENCES customers(id),
    email           TEXT NOT NULL,
    requested_at    BIGINT NOT NULL,
    sent_at         BIGINT,
    failure         TEXT
);
CREATE INDEX transcript_requests_conversation ON transcript_requests (tenant_id, conversation_id);

-- portal_links: one-time sign-in links of the customer portal, by the SHA-256 of the
--   token (the token itself is only in the link sent to the address). used_at: spent.
-- portal_sessions: a signed-in customer's session, by the SHA-256 of its token.
CREATE TABLE portal_links (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    email       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX portal_links_email ON portal_links (tenant_id, email, created_at);
CREATE TABLE portal_sessions (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL REFERENCES customers(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX portal_sessions_customer ON portal_sessions (tenant_id, customer_id);
