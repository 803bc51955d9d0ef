-- Which tenant (org) an event belongs to, so that a tenant's feed is an index range rather than a
-- scan of payloads. Null for platform events.
ALTER TABLE events ADD COLUMN tenant_id uuid;
CREATE INDEX events_tenant ON events (tenant_id, event_id) WHERE tenant_id IS NOT NULL;
