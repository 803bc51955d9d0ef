-- The event log and projection checkpoints for the embedded store (trc dev).
-- One writer at a time (BEGIN IMMEDIATE), so ids are assigned in commit order and any reader's
-- snapshot is a prefix of the log.

CREATE TABLE events (
    event_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at     TEXT    NOT NULL,
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    aggregate_seq   INTEGER NOT NULL CHECK (aggregate_seq > 0),
    event_type      TEXT    NOT NULL,
    actor_id        TEXT,
    payload         TEXT    NOT NULL CHECK (json_valid(payload)),
    routing_key     TEXT,
    idempotency_key TEXT,
    append_size     INTEGER, -- on an append's first row: how many events it appended (for idempotent replays)
    UNIQUE (aggregate_type, aggregate_id, aggregate_seq)
);

CREATE UNIQUE INDEX events_idempotency_key ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_event_type ON events (event_type, event_id);
CREATE INDEX events_routing_key ON events (routing_key, event_id) WHERE routing_key IS NOT NULL;
CREATE INDEX events_occurred_at ON events (occurred_at);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: UPDATE on events is not allowed');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: DELETE on events is not allowed');
END;

CREATE TABLE projection_checkpoints (
    projection_name       TEXT    PRIMARY KEY,
    last_applied_event_id INTEGER NOT NULL DEFAULT 0,
    updated_at            TEXT    NOT NULL
);
