using System.Data.Common;
using System.Globalization;
using System.Text;
using Trc.Core.Api;
using Trc.EventStore;
using Trc.EventStore.Projections;

namespace Trc.ControlPlane.Logs;

/// <summary>One line to store, tagged by the control plane from its instance's schedule.</summary>
/// <param name="EnvId">The instance's env.</param>
/// <param name="Org">Org name.</param>
/// <param name="App">App name.</param>
/// <param name="Env">Env name.</param>
/// <param name="Process">Process type.</param>
/// <param name="Instance">The instance (<see cref="Guid.Empty"/> for the control plane's own notes about the env).</param>
/// <param name="Release">The instance's release.</param>
/// <param name="Stream"><c>stdout</c>, <c>stderr</c> or <c>system</c>.</param>
/// <param name="Time">When the line was written (the agent's clock).</param>
/// <param name="Line">The line, without its newline.</param>
public sealed record LogRecord(Guid EnvId, string Org, string App, string Env, string Process, Guid Instance, int Release, string Stream, DateTimeOffset Time, string Line);

/// <summary>Which of an env's lines to read.</summary>
/// <param name="Process">Only this process type.</param>
/// <param name="Instance">Only this instance.</param>
/// <param name="Since">Only lines written at or after this time.</param>
public sealed record LogFilter(string? Process = null, Guid? Instance = null, DateTimeOffset? Since = null);

/// <summary>
/// App logs, beside the event log (they are not events): one table, <c>cp_logs</c>, on Postgres or
/// SQLite. Ids only grow and a reader sees them as a prefix: on Postgres every batch is inserted
/// and committed under one transaction-scoped advisory lock (SQLite has one writer anyway), so a
/// follower that resumes after the last id it saw never skips a line committed later with a
/// smaller id. Retention is by receive time and by a cap per env (<see cref="SweepAsync"/>).
/// What a batch may hold is <see cref="LogLimits"/>, checked by the endpoint.
/// </summary>
public sealed class LogStore(ISqlDatabase database, TimeProvider time)
{
    // A fixed key: one appender at a time per database (schema), for the id order above.
    private const long AppendLockKey = 0x7472_635F_6C6F_6773; // "trc_logs"

    /// <summary>Pulsed after lines are stored by this process.</summary>
    public AsyncSignal Appended { get; } = new();

    /// <summary>Creates the table if missing.</summary>
    public async Task InitializeAsync(CancellationToken ct)
    {
        var ddl = database.Dialect == SqlDialect.Postgres
            ? "CREATE TABLE IF NOT EXISTS cp_logs (id bigint GENERATED ALWAYS AS IDENTITY, env_id text NOT NULL, org text NOT NULL, app text NOT NULL, env text NOT NULL, process text NOT NULL, instance text NOT NULL, release integer NOT NULL, stream text NOT NULL, time_us bigint NOT NULL, received_us bigint NOT NULL, line text NOT NULL, PRIMARY KEY (env_id, id))"
            : "CREATE TABLE IF NOT EXISTS cp_logs (id INTEGER PRIMARY KEY AUTOINCREMENT, env_id text NOT NULL, org text NOT NULL, app text NOT NULL, env text NOT NULL, process text NOT NULL, instance text NOT NULL, release integer NOT NULL, stream text NOT NULL, time_us bigint NOT NULL, received_us bigint NOT NULL, line text NOT NULL, UNIQUE (env_id, id))";
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var command = Command(connection, null, ddl);
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Stores lines, in order, in one transaction.</summary>
    public async Task AppendAsync(IReadOnlyList<LogRecord> records, CancellationToken ct)
    {
        if (records.Count == 0)
        {
            return;
        }
        var received = Micros(time.GetUtcNow());
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        if (database.Dialect == SqlDialect.Postgres)
        {
            await using var lockCommand = Command(connection, transaction, $"SELECT pg_advisory_xact_lock({AppendLockKey.ToString(CultureInfo.InvariantCulture)})");
            await lockCommand.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        // Rows of at most 200 per statement keep every statement far below both databases' parameter limits.
        foreach (var chunk in records.Chunk(200))
        {
            var sql = new StringBuilder("INSERT INTO cp_logs (env_id, org, app, env, process, instance, release, stream, time_us, received_us, line) VALUES ");
            var parameters = new List<(string, object?)>();
            for (var i = 0; i < chunk.Length; i++)
            {
                var r = chunk[i];
                var n = i.ToString(CultureInfo.InvariantCulture);
                sql.Append(i == 0 ? "" : ", ").Append($"(@e{n}, @o{n}, @a{n}, @v{n}, @p{n}, @i{n}, @r{n}, @s{n}, @t{n}, @rc, @l{n})");
                parameters.AddRange([
                    ("@e" + n, r.EnvId.ToString("D")), ("@o" + n, r.Org), ("@a" + n, r.App), ("@v" + n, r.Env), ("@p" + n, r.Process),
                    ("@i" + n, r.Instance.ToString("D")), ("@r" + n, r.Release), ("@s" + n, r.Stream), ("@t" + n, Micros(r.Time)), ("@l" + n, Storable(r.Line)),
                ]);
            }
            parameters.Add(("@rc", received));
            await using var insert = Command(connection, transaction, sql.ToString(), parameters.ToArray());
            await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await transaction.CommitAsync(ct).ConfigureAwait(false);
        Appended.Pulse();
    }

    /// <summary>
    /// A page of an env's lines, oldest first. With <paramref name="after"/>: the first
    /// <paramref name="limit"/> matching lines after that id. Without it: with a
    /// <see cref="LogFilter.Since"/>, the first lines from that time on; without, the newest
    /// <paramref name="limit"/> lines (a tail). The cursor is where a reader continues from: the
    /// last line's id when a forward page is full, else the env's newest id (at least), so a
    /// filtered follower moves past the lines its filter skips instead of reading them again.
    /// </summary>
    public async Task<LogPageView> ReadAsync(Guid envId, LogFilter filter, long? after, int limit, CancellationToken ct)
    {
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        var tail = after is null && filter.Since is null;
        // The head before the lines: ids become visible as a prefix, so every matching line up to
        // it is in this page or (for a full forward page) after its last line.
        var head = await HeadAsync(connection, envId, ct).ConfigureAwait(false);
        var (where, parameters) = Where(envId, filter, after ?? 0);
        var sql = $"SELECT id, time_us, org, app, env, process, instance, release, stream, line FROM cp_logs WHERE {where} ORDER BY id {(tail ? "DESC" : "")} LIMIT {limit.ToString(CultureInfo.InvariantCulture)}";
        var lines = new List<LogEntryView>();
        await using (var command = Command(connection, null, sql, parameters))
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                lines.Add(Read(reader));
            }
        }
        if (tail)
        {
            lines.Reverse();
        }
        var last = lines.Count > 0 ? lines[^1].Id : after ?? 0;
        return new LogPageView(lines, !tail && lines.Count >= limit ? last : Math.Max(last, head));
    }

    /// <summary>The newest id of an env's lines (0: none).</summary>
    public async Task<long> HeadAsync(Guid envId, CancellationToken ct)
    {
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        return await HeadAsync(connection, envId, ct).ConfigureAwait(false);
    }

    private static async Task<long> HeadAsync(DbConnection connection, Guid envId, CancellationToken ct)
    {
        await using var command = Command(connection, null, "SELECT coalesce(max(id), 0) FROM cp_logs WHERE env_id = @e", ("@e", envId.ToString("D")));
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Deletes lines received before <paramref name="cutoff"/>, and each env's oldest lines beyond
    /// <paramref name="maxPerEnv"/>; returns how many went.
    /// </summary>
    public async Task<long> SweepAsync(DateTimeOffset cutoff, int maxPerEnv, CancellationToken ct)
    {
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        var envs = new List<string>();
        await using (var list = Command(connection, null, "SELECT id FROM cp_envs ORDER BY id"))
        await using (var reader = await list.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                envs.Add(reader.GetString(0));
            }
        }
        long deleted = 0;
        foreach (var env in envs)
        {
            await using (var old = Command(connection, null, "DELETE FROM cp_logs WHERE env_id = @e AND received_us < @c", ("@e", env), ("@c", Micros(cutoff))))
            {
                deleted += await old.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            await using var over = Command(connection, null,
                "DELETE FROM cp_logs WHERE env_id = @e AND id <= (SELECT id FROM cp_logs WHERE env_id = @e ORDER BY id DESC LIMIT 1 OFFSET @n)",
                ("@e", env), ("@n", maxPerEnv));
            deleted += await over.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        return deleted;
    }

    private static (string Where, (string, object?)[] Parameters) Where(Guid envId, LogFilter filter, long after)
    {
        var where = new StringBuilder("env_id = @e AND id > @after");
        var parameters = new List<(string, object?)> { ("@e", envId.ToString("D")), ("@after", after) };
        if (filter.Process is { } process)
        {
            where.Append(" AND process = @p");
            parameters.Add(("@p", process));
        }
        if (filter.Instance is { } instance)
        {
            where.Append(" AND instance = @i");
            parameters.Add(("@i", instance.ToString("D")));
        }
        if (filter.Since is { } since)
        {
            where.Append(" AND time_us >= @since");
            parameters.Add(("@since", Micros(since)));
        }
        return (where.ToString(), parameters.ToArray());
    }

    private static LogEntryView Read(DbDataReader r) => new(
        r.GetInt64(0),
        DateTimeOffset.UnixEpoch.AddTicks(r.GetInt64(1) * 10),
        r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), Guid.Parse(r.GetString(6)),
        Convert.ToInt32(r.GetValue(7), CultureInfo.InvariantCulture), r.GetString(8), r.GetString(9));

    /// <summary>Microseconds since the Unix epoch.</summary>
    private static long Micros(DateTimeOffset t) => (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    /// <summary>
    /// The line as both databases can store it: NUL (which PostgreSQL text cannot hold) and
    /// surrogates without their pair (which UTF-8 cannot encode) become U+FFFD.
    /// </summary>
    internal static string Storable(string line)
    {
        var clean = true;
        for (var i = 0; i < line.Length && clean; i++)
        {
            clean = line[i] != '\0' && !char.IsSurrogate(line[i]);
        }
        if (clean)
        {
            return line;
        }
        var sb = new StringBuilder(line.Length);
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (char.IsHighSurrogate(c) && i + 1 < line.Length && char.IsLowSurrogate(line[i + 1]))
            {
                sb.Append(c).Append(line[++i]);
            }
            else
            {
                sb.Append(c == '\0' || char.IsSurrogate(c) ? '\uFFFD' : c);
            }
        }
        return sb.ToString();
    }

    private static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object? Value)[] parameters) =>
        SqlCommands.Create(connection, transaction, sql, parameters);
}
