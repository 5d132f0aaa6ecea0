-- Outbound dial policy (issue 13, toll fraud): one JSON document per tenant (the
-- tenant's country, allowed and blocked destinations, caps, overrides; see
-- docs/dial-policy.md). No row: the built-in default (home country only, international
-- off, premium and satellite ranges blocked).
CREATE TABLE dial_policies (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id),
    policy     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
