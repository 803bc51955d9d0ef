-- The event log (ADR 0005, 0006) and projection checkpoints.
-- Objects are created unqualified: they land in the schema first on the connection's search_path.

CREATE TABLE events (
    event_id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    aggregate_type  text        NOT NULL,
    aggregate_id    uuid        NOT NULL,
    aggregate_seq   int         NOT NULL CHECK (aggregate_seq > 0),
    event_type      text        NOT NULL,
    actor_id        uuid,
    payload         jsonb       NOT NULL,
    routing_key     text,
    idempotency_key text,
    -- The appending transaction. Readers only hand out rows whose transaction is older than every
    -- transaction still running, which is what makes the log gap-free for them (ADR 0017).
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- Also serves "latest version of an aggregate" by a backward scan; ADR 0006's separate
    -- DESC index on the same columns would only double the write cost (ADR 0017).
    CONSTRAINT events_aggregate_seq_key UNIQUE (aggregate_type, aggregate_id, aggregate_seq)
);

CREATE UNIQUE INDEX events_idempotency_key ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_event_type ON events (event_type, event_id);
CREATE INDEX events_routing_key ON events (routing_key, event_id) WHERE routing_key IS NOT NULL;
CREATE INDEX events_occurred_at ON events (occurred_at);

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

-- Appends to one aggregate. Returns one row:
--   status 0: appended (first_event_id..last_event_id, version = new version)
--   status 1: replay: the idempotency key was used before; the first append's result
--   status 2: version conflict (version = the aggregate's current version)
--   status 3: the idempotency key was used for another aggregate (other_type, other_id)
-- The caller runs it as one statement, so it commits when it returns. On any error the caller
-- releases the advisory lock (session-level locks survive an aborted transaction).
CREATE FUNCTION trc_append(
    p_aggregate_type  text,
    p_aggregate_id    uuid,
    p_expected        int,
    p_event_types     text[],
    p_payloads        jsonb[],
    p_routing_keys    text[],
    p_actor_id        uuid,
    p_idempotency_key text,
    p_lock_key        bigint)
RETURNS TABLE (status int, first_event_id bigint, last_event_id bigint, version int, other_type text, other_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
    v_current int;
    v_first   bigint;
    v_last    bigint;
    v_type    text;
    v_id      uuid;
    v_tx      xid8;
BEGIN
    -- From here until the rows exist, appends are serialised. The INSERT is this transaction's
    -- first write, so its transaction id is assigned under the lock too: among appends,
    -- transaction id order and event_id order agree. The commit (the WAL flush) happens after
    -- the lock is released, so commits still overlap.
    PERFORM pg_advisory_lock(p_lock_key);

    SELECT coalesce(max(e.aggregate_seq), 0) INTO v_current
      FROM events e WHERE e.aggregate_type = p_aggregate_type AND e.aggregate_id = p_aggregate_id;

    -- Under the lock, so that an append with the same key that committed meanwhile is seen (one
    -- still in flight makes the INSERT below wait and fail; the caller then retries). And after
    -- reading the version: each statement here takes a newer snapshot, so if a committed append
    -- with this key moved the version, this lookup sees that append too.
    IF p_idempotency_key IS NOT NULL THEN
        SELECT e.aggregate_type, e.aggregate_id, e.event_id, e.transaction_id
          INTO v_type, v_id, v_first, v_tx
          FROM events e WHERE e.idempotency_key = p_idempotency_key;
        IF FOUND THEN
            PERFORM pg_advisory_unlock(p_lock_key);
            IF v_type <> p_aggregate_type OR v_id <> p_aggregate_id THEN
                RETURN QUERY SELECT 3, 0::bigint, 0::bigint, 0, v_type, v_id;
                RETURN;
            END IF;
            RETURN QUERY
                SELECT 1, v_first, max(e.event_id), max(e.aggregate_seq), NULL::text, NULL::uuid
                  FROM events e
                 WHERE e.aggregate_type = p_aggregate_type AND e.aggregate_id = p_aggregate_id AND e.transaction_id = v_tx;
            RETURN;
        END IF;
    END IF;

    IF p_expected >= 0 AND v_current <> p_expected THEN
        PERFORM pg_advisory_unlock(p_lock_key);
        RETURN QUERY SELECT 2, 0::bigint, 0::bigint, v_current, NULL::text, NULL::uuid;
        RETURN;
    END IF;

    WITH inserted AS (
        INSERT INTO events (aggregate_type, aggregate_id, aggregate_seq, event_type, actor_id, payload, routing_key, idempotency_key)
        SELECT p_aggregate_type, p_aggregate_id, v_current + n.ord::int, n.event_type, p_actor_id, n.payload, n.routing_key,
               CASE WHEN n.ord = 1 THEN p_idempotency_key END
          FROM unnest(p_event_types, p_payloads, p_routing_keys) WITH ORDINALITY AS n(event_type, payload, routing_key, ord)
         ORDER BY n.ord
        RETURNING event_id)
    SELECT min(i.event_id), max(i.event_id) INTO v_first, v_last FROM inserted i;

    PERFORM pg_advisory_unlock(p_lock_key);
    RETURN QUERY SELECT 0, v_first, v_last, v_current + cardinality(p_event_types), NULL::text, NULL::uuid;
END
$$;
