-- Post-call survey (CSAT) answered in the IVR, stored on the call's interaction:
-- the survey's id and the score (1..=10, checked by the store; CSAT is 1..=5).
ALTER TABLE interactions ADD COLUMN csat_survey TEXT;
ALTER TABLE interactions ADD COLUMN csat_score BIGINT;

-- Calls from callers without a usable number (anonymous, withheld) are filed on one
-- "Unknown callers" customer per tenant, created on first use.
CREATE TABLE unknown_callers (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    customer_id TEXT NOT NULL REFERENCES customers(id)
);
