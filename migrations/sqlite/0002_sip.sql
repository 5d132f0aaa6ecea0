-- SIP signaling (issue #3): extensions and digest credentials, trunks, phone numbers.
-- Same conventions as 0001. SIP passwords are never stored: only HA1 digests
-- (H(username:realm:password)) for MD5 and SHA-256, with the realm they were made for.

-- The tenant's SIP domain (digest realm and the host part of its SIP URIs);
-- NULL means "the tenant name".
ALTER TABLE tenants ADD COLUMN sip_domain TEXT;
CREATE UNIQUE INDEX tenants_sip_domain ON tenants (sip_domain);

ALTER TABLE users ADD COLUMN extension TEXT;
ALTER TABLE users ADD COLUMN sip_realm TEXT;
ALTER TABLE users ADD COLUMN sip_ha1_md5 TEXT;
ALTER TABLE users ADD COLUMN sip_ha1_sha256 TEXT;
CREATE UNIQUE INDEX users_extension ON users (tenant_id, extension);

CREATE TABLE trunks (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    name                  TEXT NOT NULL,
    -- JSON array of IP addresses accepted as inbound sources without digest auth.
    inbound_addresses     TEXT NOT NULL DEFAULT '[]',
    inbound_username      TEXT,
    inbound_realm         TEXT,
    inbound_ha1_md5       TEXT,
    inbound_ha1_sha256    TEXT,
    outbound_target       TEXT,
    transport             TEXT NOT NULL CHECK (transport IN ('udp', 'tcp')),
    caller_id             TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE phone_numbers (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    trunk_id    TEXT NOT NULL REFERENCES trunks(id),
    number      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, number)
);
CREATE INDEX phone_numbers_number ON phone_numbers (number);
CREATE INDEX phone_numbers_trunk ON phone_numbers (trunk_id);
