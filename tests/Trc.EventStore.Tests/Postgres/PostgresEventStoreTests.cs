using System.Globalization;
using Npgsql;
using Trc.EventStore.Postgres;

namespace Trc.EventStore.Tests.Postgres;

/// <summary>The conformance suite on Postgres, each test in a schema of its own.</summary>
public class PostgresEventStoreTests : EventStoreConformanceTests
{
    protected TestSchema Schema { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Schema = await TestPostgres.CreateSchemaAsync();
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await Schema.DisposeAsync();
    }

    protected override Task<IEventStore> OpenStoreAsync() => OpenStoreAsync(Schema.ConnectionString);

    protected async Task<IEventStore> OpenStoreAsync(string connectionString, bool notifications = true, TimeSpan? poll = null)
    {
        var store = new PostgresEventStore(new PostgresEventStoreOptions
        {
            ConnectionString = connectionString,
            EnableNotifications = notifications,
            PollInterval = poll ?? TimeSpan.FromMilliseconds(500),
        });
        await store.InitializeAsync(default);
        return store;
    }

    protected override void HoldBeforeCommit(IEventStore store, Func<CancellationToken, Task>? hold) =>
        ((PostgresEventStore)store).BeforeCommitForTests = hold;

    protected override async Task<List<long>> TableEventIdsAsync() =>
        (await QueryLinesAsync("SELECT event_id FROM events ORDER BY event_id")).Select(l => long.Parse(l, CultureInfo.InvariantCulture)).ToList();

    protected override Task<List<string>> QueryLinesAsync(string sql) => PostgresEventStoreTestsAccess.QueryLinesAsync(Schema.ConnectionString, sql);
}
