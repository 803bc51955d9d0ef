using Npgsql;
using NpgsqlTypes;
using Trc.EventStore.Projections;

namespace Trc.EventStore.Postgres;

/// <summary>Projections on Postgres: checkpoints in a table, leases as session advisory locks.</summary>
public sealed class PostgresProjectionBackend(PostgresEventStore store) : IProjectionBackend
{
    /// <inheritdoc />
    public IEventStore Store => store;

    /// <inheritdoc />
    public AsyncSignal CheckpointsMoved => store.CheckpointsMoved;

    /// <inheritdoc />
    public async Task InitializeAsync(IProjection projection, CancellationToken cancellationToken)
    {
        await using var connection = await store.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // Serialise initialisation of one projection across processes (CREATE TABLE IF NOT EXISTS races).
        // Not the lease key: the lease may be held for hours by a running leader.
        var initKey = StableHash.Of($"trc:projection-init:{store.Schema}:{projection.Name}");
        await using (var lockCommand = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({initKey})", connection, transaction))
        {
            await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await projection.InitializeAsync(new ProjectionContext(connection, transaction, SqlDialect.Postgres), cancellationToken).ConfigureAwait(false);
        await using (var insert = new NpgsqlCommand("INSERT INTO projection_checkpoints (projection_name) VALUES ($1) ON CONFLICT DO NOTHING", connection, transaction))
        {
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = projection.Name });
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyDictionary<string, long>> GetCheckpointsAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken)
    {
        await using var command = store.DataSource.CreateCommand(
            "SELECT projection_name, last_applied_event_id FROM projection_checkpoints WHERE projection_name = ANY($1)");
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = names.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        var result = names.ToDictionary(n => n, _ => 0L, StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result[reader.GetString(0)] = reader.GetInt64(1);
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<IProjectionLease?> TryAcquireLeaseAsync(string name, CancellationToken cancellationToken)
    {
        // Unpooled: the lock lives as long as this connection, and dies with it.
        var connection = await store.DedicatedDataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = new NpgsqlCommand($"SELECT pg_try_advisory_lock({LeaseKey(name)})", connection);
            if ((bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
            {
                return new Lease(connection, LeaseKey(name));
            }
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        await connection.DisposeAsync().ConfigureAwait(false);
        return null;
    }

    /// <inheritdoc />
    public async Task<bool> ApplyAsync(string name, long expected, long next, Func<ProjectionContext, Task> apply, CancellationToken cancellationToken)
    {
        await using var connection = await store.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // A projection is derived data: if the server stops before this commit reaches disk, the
        // tables and the checkpoint go back together and the batch is applied again from the log,
        // which is durable. So the commit need not wait for the flush.
        await using (var check = new NpgsqlCommand(
            "SELECT set_config('synchronous_commit', 'off', true), last_applied_event_id FROM projection_checkpoints WHERE projection_name = $1 FOR UPDATE", connection, transaction))
        {
            check.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name });
            long? current = null;
            await using (var reader = await check.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    current = reader.GetInt64(1);
                }
            }
            if (current != expected)
            {
                await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                return false;
            }
        }
        await apply(new ProjectionContext(connection, transaction, SqlDialect.Postgres)).ConfigureAwait(false);
        await using (var update = new NpgsqlCommand(
            "UPDATE projection_checkpoints SET last_applied_event_id = $2, updated_at = now() WHERE projection_name = $1", connection, transaction))
        {
            update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name });
            update.Parameters.Add(new NpgsqlParameter<long> { TypedValue = next });
            await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        store.NotifyCheckpointsMoved();
        return true;
    }

    /// <inheritdoc />
    public async Task ResetAsync(IProjection projection, CancellationToken cancellationToken)
    {
        await using var connection = await store.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var check = new NpgsqlCommand(
            "SELECT 1 FROM projection_checkpoints WHERE projection_name = $1 FOR UPDATE", connection, transaction))
        {
            check.Parameters.Add(new NpgsqlParameter<string> { TypedValue = projection.Name });
            await check.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await projection.ResetAsync(new ProjectionContext(connection, transaction, SqlDialect.Postgres), cancellationToken).ConfigureAwait(false);
        await using (var update = new NpgsqlCommand(
            "UPDATE projection_checkpoints SET last_applied_event_id = 0, updated_at = now() WHERE projection_name = $1", connection, transaction))
        {
            update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = projection.Name });
            await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        store.NotifyCheckpointsMoved();
        store.EventsAppended.Pulse();
    }

    private long LeaseKey(string projection) => StableHash.Of($"trc:projection:{store.Schema}:{projection}");

    /// <summary>A session advisory lock on a connection held for the lease's life; a probe notices if the connection dies.</summary>
    private sealed class Lease : IProjectionLease
    {
        private readonly NpgsqlConnection _connection;
        private readonly long _key;
        private readonly CancellationTokenSource _lost = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _probe;

        public Lease(NpgsqlConnection connection, long key)
        {
            _connection = connection;
            _key = key;
            _probe = Task.Run(ProbeAsync);
        }

        public CancellationToken Lost => _lost.Token;

        private async Task ProbeAsync()
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    await Task.Delay(TimeSpan.FromSeconds(2), _stop.Token).ConfigureAwait(false);
                    await using var command = new NpgsqlCommand("SELECT 1", _connection);
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                    timeout.CancelAfter(TimeSpan.FromSeconds(10));
                    await command.ExecuteScalarAsync(timeout.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (Exception)
            {
                // The connection (and with it the advisory lock) is gone.
                await _lost.CancelAsync().ConfigureAwait(false);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await _probe.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            try
            {
                if (!_lost.IsCancellationRequested)
                {
                    await using var command = new NpgsqlCommand($"SELECT pg_advisory_unlock({_key})", _connection);
                    await command.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (NpgsqlException)
            {
                // Closing the connection releases the lock anyway.
            }
            await _connection.DisposeAsync().ConfigureAwait(false);
            _lost.Dispose();
            _stop.Dispose();
        }
    }
}
