-- Messaging channels (issue #19): a channel's secrets (sealed with the data
-- directory's key ring; JSON {"fields": [...], "sealed": "<base64>"}) and whether it
-- is disabled (a removed channel that has conversations).
ALTER TABLE channels ADD COLUMN secrets TEXT;
ALTER TABLE channels ADD COLUMN disabled_at BIGINT;

-- Provider receipts that came before Parley recorded the provider's id of the
-- message they name (the webhook raced the API's answer): applied when it is.
CREATE TABLE channel_pending_statuses (
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    channel_id          TEXT NOT NULL,
    provider_message_id TEXT NOT NULL,
    status              TEXT NOT NULL,
    reason              TEXT,
    at                  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, provider_message_id, status)
);

-- The approved template a reply is sent as (WhatsApp outside the 24-hour window).
CREATE TABLE message_templates (
    message_id TEXT PRIMARY KEY REFERENCES messages(id),
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    template   TEXT NOT NULL
);

-- SMS consent: a number that texted STOP to a channel (START removes it); replies
-- to it are not sent.
CREATE TABLE sms_opt_outs (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    channel_id TEXT NOT NULL,
    number     TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (channel_id, number)
);
