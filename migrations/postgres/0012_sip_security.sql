-- Issue #13 (safe on a public IP): a phone number (DID) belongs to one tenant only.
-- Before this, a second tenant could add a number another tenant already had: inbound
-- routing then found two owners and refused the number, so one tenant could take
-- another's number out of service ("DID squatting"). Numbers are stored normalised to
-- E.164 (the API normalises them), so a unique index on `number` makes them globally
-- unique. Numbers held by several tenants were unroutable already; the oldest holder
-- keeps such a number and the later copies are removed, so the index can be built.
DELETE FROM phone_numbers
WHERE EXISTS (
    SELECT 1 FROM phone_numbers o
    WHERE o.number = phone_numbers.number
      AND (o.created_at < phone_numbers.created_at
           OR (o.created_at = phone_numbers.created_at AND o.id < phone_numbers.id))
);
CREATE UNIQUE INDEX phone_numbers_number_unique ON phone_numbers (number);
