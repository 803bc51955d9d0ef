using System.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Trc.EventStore.Postgres;

/// <summary>Settings of the Postgres event store.</summary>
public sealed record PostgresEventStoreOptions
{
    /// <summary>
    /// The connection string. Its search path's first schema holds the store's tables (default
    /// <c>public</c>), so several stores can share one database.
    /// </summary>
    public required string ConnectionString { get; init; }

    /// <summary>How often waiters re-check when no notification arrives (LISTEN/NOTIFY is only a wake-up).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Whether to LISTEN and NOTIFY. Without it waiters still work, by polling.</summary>
    public bool EnableNotifications { get; init; } = true;

    /// <summary>
    /// Shortest time between two NOTIFYs from this process: appends in between are announced
    /// together. Waiters in this process are woken at once regardless.
    /// </summary>
    public TimeSpan NotifyInterval { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where logs go.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}

/// <summary>
/// The event store on Postgres (production). Appends go through the <c>trc_append</c> function in one
/// round trip; readers only see the prefix of the log that every older transaction has finished
/// writing (ADR 0017); LISTEN/NOTIFY wakes waiters, polling covers lost notifications.
/// </summary>
public sealed partial class PostgresEventStore : IEventStore, ISqlDatabase
{
    private const string ResourcePrefix = "Trc.EventStore.Postgres.Migrations.";
    private const string EventColumns = "event_id, occurred_at, aggregate_type, aggregate_id, aggregate_seq, event_type, actor_id, payload::text, routing_key, tenant_id";
    /// <summary>
    /// The readers' horizon: every event id below it belongs to a transaction older than every
    /// transaction still running, so nothing will ever appear below it again (ADR 0017).
    /// </summary>
    private const string HorizonSql = "((pg_snapshot_xmin(pg_current_snapshot())::text::bigint + (SELECT xid_offset FROM event_id_origin)) * 1024)";

    private const string QualifiedEventColumns = "e.event_id, e.occurred_at, e.aggregate_type, e.aggregate_id, e.aggregate_seq, e.event_type, e.actor_id, e.payload::text, e.routing_key, e.tenant_id";

    private readonly ILogger _logger;
    private readonly PostgresNotifier _notifier;

    /// <summary>Creates a store; call <see cref="InitializeAsync"/> before use.</summary>
    public PostgresEventStore(PostgresEventStoreOptions options)
    {
        Options = options;
        var builder = new NpgsqlConnectionStringBuilder(options.ConnectionString);
        if (builder.MaxAutoPrepare == 0)
        {
            builder.MaxAutoPrepare = 32;
        }
        Schema = (builder.SearchPath ?? "public").Split(',')[0].Trim().Trim('"');
        // Connections that keep session state (LISTEN, advisory-lock leases) come from their own,
        // unpooled source, so none of that state can ever reach a pooled connection; which lets
        // the pool skip the session reset it would otherwise run on every return.
        DedicatedDataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Pooling = false }.ConnectionString);
        builder.NoResetOnClose = true;
        DataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        _logger = options.LoggerFactory.CreateLogger<PostgresEventStore>();
        _notifier = new PostgresNotifier(this, options.LoggerFactory.CreateLogger<PostgresNotifier>());
    }

    /// <summary>The settings.</summary>
    public PostgresEventStoreOptions Options { get; }

    /// <summary>The schema holding the store's tables.</summary>
    public string Schema { get; }

    /// <summary>Pooled connections to the store's database (search path set to <see cref="Schema"/>).</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>Unpooled connections, for those that hold session state: the listener and leases.</summary>
    internal NpgsqlDataSource DedicatedDataSource { get; }

    /// <summary>Tags this process's notifications, so its listener can ignore them.</summary>
    internal string InstanceTag { get; } = Guid.NewGuid().ToString("N")[..12];

    /// <summary>Pulsed when events may have been appended.</summary>
    public AsyncSignal EventsAppended { get; } = new();

    /// <summary>Pulsed when a projection checkpoint may have moved.</summary>
    public AsyncSignal CheckpointsMoved { get; } = new();

    /// <summary>
    /// Added to transaction ids before they become event ids (event_id_origin.xid_offset), read at
    /// start-up. It only ever changes at start-up, when the transaction id counter is found behind
    /// the log (ADR 0017).
    /// </summary>
    internal long XidOffset { get; private set; }

    /// <summary>
    /// Tests only: runs after the events are inserted and before the transaction commits, holding it
    /// open (as a slow fsync or a synchronous standby would). When set, appends use an explicit
    /// transaction instead of one autocommitted statement.
    /// </summary>
    internal Func<CancellationToken, Task>? BeforeCommitForTests { get; set; }

    internal string EventsChannel => $"trc_ev_{(ulong)StableHash.Of("events:" + Schema):x16}";

    internal string CheckpointsChannel => $"trc_cp_{(ulong)StableHash.Of("checkpoints:" + Schema):x16}";

    /// <inheritdoc />
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        // Only when missing: CREATE SCHEMA needs rights on the database that the application role
        // does not have (docs/runbooks/event-store.md).
        await using (var exists = new NpgsqlCommand("SELECT 1 FROM pg_namespace WHERE nspname = $1", connection))
        {
            exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Schema });
            if (await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is null)
            {
                await ExecuteAsync(connection, $"CREATE SCHEMA IF NOT EXISTS {QuoteIdentifier(Schema)}", cancellationToken).ConfigureAwait(false);
            }
        }
        // One migrator at a time across every process sharing the database.
        var lockKey = StableHash.Of("trc:migrate:" + Schema);
        await ExecuteAsync(connection, $"SELECT pg_advisory_lock({lockKey})", cancellationToken).ConfigureAwait(false);
        try
        {
            // DDL only when something is missing: a replica running as the application role
            // (which may not create objects) then starts against an up-to-date schema.
            await using (var exists = new NpgsqlCommand("SELECT to_regclass('schema_migrations') IS NOT NULL", connection))
            {
                if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
                {
                    await ExecuteAsync(connection, """
                        CREATE TABLE IF NOT EXISTS schema_migrations (
                            version    int         PRIMARY KEY,
                            name       text        NOT NULL,
                            applied_at timestamptz NOT NULL DEFAULT now())
                        """, cancellationToken).ConfigureAwait(false);
                }
            }
            var applied = new HashSet<int>();
            await using (var command = new NpgsqlCommand("SELECT version FROM schema_migrations", connection))
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    applied.Add(reader.GetInt32(0));
                }
            }
            foreach (var migration in Migration.Load(ResourcePrefix).Where(m => !applied.Contains(m.Version)))
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, migration.Sql, cancellationToken, transaction).ConfigureAwait(false);
                await using (var record = new NpgsqlCommand("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", connection, transaction))
                {
                    record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = migration.Version });
                    record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = migration.Name });
                    await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                LogMigrationApplied(migration.Name, Schema);
            }
        }
        finally
        {
            await ExecuteAsync(connection, $"SELECT pg_advisory_unlock({lockKey})", CancellationToken.None).ConfigureAwait(false);
        }
        // Types created by the migration must be known to connections opened from now on.
        await connection.ReloadTypesAsync(cancellationToken).ConfigureAwait(false);
        XidOffset = await EnsureIdsAdvanceAsync(connection, lockKey, cancellationToken).ConfigureAwait(false);
        if (Options.EnableNotifications)
        {
            await _notifier.StartAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Event ids are (transaction id + offset) * 1024 + n. Transaction ids only grow, except when the
    /// log is restored logically into another cluster, whose counter starts over: then new ids
    /// would sort before old ones. Checked at every start-up, under the migration lock, before this
    /// process appends anything: if the next id would not come after the last one, the offset is
    /// raised so that it does.
    /// </summary>
    private async Task<long> EnsureIdsAdvanceAsync(NpgsqlConnection connection, long lockKey, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, $"SELECT pg_advisory_lock({lockKey})", cancellationToken).ConfigureAwait(false);
        try
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            // No row lock: the migration lock already keeps other starting processes out, and the
            // application role may only read this table.
            await using var command = new NpgsqlCommand("""
                SELECT o.xid_offset,
                       pg_current_xact_id()::text::bigint,
                       (SELECT max(event_id) FROM events)
                  FROM event_id_origin o
                """, connection, transaction);
            long offset, xid;
            long? last;
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                (offset, xid, last) = (reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2));
            }
            if (last is { } max && (xid + offset) * EventIdsPerTransaction <= max)
            {
                var raised = (max / EventIdsPerTransaction) + 1 - xid;
                await using var update = new NpgsqlCommand("UPDATE event_id_origin SET xid_offset = $1", connection, transaction);
                update.Parameters.Add(new NpgsqlParameter<long> { TypedValue = raised });
                try
                {
                    await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
                {
                    throw new InvalidOperationException(
                        $"the transaction id counter is behind the event log (a logical restore?) and the event id offset must be raised, which this role may not do: start trc once as the schema's owner (docs/runbooks/event-store.md)", e);
                }
                LogXidOffsetRaised(offset, raised, max);
                offset = raised;
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return offset;
        }
        finally
        {
            await ExecuteAsync(connection, $"SELECT pg_advisory_unlock({lockKey})", CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Ids reserved per transaction: an append may hold at most this many events.</summary>
    internal const int EventIdsPerTransaction = 1024;

    // The append statements. Each derives its events' ids from its own transaction id, so ids sort
    // in transaction id order (ADR 0017). The version check is in the WHERE clause: for a new
    // aggregate there is nothing to check (a race fails on the unique (type, id, seq) constraint);
    // otherwise row `expected` must exist (and a race fails on row expected+1).
    // $1 offset, $2 aggregate type, $3 aggregate id, $4 expected version, $5 event type(s),
    // $6 actor, $7 payload(s), $8 routing key(s), $9 idempotency key, $10 index of the first event
    // within the transaction's block of 1024 ids, $11 tenant.
    private const string AppendNewSql = """
        INSERT INTO events (event_id, aggregate_type, aggregate_id, aggregate_seq, event_type, actor_id, payload, routing_key, idempotency_key, tenant_id)
        VALUES ((pg_current_xact_id()::text::bigint + $1) * 1024 + $10, $2, $3, $4 + 1, $5, $6, $7, $8, $9, $11)
        RETURNING event_id
        """;

    private const string AppendOneSql = """
        INSERT INTO events (event_id, aggregate_type, aggregate_id, aggregate_seq, event_type, actor_id, payload, routing_key, idempotency_key, tenant_id)
        SELECT (pg_current_xact_id()::text::bigint + $1) * 1024 + $10, $2, $3, $4 + 1, $5, $6, $7, $8, $9, $11
         WHERE $4 = 0 OR EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = $2 AND e.aggregate_id = $3 AND e.aggregate_seq = $4)
        RETURNING event_id
        """;

    private const string AppendManySql = """
        INSERT INTO events (event_id, aggregate_type, aggregate_id, aggregate_seq, event_type, actor_id, payload, routing_key, idempotency_key, tenant_id)
        SELECT (pg_current_xact_id()::text::bigint + $1) * 1024 + $10 + n.ord - 1, $2, $3, $4 + n.ord::int, n.event_type, $6, n.payload, n.routing_key,
               CASE WHEN n.ord = 1 THEN $9 END, $11
          FROM unnest($5::text[], $7::jsonb[], $8::text[]) WITH ORDINALITY AS n(event_type, payload, routing_key, ord)
         WHERE $4 = 0 OR EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = $2 AND e.aggregate_id = $3 AND e.aggregate_seq = $4)
        RETURNING event_id
        """;

    /// <inheritdoc />
    public async Task<AppendResult> AppendAsync(AppendRequest request, CancellationToken cancellationToken) =>
        (await AppendAsync([request], cancellationToken).ConfigureAwait(false))[0];

    /// <inheritdoc />
    public async Task<IReadOnlyList<AppendResult>> AppendAsync(IReadOnlyList<AppendRequest> requests, CancellationToken cancellationToken)
    {
        AppendRequest.ValidateBatch(requests);
        var first = requests[0];
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        // Any: append after whatever is there; a concurrent append that wins the race only makes
        // this one try again at the new version.
        var anyVersion = requests.Any(r => r.ExpectedVersion == ExpectedVersion.Any);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var results = await InsertBatchAsync(connection, requests, cancellationToken).ConfigureAwait(false);
                var last = results.Max(r => r.LastEventId);
                NoteCommitted(last);
                EventsAppended.Pulse();
                _notifier.NotifyEvents(last);
                return results;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                switch (e.ConstraintName)
                {
                    case "events_idempotency_key":
                        // This key was used before (or by a concurrent append that just committed).
                        return await ReplayAsync(connection, requests, cancellationToken).ConfigureAwait(false)
                            ?? throw new InvalidOperationException("an append with this idempotency key conflicted but cannot be found", e);
                    case "events_aggregate_seq_key" when anyVersion && attempt < 10:
                        continue;
                    case "events_aggregate_seq_key":
                        // A concurrent append took a sequence number; but if it carried our key,
                        // this is a replay rather than a conflict.
                        if (first.IdempotencyKey is not null && await ReplayAsync(connection, requests, cancellationToken).ConfigureAwait(false) is { } replay)
                        {
                            return replay;
                        }
                        // Which aggregate moved: the one whose version is no longer what the batch expected.
                        foreach (var request in requests.Where(r => r.ExpectedVersion != ExpectedVersion.Any))
                        {
                            var actual = await ReadVersionAsync(connection, request.AggregateType, request.AggregateId, cancellationToken).ConfigureAwait(false);
                            if (actual != request.ExpectedVersion)
                            {
                                throw new ConcurrencyConflictException(request.AggregateType, request.AggregateId, request.ExpectedVersion, actual, e);
                            }
                        }
                        throw new ConcurrencyConflictException(first.AggregateType, first.AggregateId, first.ExpectedVersion, null, e);
                    case "events_pkey":
                        throw new InvalidOperationException("two appends in one transaction: each append must be its own transaction", e);
                    default:
                        throw;
                }
            }
        }
    }

    /// <summary>
    /// Inserts every request's events in one transaction (autocommit when there is one request and
    /// no test hook). Throws <see cref="ConcurrencyConflictException"/> when a version check finds
    /// the aggregate behind what the caller expected.
    /// </summary>
    private async Task<List<AppendResult>> InsertBatchAsync(NpgsqlConnection connection, IReadOnlyList<AppendRequest> requests, CancellationToken cancellationToken)
    {
        var results = new List<AppendResult>(requests.Count);
        var explicitTransaction = requests.Count > 1 || BeforeCommitForTests is not null;
        await using var transaction = explicitTransaction ? await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false) : null;
        var start = 0;
        foreach (var request in requests)
        {
            var expected = request.ExpectedVersion == ExpectedVersion.Any
                ? await ReadVersionAsync(connection, request.AggregateType, request.AggregateId, cancellationToken, transaction).ConfigureAwait(false)
                : request.ExpectedVersion;
            var ids = await InsertAsync(connection, transaction, request, expected, start, cancellationToken).ConfigureAwait(false);
            if (ids.Count == 0)
            {
                // Row `expected` does not exist: the aggregate is behind what the caller thought.
                var actual = await ReadVersionAsync(connection, request.AggregateType, request.AggregateId, cancellationToken, transaction).ConfigureAwait(false);
                throw new ConcurrencyConflictException(request.AggregateType, request.AggregateId, request.ExpectedVersion, actual);
            }
            results.Add(new AppendResult(ids[0], ids[^1], expected + ids.Count, WasReplay: false));
            start += ids.Count;
        }
        if (transaction is not null)
        {
            if (BeforeCommitForTests is { } beforeCommit)
            {
                await beforeCommit(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        return results;
    }

    private async Task<List<long>> InsertAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, AppendRequest request, int expected, int start, CancellationToken cancellationToken)
    {
        var events = request.Events;
        var one = events.Count == 1;
        // A new aggregate needs no version check (a race fails on the unique constraint): the
        // commonest append is then a plain INSERT ... VALUES.
        var sql = !one ? AppendManySql : expected == 0 ? AppendNewSql : AppendOneSql;
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<long> { TypedValue = XidOffset });
        p.Add(new NpgsqlParameter<string> { TypedValue = request.AggregateType, NpgsqlDbType = NpgsqlDbType.Text });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = request.AggregateId });
        p.Add(new NpgsqlParameter<int> { TypedValue = expected });
        if (one)
        {
            p.Add(new NpgsqlParameter<string> { TypedValue = events[0].EventType, NpgsqlDbType = NpgsqlDbType.Text });
        }
        else
        {
            p.Add(new NpgsqlParameter<string[]> { TypedValue = events.Select(e => e.EventType).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        }
        p.Add(new NpgsqlParameter { Value = (object?)request.ActorId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        if (one)
        {
            p.Add(new NpgsqlParameter<string> { TypedValue = events[0].PayloadJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
            p.Add(new NpgsqlParameter { Value = (object?)events[0].RoutingKey ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        }
        else
        {
            p.Add(new NpgsqlParameter<string[]> { TypedValue = events.Select(e => e.PayloadJson).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
            p.Add(new NpgsqlParameter<string?[]> { TypedValue = events.Select(e => e.RoutingKey).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        }
        p.Add(new NpgsqlParameter { Value = (object?)request.IdempotencyKey ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        p.Add(new NpgsqlParameter<int> { TypedValue = start });
        p.Add(new NpgsqlParameter { Value = (object?)request.TenantId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });

        var ids = new List<long>(events.Count);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                ids.Add(reader.GetInt64(0));
            }
        }
        ids.Sort();
        return ids;
    }

    /// <summary>The earlier batch that used the first request's key, or null if there is none (visible yet).</summary>
    private async Task<IReadOnlyList<AppendResult>?> ReplayAsync(NpgsqlConnection connection, IReadOnlyList<AppendRequest> requests, CancellationToken cancellationToken)
    {
        var key = requests[0].IdempotencyKey!;
        // The earlier batch's events: the keyed event's transaction, i.e. its block of 1024 ids.
        await using var command = new NpgsqlCommand("""
            SELECT e.aggregate_type, e.aggregate_id, min(e.event_id), max(e.event_id), max(e.aggregate_seq), bool_or(e.idempotency_key IS NOT NULL)
              FROM events k
              JOIN events e ON e.event_id >= k.event_id / 1024 * 1024 AND e.event_id < (k.event_id / 1024 + 1) * 1024
             WHERE k.idempotency_key = $1
             GROUP BY e.aggregate_type, e.aggregate_id
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
        var found = new List<(string Type, Guid Id, long First, long Last, int Version, bool Keyed)>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                found.Add((reader.GetString(0), reader.GetGuid(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt32(4), reader.GetBoolean(5)));
            }
        }
        if (found.Count == 0)
        {
            return null;
        }
        var keyed = found.Single(f => f.Keyed);
        if (keyed.Type != requests[0].AggregateType || keyed.Id != requests[0].AggregateId)
        {
            throw new IdempotencyKeyReusedException(key, keyed.Type, keyed.Id);
        }
        return requests.Select(r =>
        {
            var f = found.FirstOrDefault(x => x.Type == r.AggregateType && x.Id == r.AggregateId);
            return f.Type is null
                ? throw new IdempotencyKeyReusedException(key, keyed.Type, keyed.Id)
                : new AppendResult(f.First, f.Last, f.Version, WasReplay: true);
        }).ToList();
    }

    private static async Task<int> ReadVersionAsync(NpgsqlConnection connection, string aggregateType, Guid aggregateId, CancellationToken cancellationToken, NpgsqlTransaction? transaction = null)
    {
        await using var command = new NpgsqlCommand(
            "SELECT coalesce(max(aggregate_seq), 0) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = aggregateType });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = aggregateId });
        return (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredEvent>> ReadAggregateAsync(string aggregateType, Guid aggregateId, int afterSeq, CancellationToken cancellationToken)
    {
        await using var command = DataSource.CreateCommand(
            $"SELECT {EventColumns} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND aggregate_seq > $3 ORDER BY aggregate_seq");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = aggregateType });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = aggregateId });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = afterSeq });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var events = new List<StoredEvent>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            events.Add(ReadEvent(reader, 0));
        }
        return events;
    }

    /// <inheritdoc />
    public async Task<EventPage> ReadAllAsync(long after, int limit, EventFilter filter, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(after);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, 10_000);
        var conditions = "e.event_id > $1 AND e.event_id < h.bound";
        if (filter.EventTypes is { Count: > 0 })
        {
            conditions += " AND e.event_type = ANY($3)";
        }
        if (filter.RoutingKey is not null)
        {
            conditions += " AND e.routing_key = $4";
        }
        if (filter.TenantId is not null)
        {
            conditions += " AND e.tenant_id = $5";
        }
        // One statement, so the page and the head come from the same snapshot: a filtered reader
        // may then skip straight to the head without missing a commit that lands in between.
        var sql = $"""
            WITH h AS MATERIALIZED (SELECT {HorizonSql} AS bound),
                 page AS (SELECT {QualifiedEventColumns}
                            FROM events e, h WHERE {conditions} ORDER BY e.event_id LIMIT $2),
                 head AS (SELECT e.event_id FROM events e, h WHERE e.event_id < h.bound ORDER BY e.event_id DESC LIMIT 1)
            SELECT (SELECT event_id FROM head), page.* FROM (SELECT 1) AS one LEFT JOIN page ON true ORDER BY page.event_id
            """;
        await using var command = DataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = after });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = filter.EventTypes?.ToArray() ?? [], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = filter.RoutingKey ?? "", NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = filter.TenantId ?? Guid.Empty });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var events = new List<StoredEvent>();
        long head = 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            head = reader.IsDBNull(0) ? 0 : reader.GetInt64(0);
            if (!reader.IsDBNull(1))
            {
                events.Add(ReadEvent(reader, 1));
            }
        }
        var next = events.Count == limit ? events[^1].EventId : Math.Max(after, head);
        return new EventPage(events, next);
    }

    /// <inheritdoc />
    public async Task<long> GetHeadAsync(CancellationToken cancellationToken)
    {
        await using var command = DataSource.CreateCommand(
            $"SELECT event_id FROM events WHERE event_id < {HorizonSql} ORDER BY event_id DESC LIMIT 1");
        var result = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return result is long id ? id : 0;
    }

    /// <summary>The highest event id known to be committed (appended here, or announced by another process).</summary>
    internal long LatestCommitted => Volatile.Read(ref _latestCommitted);

    private long _latestCommitted;

    internal void NoteCommitted(long eventId) => PostgresNotifier.InterlockedMax(ref _latestCommitted, eventId);

    /// <inheritdoc />
    public async Task<bool> WaitForEventsAsync(long after, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        var time = Options.TimeProvider;
        var deadline = Deadline.After(time, maxWait);
        var backoff = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            // Take the signal's current wait before checking, so a pulse between the check and the wait is not lost.
            var wake = EventsAppended.WaitAsync(Deadline.Min(Options.PollInterval, Deadline.Remaining(time, deadline)), time, cancellationToken);
            if (await GetHeadAsync(cancellationToken).ConfigureAwait(false) > after)
            {
                return true;
            }
            var remaining = Deadline.Remaining(time, deadline);
            if (remaining <= TimeSpan.Zero)
            {
                return false;
            }
            if (LatestCommitted > after)
            {
                // Committed but not yet below the horizon: some older transaction (any transaction on
                // the server) is still open. It will not notify us when it ends, so look again soon.
                await Task.Delay(Deadline.Min(backoff, remaining), time, cancellationToken).ConfigureAwait(false);
                backoff = Deadline.Min(backoff * 2, TimeSpan.FromMilliseconds(50));
                continue;
            }
            await wake.ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public Projections.SqlDialect Dialect => Projections.SqlDialect.Postgres;

    /// <inheritdoc />
    public async Task<System.Data.Common.DbConnection> OpenConnectionAsync(CancellationToken cancellationToken) =>
        await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async Task<long?> FindIdempotencyKeyAsync(string key, CancellationToken cancellationToken)
    {
        // The last event of the keyed batch: the keyed event's transaction block.
        await using var command = DataSource.CreateCommand("""
            SELECT max(e.event_id) FROM events k
              JOIN events e ON e.event_id >= k.event_id / 1024 * 1024 AND e.event_id < (k.event_id / 1024 + 1) * 1024
             WHERE k.idempotency_key = $1
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long id ? id : null;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _notifier.DisposeAsync().ConfigureAwait(false);
        await DataSource.DisposeAsync().ConfigureAwait(false);
        await DedicatedDataSource.DisposeAsync().ConfigureAwait(false);
    }

    internal void NotifyCheckpointsMoved()
    {
        CheckpointsMoved.Pulse();
        _notifier.NotifyCheckpoints();
    }

    internal static StoredEvent ReadEvent(NpgsqlDataReader reader, int offset) => new(
        reader.GetInt64(offset),
        reader.GetFieldValue<DateTimeOffset>(offset + 1),
        reader.GetString(offset + 2),
        reader.GetGuid(offset + 3),
        reader.GetInt32(offset + 4),
        reader.GetString(offset + 5),
        reader.IsDBNull(offset + 6) ? null : reader.GetGuid(offset + 6),
        reader.GetString(offset + 7),
        reader.IsDBNull(offset + 8) ? null : reader.GetString(offset + 8),
        reader.IsDBNull(offset + 9) ? null : reader.GetGuid(offset + 9));

    internal static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, NpgsqlTransaction? transaction = null)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    internal static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Applied migration {Migration} to schema {Schema}")]
    private partial void LogMigrationApplied(string migration, string schema);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "The transaction id counter is behind the event log (a logical restore?): raised the event id offset from {Old} to {New} so new events sort after event {Last}")]
    private partial void LogXidOffsetRaised(long old, long @new, long last);
}
