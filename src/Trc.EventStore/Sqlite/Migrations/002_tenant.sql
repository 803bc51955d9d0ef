-- Which tenant (org) an event belongs to; null for platform events.
ALTER TABLE events ADD COLUMN tenant_id TEXT;
CREATE INDEX events_tenant ON events (tenant_id, event_id) WHERE tenant_id IS NOT NULL;
