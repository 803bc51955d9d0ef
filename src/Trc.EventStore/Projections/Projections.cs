using System.Data.Common;

namespace Trc.EventStore.Projections;

/// <summary>The SQL dialect a projection writes in.</summary>
public enum SqlDialect
{
    /// <summary>PostgreSQL.</summary>
    Postgres,

    /// <summary>SQLite.</summary>
    Sqlite,
}

/// <summary>
/// The transaction a projection works in. Everything a projection writes through it commits
/// together with its checkpoint, or not at all.
/// </summary>
public sealed class ProjectionContext(DbConnection connection, DbTransaction transaction, SqlDialect dialect)
{
    /// <summary>The open connection.</summary>
    public DbConnection Connection { get; } = connection;

    /// <summary>The transaction shared with the checkpoint update.</summary>
    public DbTransaction Transaction { get; } = transaction;

    /// <summary>Which database this is.</summary>
    public SqlDialect Dialect { get; } = dialect;

    /// <summary>A command in the transaction, with <c>@name</c> parameters (both dialects accept them).</summary>
    public DbCommand Command(string sql, params (string Name, object? Value)[] parameters) =>
        SqlCommands.Create(Connection, Transaction, sql, parameters);

    /// <summary>Runs a statement.</summary>
    public async Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>
/// A read model: tables kept up to date from the log. It must be deterministic: applying the same
/// events from an empty state always gives the same tables (that is what makes a rebuild safe).
/// </summary>
public interface IProjection
{
    /// <summary>A stable name; it keys the checkpoint and the leader lease.</summary>
    string Name { get; }

    /// <summary>The event types it handles; null for all. Other events only move its checkpoint.</summary>
    IReadOnlyCollection<string>? EventTypes { get; }

    /// <summary>Creates its tables if missing.</summary>
    Task InitializeAsync(ProjectionContext context, CancellationToken cancellationToken);

    /// <summary>Applies one event.</summary>
    Task ApplyAsync(ProjectionContext context, StoredEvent e, CancellationToken cancellationToken);

    /// <summary>Empties its tables, before a rebuild from the first event.</summary>
    Task ResetAsync(ProjectionContext context, CancellationToken cancellationToken);
}

/// <summary>A held leadership of one projection; <see cref="Lost"/> fires if it ends unexpectedly.</summary>
public interface IProjectionLease : IAsyncDisposable
{
    /// <summary>Cancelled when the lease can no longer be trusted (its connection died).</summary>
    CancellationToken Lost { get; }
}

/// <summary>What a store backend provides to run projections: checkpoints, leases and transactions.</summary>
public interface IProjectionBackend
{
    /// <summary>The store whose log is projected.</summary>
    IEventStore Store { get; }

    /// <summary>Pulsed when any checkpoint may have moved.</summary>
    AsyncSignal CheckpointsMoved { get; }

    /// <summary>Creates the projection's tables and checkpoint row if missing.</summary>
    Task InitializeAsync(IProjection projection, CancellationToken cancellationToken);

    /// <summary>The checkpoints of the named projections (0 for unknown ones).</summary>
    Task<IReadOnlyDictionary<string, long>> GetCheckpointsAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken);

    /// <summary>Tries to become the one runner of a projection; null when another holds it.</summary>
    Task<IProjectionLease?> TryAcquireLeaseAsync(string name, CancellationToken cancellationToken);

    /// <summary>
    /// In one transaction: checks the checkpoint is still <paramref name="expected"/> (locking it),
    /// runs <paramref name="apply"/>, and moves the checkpoint to <paramref name="next"/>. Returns
    /// false, changing nothing, when the checkpoint had moved.
    /// </summary>
    Task<bool> ApplyAsync(string name, long expected, long next, Func<ProjectionContext, Task> apply, CancellationToken cancellationToken);

    /// <summary>In one transaction: empties the projection's tables and sets its checkpoint to 0.</summary>
    Task ResetAsync(IProjection projection, CancellationToken cancellationToken);
}

/// <summary>Finds the projection backend of a store.</summary>
public static class ProjectionBackend
{
    /// <summary>The backend for <paramref name="store"/>.</summary>
    public static IProjectionBackend For(IEventStore store) => store switch
    {
        Postgres.PostgresEventStore pg => new Postgres.PostgresProjectionBackend(pg),
        Sqlite.SqliteEventStore sqlite => new Sqlite.SqliteProjectionBackend(sqlite),
        _ => throw new ArgumentException($"no projection backend for {store.GetType().Name}", nameof(store)),
    };
}
