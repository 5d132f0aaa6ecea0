-- Tenant-wide "newest first" over interactions: full-text search results and recent
-- activity walk this index backwards and stop at the page size.
CREATE INDEX interactions_tenant_created ON interactions (tenant_id, created_at, id);
