-- The event log (ADR 0005, 0006) and projection checkpoints.
-- Objects are created unqualified: they land in the schema first on the connection's search_path.

-- An event's id is derived from its transaction's id: (xid + xid_offset) * 1024 + n, n < 1024.
-- Ids therefore sort in transaction id order, and a reader may hand out every id below
-- (snapshot xmin + xid_offset) * 1024: all those transactions have ended, and every later one has
-- a larger transaction id. That makes the log gap-free for readers without serialising appends
-- (ADR 0017). Ids are sparse; only their order means anything.
CREATE TABLE events (
    event_id        bigint      PRIMARY KEY CHECK (event_id > 0),
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    aggregate_type  text        NOT NULL,
    aggregate_id    uuid        NOT NULL,
    aggregate_seq   int         NOT NULL CHECK (aggregate_seq > 0),
    event_type      text        NOT NULL,
    actor_id        uuid,
    payload         jsonb       NOT NULL,
    routing_key     text,
    idempotency_key text,
    -- Also serves "latest version of an aggregate" by a backward scan; ADR 0006's separate
    -- DESC index on the same columns would only double the write cost (ADR 0017).
    CONSTRAINT events_aggregate_seq_key UNIQUE (aggregate_type, aggregate_id, aggregate_seq)
);

CREATE UNIQUE INDEX events_idempotency_key ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_event_type ON events (event_type, event_id);
CREATE INDEX events_routing_key ON events (routing_key, event_id) WHERE routing_key IS NOT NULL;
CREATE INDEX events_occurred_at ON events (occurred_at);

-- Added to every transaction id before it becomes an event id. It stays 0 unless the transaction
-- id counter ever runs behind the log (a logical restore into a new cluster); the store then
-- raises it at start-up so that new ids still sort after every old one.
CREATE TABLE event_id_origin (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    xid_offset bigint  NOT NULL DEFAULT 0
);
INSERT INTO event_id_origin DEFAULT VALUES;

-- Events are inserted only by PostgresEventStore.AppendAsync, whose INSERT derives each event_id
-- from its own transaction id; the ordering guarantee rests on that (ADR 0017).
-- Second guardrail after the revoked privileges (docs/runbooks/event-store.md): nobody, not even
-- the owner, changes or removes an event.
CREATE FUNCTION events_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation', HINT = 'correct state by appending a new event';
END
$$;

CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

CREATE TABLE projection_checkpoints (
    projection_name       text        PRIMARY KEY,
    last_applied_event_id bigint      NOT NULL DEFAULT 0,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
