-- Daily spend estimate of the outbound dial policy (issue 13, toll fraud): the
-- estimated cost of each tenant's outbound calls that ended on one UTC day (days since
-- 1970-01-01), in thousandths of the policy's currency, from its rate table. Running
-- calls are counted in memory by the SIP runtime; see docs/dial-policy.md.
CREATE TABLE dial_spend (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    day         BIGINT NOT NULL,
    spent_milli BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
