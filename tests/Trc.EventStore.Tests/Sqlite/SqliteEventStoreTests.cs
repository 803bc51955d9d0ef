using System.Globalization;
using Microsoft.Data.Sqlite;
using Trc.EventStore.Sqlite;

namespace Trc.EventStore.Tests.Sqlite;

public sealed class SqliteEventStoreTests : EventStoreConformanceTests
{
    private readonly string _dir = Directory.CreateTempSubdirectory("trc-sqlite-").FullName;

    private string DatabasePath => Path.Combine(_dir, "events.db");

    protected override async Task<IEventStore> OpenStoreAsync()
    {
        var store = new SqliteEventStore(new SqliteEventStoreOptions { Path = DatabasePath });
        await store.InitializeAsync(default);
        return store;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    protected override void HoldBeforeCommit(IEventStore store, Func<CancellationToken, Task>? hold) =>
        ((SqliteEventStore)store).BeforeCommitForTests = hold;

    protected override async Task<List<long>> TableEventIdsAsync() =>
        (await QueryLinesAsync("SELECT event_id FROM events ORDER BY event_id")).Select(l => long.Parse(l, CultureInfo.InvariantCulture)).ToList();

    protected override Task<List<string>> QueryLinesAsync(string sql) =>
        QueryLinesAsync(new SqliteConnection($"Data Source={DatabasePath}"), sql);

    [Fact]
    public async Task Events_cannot_be_updated_or_deleted()
    {
        await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
        await using var connection = new SqliteConnection($"Data Source={DatabasePath}");
        await connection.OpenAsync();
        foreach (var sql in new[] { "UPDATE events SET event_type = 'x'", "DELETE FROM events" })
        {
            await using var command = new SqliteCommand(sql, connection);
            var e = await Assert.ThrowsAsync<SqliteException>(() => command.ExecuteNonQueryAsync());
            Assert.Contains("append-only", e.Message);
        }
    }

    [Fact]
    public async Task The_store_survives_a_reopen_and_migrations_run_once()
    {
        var result = await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
        await using var reopened = new SqliteEventStore(new SqliteEventStoreOptions { Path = DatabasePath });
        await reopened.InitializeAsync(default);
        await reopened.InitializeAsync(default);
        Assert.Equal(result.LastEventId, await reopened.GetHeadAsync(default));
        Assert.Equal(["1|001_events.sql", "2|002_tenant.sql"], await QueryLinesAsync("SELECT version, name FROM schema_migrations"));
        Assert.Equal(["wal"], await QueryLinesAsync("PRAGMA journal_mode"));
    }
}
