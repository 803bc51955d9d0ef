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
public sealed partial class PostgresEventStore : IEventStore
{
    private const string ResourcePrefix = "Trc.EventStore.Postgres.Migrations.";
    private const string EventColumns = "event_id, occurred_at, aggregate_type, aggregate_id, aggregate_seq, event_type, actor_id, payload::text, routing_key";
    private const string QualifiedEventColumns = "e.event_id, e.occurred_at, e.aggregate_type, e.aggregate_id, e.aggregate_seq, e.event_type, e.actor_id, e.payload::text, e.routing_key";

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
        DataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        AppendLockKey = StableHash.Of("trc:append:" + Schema);
        _logger = options.LoggerFactory.CreateLogger<PostgresEventStore>();
        _notifier = new PostgresNotifier(this, options.LoggerFactory.CreateLogger<PostgresNotifier>());
    }

    /// <summary>The settings.</summary>
    public PostgresEventStoreOptions Options { get; }

    /// <summary>The schema holding the store's tables.</summary>
    public string Schema { get; }

    /// <summary>Pooled connections to the store's database (search path set to <see cref="Schema"/>).</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>Pulsed when events may have been appended.</summary>
    public AsyncSignal EventsAppended { get; } = new();

    /// <summary>Pulsed when a projection checkpoint may have moved.</summary>
    public AsyncSignal CheckpointsMoved { get; } = new();

    internal long AppendLockKey { get; }

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
        await ExecuteAsync(connection, $"CREATE SCHEMA IF NOT EXISTS {QuoteIdentifier(Schema)}", cancellationToken).ConfigureAwait(false);
        // One migrator at a time across every process sharing the database.
        var lockKey = StableHash.Of("trc:migrate:" + Schema);
        await ExecuteAsync(connection, $"SELECT pg_advisory_lock({lockKey})", cancellationToken).ConfigureAwait(false);
        try
        {
            await ExecuteAsync(connection, """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    int         PRIMARY KEY,
                    name       text        NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """, cancellationToken).ConfigureAwait(false);
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
        // Types created by the migration (xid8, ...) must be known to connections opened from now on.
        await connection.ReloadTypesAsync(cancellationToken).ConfigureAwait(false);
        if (Options.EnableNotifications)
        {
            await _notifier.StartAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async Task<AppendResult> AppendAsync(AppendRequest request, CancellationToken cancellationToken)
    {
        request.Validate();
        for (var attempt = 0; ; attempt++)
        {
            await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            (int Status, long First, long Last, int Version, string? OtherType, Guid? OtherId) row;
            try
            {
                if (BeforeCommitForTests is { } beforeCommit)
                {
                    await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                    row = await CallAppendAsync(connection, request, cancellationToken).ConfigureAwait(false);
                    await beforeCommit(cancellationToken).ConfigureAwait(false);
                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    row = await CallAppendAsync(connection, request, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                await ReleaseAppendLockAsync(connection).ConfigureAwait(false);
                if (request.IdempotencyKey is not null && attempt == 0)
                {
                    // A concurrent append committed first. If it carried the same key, the retry
                    // replays it; otherwise the retry reports the version conflict.
                    continue;
                }
                if (e.ConstraintName == "events_aggregate_seq_key")
                {
                    throw new ConcurrencyConflictException(request.AggregateType, request.AggregateId, request.ExpectedVersion, null, e);
                }
                throw;
            }
            catch
            {
                await ReleaseAppendLockAsync(connection).ConfigureAwait(false);
                throw;
            }

            switch (row.Status)
            {
                case 0:
                    NoteCommitted(row.Last);
                    EventsAppended.Pulse();
                    _notifier.NotifyEvents(row.Last);
                    return new AppendResult(row.First, row.Last, row.Version, WasReplay: false);
                case 1:
                    return new AppendResult(row.First, row.Last, row.Version, WasReplay: true);
                case 2:
                    throw new ConcurrencyConflictException(request.AggregateType, request.AggregateId, request.ExpectedVersion, row.Version);
                case 3:
                    throw new IdempotencyKeyReusedException(request.IdempotencyKey!, row.OtherType!, row.OtherId!.Value);
                default:
                    throw new InvalidOperationException($"trc_append returned unknown status {row.Status}");
            }
        }
    }

    private async Task<(int, long, long, int, string?, Guid?)> CallAppendAsync(NpgsqlConnection connection, AppendRequest request, CancellationToken cancellationToken)
    {
        var count = request.Events.Count;
        var types = new string[count];
        var payloads = new string[count];
        var routingKeys = new string?[count];
        for (var i = 0; i < count; i++)
        {
            types[i] = request.Events[i].EventType;
            payloads[i] = request.Events[i].PayloadJson;
            routingKeys[i] = request.Events[i].RoutingKey;
        }
        await using var command = new NpgsqlCommand("SELECT status, first_event_id, last_event_id, version, other_type, other_id FROM trc_append($1, $2, $3, $4, $5, $6, $7, $8, $9)", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.AggregateType, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = request.AggregateId });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = request.ExpectedVersion });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = types, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        command.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = routingKeys, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)request.ActorId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)request.IdempotencyKey ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = AppendLockKey });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidOperationException("trc_append returned no row");
        }
        return (
            reader.GetInt32(0),
            reader.GetInt64(1),
            reader.GetInt64(2),
            reader.GetInt32(3),
            reader.IsDBNull(4) ? null : reader.GetString(4),
            reader.IsDBNull(5) ? null : reader.GetGuid(5));
    }

    /// <summary>
    /// After a failed append the session-level append lock may still be held: release it before the
    /// connection goes back to the pool. If that fails the connection is unusable, and discarding it
    /// releases the lock on the server.
    /// </summary>
    private async Task ReleaseAppendLockAsync(NpgsqlConnection connection)
    {
        try
        {
            if (connection.State == ConnectionState.Open)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await ExecuteAsync(connection, $"SELECT pg_advisory_unlock({AppendLockKey})", timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or InvalidOperationException)
        {
            LogAppendLockReleaseFailed(e);
            NpgsqlConnection.ClearPool(connection);
        }
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
        var conditions = "e.event_id > $1 AND e.transaction_id < h.xmin";
        if (filter.EventTypes is { Count: > 0 })
        {
            conditions += " AND e.event_type = ANY($3)";
        }
        if (filter.RoutingKey is not null)
        {
            conditions += " AND e.routing_key = $4";
        }
        // One statement, so the page and the head come from the same snapshot: a filtered reader
        // may then skip straight to the head without missing a commit that lands in between.
        var sql = $"""
            WITH h AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
                 page AS (SELECT {QualifiedEventColumns}
                            FROM events e, h WHERE {conditions} ORDER BY e.event_id LIMIT $2),
                 head AS (SELECT e.event_id FROM events e, h WHERE e.transaction_id < h.xmin ORDER BY e.event_id DESC LIMIT 1)
            SELECT (SELECT event_id FROM head), page.* FROM (SELECT 1) AS one LEFT JOIN page ON true ORDER BY page.event_id
            """;
        await using var command = DataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = after });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = filter.EventTypes?.ToArray() ?? [], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = filter.RoutingKey ?? "", NpgsqlDbType = NpgsqlDbType.Text });
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
            "SELECT event_id FROM events WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY event_id DESC LIMIT 1");
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
        var deadline = time.GetTimestamp() + (long)(maxWait.TotalSeconds * time.TimestampFrequency);
        var backoff = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            // Take the signal's current wait before checking, so a pulse between the check and the wait is not lost.
            var wake = EventsAppended.WaitAsync(Min(Options.PollInterval, Remaining(time, deadline)), time, cancellationToken);
            if (await GetHeadAsync(cancellationToken).ConfigureAwait(false) > after)
            {
                return true;
            }
            var remaining = Remaining(time, deadline);
            if (remaining <= TimeSpan.Zero)
            {
                return false;
            }
            if (LatestCommitted > after)
            {
                // Committed but not yet below the horizon: some older transaction (any transaction on
                // the server) is still open. It will not notify us when it ends, so look again soon.
                await Task.Delay(Min(backoff, remaining), time, cancellationToken).ConfigureAwait(false);
                backoff = Min(backoff * 2, TimeSpan.FromMilliseconds(50));
                continue;
            }
            await wake.ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _notifier.DisposeAsync().ConfigureAwait(false);
        await DataSource.DisposeAsync().ConfigureAwait(false);
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
        reader.IsDBNull(offset + 8) ? null : reader.GetString(offset + 8));

    internal static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, NpgsqlTransaction? transaction = null)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    internal static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    internal static TimeSpan Remaining(TimeProvider time, long deadline) =>
        TimeSpan.FromSeconds(Math.Max(0, deadline - time.GetTimestamp()) / (double)time.TimestampFrequency);

    internal static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Applied migration {Migration} to schema {Schema}")]
    private partial void LogMigrationApplied(string migration, string schema);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Could not release the append lock after a failed append; the connection is discarded")]
    private partial void LogAppendLockReleaseFailed(Exception exception);
}
