using System.Data;
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Trc.EventStore.Sqlite;

/// <summary>Settings of the embedded event store.</summary>
public sealed record SqliteEventStoreOptions
{
    /// <summary>The database file (created when missing).</summary>
    public required string Path { get; init; }

    /// <summary>How often waiters re-check when no in-process signal arrives (another process may write the file).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The clock that stamps <c>occurred_at</c>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// The event store on SQLite (WAL), for one process: <c>trc dev</c> and tests. Writes take one
/// in-process lock and an immediate transaction, so event ids are assigned in commit order and
/// every reader sees a prefix of the log; wake-ups are in-process signals.
/// </summary>
public sealed class SqliteEventStore : IEventStore, ISqlDatabase
{
    private const string ResourcePrefix = "Trc.EventStore.Sqlite.Migrations.";
    private const string EventColumns = "event_id, occurred_at, aggregate_type, aggregate_id, aggregate_seq, event_type, actor_id, payload, routing_key, tenant_id";

    private readonly string _connectionString;

    /// <summary>Creates a store; call <see cref="InitializeAsync"/> before use.</summary>
    public SqliteEventStore(SqliteEventStoreOptions options)
    {
        Options = options;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = options.Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    /// <summary>The settings.</summary>
    public SqliteEventStoreOptions Options { get; }

    // Signals and the write lock belong to the database file, not the store object: two stores
    // opened on one file in one process must wake and exclude each other.
    private static readonly Dictionary<string, FileState> Files = new(StringComparer.Ordinal);

    private sealed class FileState
    {
        public AsyncSignal EventsAppended { get; } = new();

        public AsyncSignal CheckpointsMoved { get; } = new();

        public SemaphoreSlim WriteLock { get; } = new(1, 1);
    }

    private FileState File
    {
        get
        {
            var key = System.IO.Path.GetFullPath(Options.Path);
            lock (Files)
            {
                if (!Files.TryGetValue(key, out var state))
                {
                    Files[key] = state = new FileState();
                }
                return state;
            }
        }
    }

    /// <summary>Pulsed after every append to this file in this process.</summary>
    public AsyncSignal EventsAppended => File.EventsAppended;

    /// <summary>Pulsed after a projection checkpoint of this file moves in this process.</summary>
    public AsyncSignal CheckpointsMoved => File.CheckpointsMoved;

    /// <summary>Tests only: runs after the events are inserted and before the transaction commits.</summary>
    internal Func<CancellationToken, Task>? BeforeCommitForTests { get; set; }

    /// <summary>Serialises writers in this process (SQLite has one writer; waiting here beats SQLITE_BUSY).</summary>
    internal SemaphoreSlim WriteLock => File.WriteLock;

    /// <summary>Opens a connection with the store's pragmas applied.</summary>
    internal async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        // FULL: an append that returned survives a power cut, as on Postgres.
        await ExecuteAsync(connection, "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;", cancellationToken).ConfigureAwait(false);
        return connection;
    }

    /// <inheritdoc />
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await WriteLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, "PRAGMA journal_mode = WAL;", cancellationToken).ConfigureAwait(false);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(IsolationLevel.Serializable, cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)", cancellationToken, transaction).ConfigureAwait(false);
            var applied = new HashSet<long>();
            await using (var command = new SqliteCommand("SELECT version FROM schema_migrations", connection, transaction))
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    applied.Add(reader.GetInt64(0));
                }
            }
            foreach (var migration in Migration.Load(ResourcePrefix).Where(m => !applied.Contains(m.Version)))
            {
                await ExecuteAsync(connection, migration.Sql, cancellationToken, transaction).ConfigureAwait(false);
                await using var record = new SqliteCommand("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($v, $n, $t)", connection, transaction);
                record.Parameters.AddWithValue("$v", migration.Version);
                record.Parameters.AddWithValue("$n", migration.Name);
                record.Parameters.AddWithValue("$t", Now());
                await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            WriteLock.Release();
        }
    }

    /// <inheritdoc />
    public async Task<AppendResult> AppendAsync(AppendRequest request, CancellationToken cancellationToken) =>
        (await AppendAsync([request], cancellationToken).ConfigureAwait(false))[0];

    /// <inheritdoc />
    public async Task<IReadOnlyList<AppendResult>> AppendAsync(IReadOnlyList<AppendRequest> requests, CancellationToken cancellationToken)
    {
        AppendRequest.ValidateBatch(requests);
        await WriteLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        List<AppendResult> results;
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(IsolationLevel.Serializable, cancellationToken).ConfigureAwait(false);
            if (requests[0].IdempotencyKey is { } key && await ReplayAsync(connection, transaction, requests, key, cancellationToken).ConfigureAwait(false) is { } replay)
            {
                return replay;
            }
            var total = requests.Sum(r => r.Events.Count);
            results = [];
            var at = Now();
            foreach (var request in requests)
            {
                results.Add(await InsertAsync(connection, transaction, request, at, firstOfBatch: results.Count == 0 ? total : null, cancellationToken).ConfigureAwait(false));
            }
            if (BeforeCommitForTests is { } beforeCommit)
            {
                await beforeCommit(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            WriteLock.Release();
        }
        EventsAppended.Pulse();
        return results;
    }

    private static async Task<AppendResult> InsertAsync(SqliteConnection connection, SqliteTransaction transaction, AppendRequest request, string at, int? firstOfBatch, CancellationToken cancellationToken)
    {
        var aggregateId = request.AggregateId.ToString("D");
        int current;
        await using (var version = new SqliteCommand(
            "SELECT coalesce(max(aggregate_seq), 0) FROM events WHERE aggregate_type = $t AND aggregate_id = $i", connection, transaction))
        {
            version.Parameters.AddWithValue("$t", request.AggregateType);
            version.Parameters.AddWithValue("$i", aggregateId);
            current = Convert.ToInt32(await version.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
        }
        if (request.ExpectedVersion != ExpectedVersion.Any && current != request.ExpectedVersion)
        {
            throw new ConcurrencyConflictException(request.AggregateType, request.AggregateId, request.ExpectedVersion, current);
        }

        await using var insert = new SqliteCommand("""
            INSERT INTO events (occurred_at, aggregate_type, aggregate_id, aggregate_seq, event_type, actor_id, payload, routing_key, idempotency_key, append_size, tenant_id)
            VALUES ($at, $t, $i, $seq, $type, $actor, $payload, $rk, $key, $size, $tenant) RETURNING event_id
            """, connection, transaction);
        var parameters = new[] { "$at", "$t", "$i", "$seq", "$type", "$actor", "$payload", "$rk", "$key", "$size", "$tenant" }
            .Select(name => insert.Parameters.Add(name, SqliteType.Text)).ToArray();
        parameters[0].Value = at;
        parameters[1].Value = request.AggregateType;
        parameters[2].Value = aggregateId;
        parameters[3].SqliteType = SqliteType.Integer;
        parameters[9].SqliteType = SqliteType.Integer;
        parameters[5].Value = (object?)request.ActorId?.ToString("D") ?? DBNull.Value;
        parameters[10].Value = (object?)request.TenantId?.ToString("D") ?? DBNull.Value;
        long first = 0, last = 0;
        for (var n = 0; n < request.Events.Count; n++)
        {
            var e = request.Events[n];
            parameters[3].Value = current + n + 1;
            parameters[4].Value = e.EventType;
            parameters[6].Value = e.PayloadJson;
            parameters[7].Value = (object?)e.RoutingKey ?? DBNull.Value;
            // The batch's first row carries its key and its size: one writer at a time makes a
            // batch's ids contiguous, so a replay can find all of it.
            parameters[8].Value = n == 0 && firstOfBatch is not null && request.IdempotencyKey is not null ? request.IdempotencyKey : DBNull.Value;
            parameters[9].Value = n == 0 && firstOfBatch is { } size ? size : DBNull.Value;
            last = (long)(await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            if (n == 0)
            {
                first = last;
            }
        }
        return new AppendResult(first, last, current + request.Events.Count, WasReplay: false);
    }

    /// <summary>The earlier batch that used this key, or null.</summary>
    private static async Task<IReadOnlyList<AppendResult>?> ReplayAsync(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<AppendRequest> requests, string key, CancellationToken cancellationToken)
    {
        await using var command = new SqliteCommand("""
            SELECT e.aggregate_type, e.aggregate_id, min(e.event_id), max(e.event_id), max(e.aggregate_seq), max(e.idempotency_key IS NOT NULL)
              FROM events k
              JOIN events e ON e.event_id >= k.event_id AND e.event_id < k.event_id + k.append_size
             WHERE k.idempotency_key = $k
             GROUP BY e.aggregate_type, e.aggregate_id
            """, connection, transaction);
        command.Parameters.AddWithValue("$k", key);
        var found = new List<(string Type, string Id, long First, long Last, int Version, bool Keyed)>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                found.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt32(4), reader.GetInt64(5) == 1));
            }
        }
        if (found.Count == 0)
        {
            return null;
        }
        var keyed = found.Single(f => f.Keyed);
        if (keyed.Type != requests[0].AggregateType || keyed.Id != requests[0].AggregateId.ToString("D"))
        {
            throw new IdempotencyKeyReusedException(key, keyed.Type, Guid.Parse(keyed.Id));
        }
        return requests.Select(r =>
        {
            var f = found.FirstOrDefault(x => x.Type == r.AggregateType && x.Id == r.AggregateId.ToString("D"));
            return f.Type is null
                ? throw new IdempotencyKeyReusedException(key, keyed.Type, Guid.Parse(keyed.Id))
                : new AppendResult(f.First, f.Last, f.Version, WasReplay: true);
        }).ToList();
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredEvent>> ReadAggregateAsync(string aggregateType, Guid aggregateId, int afterSeq, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new SqliteCommand(
            $"SELECT {EventColumns} FROM events WHERE aggregate_type = $t AND aggregate_id = $i AND aggregate_seq > $s ORDER BY aggregate_seq", connection);
        command.Parameters.AddWithValue("$t", aggregateType);
        command.Parameters.AddWithValue("$i", aggregateId.ToString("D"));
        command.Parameters.AddWithValue("$s", afterSeq);
        return await ReadEventsAsync(command, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<EventPage> ReadAllAsync(long after, int limit, EventFilter filter, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(after);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, 10_000);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        // One read transaction: the page and the head come from the same snapshot.
        await using var transaction = connection.BeginTransaction(deferred: true);
        var sql = $"SELECT {EventColumns} FROM events WHERE event_id > $after";
        await using var command = new SqliteCommand { Connection = connection, Transaction = transaction };
        command.Parameters.AddWithValue("$after", after);
        command.Parameters.AddWithValue("$limit", limit);
        if (filter.EventTypes is { Count: > 0 } types)
        {
            var names = types.Select((t, i) => { command.Parameters.AddWithValue($"$t{i}", t); return $"$t{i}"; });
            sql += $" AND event_type IN ({string.Join(", ", names)})";
        }
        if (filter.RoutingKey is not null)
        {
            command.Parameters.AddWithValue("$rk", filter.RoutingKey);
            sql += " AND routing_key = $rk";
        }
        if (filter.TenantId is { } tenant)
        {
            command.Parameters.AddWithValue("$tenant", tenant.ToString("D"));
            sql += " AND tenant_id = $tenant";
        }
        command.CommandText = sql + " ORDER BY event_id LIMIT $limit";
        var events = await ReadEventsAsync(command, cancellationToken).ConfigureAwait(false);
        long next;
        if (events.Count == limit)
        {
            next = events[^1].EventId;
        }
        else
        {
            await using var head = new SqliteCommand("SELECT coalesce(max(event_id), 0) FROM events", connection, transaction);
            next = Math.Max(after, (long)(await head.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return new EventPage(events, next);
    }

    /// <inheritdoc />
    public async Task<long> GetHeadAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new SqliteCommand("SELECT coalesce(max(event_id), 0) FROM events", connection);
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public async Task<bool> WaitForEventsAsync(long after, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        var time = Options.TimeProvider;
        var deadline = Deadline.After(time, maxWait);
        while (true)
        {
            var wake = EventsAppended.WaitAsync(Deadline.Min(Options.PollInterval, Deadline.Remaining(time, deadline)), time, cancellationToken);
            if (await GetHeadAsync(cancellationToken).ConfigureAwait(false) > after)
            {
                return true;
            }
            if (Deadline.Remaining(time, deadline) <= TimeSpan.Zero)
            {
                return false;
            }
            await wake.ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public Projections.SqlDialect Dialect => Projections.SqlDialect.Sqlite;

    /// <inheritdoc />
    public async Task<System.Data.Common.DbConnection> OpenConnectionAsync(CancellationToken cancellationToken) =>
        await OpenAsync(cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async Task<long?> FindIdempotencyKeyAsync(string key, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new SqliteCommand("SELECT event_id + append_size - 1 FROM events WHERE idempotency_key = $k", connection);
        command.Parameters.AddWithValue("$k", key);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long id ? id : null;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }

    internal string Now() => Options.TimeProvider.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    internal static async Task ExecuteAsync(SqliteConnection connection, string sql, CancellationToken cancellationToken, SqliteTransaction? transaction = null)
    {
        await using var command = new SqliteCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<List<StoredEvent>> ReadEventsAsync(SqliteCommand command, CancellationToken cancellationToken)
    {
        var events = new List<StoredEvent>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            events.Add(new StoredEvent(
                reader.GetInt64(0),
                DateTimeOffset.Parse(reader.GetString(1), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
                reader.GetString(2),
                Guid.Parse(reader.GetString(3)),
                reader.GetInt32(4),
                reader.GetString(5),
                reader.IsDBNull(6) ? null : Guid.Parse(reader.GetString(6)),
                reader.GetString(7),
                reader.IsDBNull(8) ? null : reader.GetString(8),
                reader.IsDBNull(9) ? null : Guid.Parse(reader.GetString(9))));
        }
        return events;
    }
}
