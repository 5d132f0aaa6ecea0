-- Issue #13: SIP over TLS to trunks (RFC 3261 §26.2; port 5061 by default).
--   tls     1: the trunk's transport is TLS. `transport` then holds 'tcp' (TLS runs
--           over TCP): its CHECK cannot be widened in SQLite without rebuilding the
--           table, so both backends store TLS the same way and the API shows 'tls'.
--   tls_ca  PEM certificate(s) of the CA the trunk's certificate must chain to, instead
--           of the system's roots (a private carrier CA pinned per trunk); NULL: the
--           system's roots (webpki-roots).
ALTER TABLE trunks ADD COLUMN tls BIGINT NOT NULL DEFAULT 0;
ALTER TABLE trunks ADD COLUMN tls_ca TEXT;
