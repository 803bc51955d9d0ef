using Microsoft.Data.Sqlite;
using Trc.EventStore.Projections;

namespace Trc.EventStore.Sqlite;

/// <summary>Projections on SQLite: one process owns the file, so a lease is an in-process lock.</summary>
public sealed class SqliteProjectionBackend(SqliteEventStore store) : IProjectionBackend
{
    private static readonly Dictionary<string, object> Held = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public IEventStore Store => store;

    /// <inheritdoc />
    public AsyncSignal CheckpointsMoved => store.CheckpointsMoved;

    /// <inheritdoc />
    public Task InitializeAsync(IProjection projection, CancellationToken cancellationToken) =>
        InWriteTransactionAsync(async (connection, transaction) =>
        {
            await projection.InitializeAsync(new ProjectionContext(connection, transaction, SqlDialect.Sqlite), cancellationToken).ConfigureAwait(false);
            await using var insert = new SqliteCommand(
                "INSERT INTO projection_checkpoints (projection_name, last_applied_event_id, updated_at) VALUES ($n, 0, $t) ON CONFLICT DO NOTHING", connection, transaction);
            insert.Parameters.AddWithValue("$n", projection.Name);
            insert.Parameters.AddWithValue("$t", store.Now());
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyDictionary<string, long>> GetCheckpointsAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken)
    {
        var result = names.ToDictionary(n => n, _ => 0L, StringComparer.Ordinal);
        await using var connection = await store.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new SqliteCommand("SELECT projection_name, last_applied_event_id FROM projection_checkpoints", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (result.ContainsKey(reader.GetString(0)))
            {
                result[reader.GetString(0)] = reader.GetInt64(1);
            }
        }
        return result;
    }

    /// <inheritdoc />
    public Task<IProjectionLease?> TryAcquireLeaseAsync(string name, CancellationToken cancellationToken)
    {
        var key = store.Options.Path + "\n" + name;
        lock (Held)
        {
            if (!Held.TryAdd(key, new object()))
            {
                return Task.FromResult<IProjectionLease?>(null);
            }
        }
        return Task.FromResult<IProjectionLease?>(new Lease(key));
    }

    /// <inheritdoc />
    public Task<bool> ApplyAsync(string name, long expected, long next, Func<ProjectionContext, Task> apply, CancellationToken cancellationToken) =>
        InWriteTransactionAsync(async (connection, transaction) =>
        {
            await using (var check = new SqliteCommand("SELECT last_applied_event_id FROM projection_checkpoints WHERE projection_name = $n", connection, transaction))
            {
                check.Parameters.AddWithValue("$n", name);
                if (await check.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not long current || current != expected)
                {
                    return false;
                }
            }
            await apply(new ProjectionContext(connection, transaction, SqlDialect.Sqlite)).ConfigureAwait(false);
            await SetCheckpointAsync(connection, transaction, name, next, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <inheritdoc />
    public async Task ResetAsync(IProjection projection, CancellationToken cancellationToken)
    {
        await InWriteTransactionAsync(async (connection, transaction) =>
        {
            await projection.ResetAsync(new ProjectionContext(connection, transaction, SqlDialect.Sqlite), cancellationToken).ConfigureAwait(false);
            await SetCheckpointAsync(connection, transaction, projection.Name, 0, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        store.EventsAppended.Pulse();
    }

    private async Task SetCheckpointAsync(SqliteConnection connection, SqliteTransaction transaction, string name, long value, CancellationToken cancellationToken)
    {
        await using var update = new SqliteCommand(
            "UPDATE projection_checkpoints SET last_applied_event_id = $v, updated_at = $t WHERE projection_name = $n", connection, transaction);
        update.Parameters.AddWithValue("$n", name);
        update.Parameters.AddWithValue("$v", value);
        update.Parameters.AddWithValue("$t", store.Now());
        await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<bool> InWriteTransactionAsync(Func<SqliteConnection, SqliteTransaction, Task<bool>> work, CancellationToken cancellationToken)
    {
        bool committed;
        await store.WriteLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var connection = await store.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(System.Data.IsolationLevel.Serializable, cancellationToken).ConfigureAwait(false);
            committed = await work(connection, transaction).ConfigureAwait(false);
            if (committed)
            {
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            store.WriteLock.Release();
        }
        if (committed)
        {
            store.CheckpointsMoved.Pulse();
        }
        return committed;
    }

    private sealed class Lease(string key) : IProjectionLease
    {
        public CancellationToken Lost => CancellationToken.None;

        public ValueTask DisposeAsync()
        {
            lock (Held)
            {
                Held.Remove(key);
            }
            return ValueTask.CompletedTask;
        }
    }
}
