using Trc.EventStore.Projections;

namespace Trc.EventStore.Tests;

/// <summary>
/// A test read model: events per aggregate type and each aggregate's version. Applying an event
/// twice or skipping one shows in its tables.
/// </summary>
public sealed class CountingProjection(string name = "counts", IReadOnlyCollection<string>? eventTypes = null) : IProjection
{
    /// <summary>When set, applying an event for which this returns true throws.</summary>
    public Func<StoredEvent, bool>? FailOn { get; set; }

    public string Name { get; } = name;

    public IReadOnlyCollection<string>? EventTypes { get; } = eventTypes;

    public string CountsTable => Name + "_event_counts";

    public string VersionsTable => Name + "_aggregate_versions";

    public async Task InitializeAsync(ProjectionContext context, CancellationToken cancellationToken)
    {
        await context.ExecuteAsync($"CREATE TABLE IF NOT EXISTS {CountsTable} (aggregate_type text PRIMARY KEY, events bigint NOT NULL, last_event_id bigint NOT NULL)", cancellationToken);
        await context.ExecuteAsync($"CREATE TABLE IF NOT EXISTS {VersionsTable} (aggregate_type text NOT NULL, aggregate_id text NOT NULL, version int NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id))", cancellationToken);
    }

    public async Task ApplyAsync(ProjectionContext context, StoredEvent e, CancellationToken cancellationToken)
    {
        if (FailOn?.Invoke(e) == true)
        {
            throw new InvalidOperationException($"projection failure on event {e.EventId}");
        }
        await context.ExecuteAsync(
            $"INSERT INTO {CountsTable} (aggregate_type, events, last_event_id) VALUES (@t, 1, @id) " +
            $"ON CONFLICT (aggregate_type) DO UPDATE SET events = {CountsTable}.events + 1, last_event_id = excluded.last_event_id",
            cancellationToken, ("@t", e.AggregateType), ("@id", e.EventId));
        await context.ExecuteAsync(
            $"INSERT INTO {VersionsTable} (aggregate_type, aggregate_id, version) VALUES (@t, @a, @v) " +
            $"ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = excluded.version",
            cancellationToken, ("@t", e.AggregateType), ("@a", e.AggregateId.ToString("D")), ("@v", e.AggregateSeq));
    }

    public async Task ResetAsync(ProjectionContext context, CancellationToken cancellationToken)
    {
        await context.ExecuteAsync($"DELETE FROM {CountsTable}", cancellationToken);
        await context.ExecuteAsync($"DELETE FROM {VersionsTable}", cancellationToken);
    }
}
