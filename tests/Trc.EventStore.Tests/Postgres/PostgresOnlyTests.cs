using System.Net;
using System.Net.Sockets;
using Npgsql;
using Trc.EventStore.Postgres;
using Trc.EventStore.Projections;
using Trc.Testing;

namespace Trc.EventStore.Tests.Postgres;

/// <summary>What only the production backend promises: immutability by privilege and trigger, durability, failure handling, leader leases, LISTEN/NOTIFY.</summary>
public sealed class PostgresOnlyTests : IAsyncLifetime
{
    private TestSchema _schema = null!;
    private readonly List<IAsyncDisposable> _disposables = [];

    public async Task InitializeAsync() => _schema = await TestPostgres.CreateSchemaAsync();

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--)
        {
            await _disposables[i].DisposeAsync();
        }
        await _schema.DisposeAsync();
    }

    private async Task<PostgresEventStore> OpenAsync(string? connectionString = null, bool notifications = true, TimeSpan? poll = null)
    {
        var store = new PostgresEventStore(new PostgresEventStoreOptions
        {
            ConnectionString = connectionString ?? _schema.ConnectionString,
            EnableNotifications = notifications,
            PollInterval = poll ?? TimeSpan.FromMilliseconds(500),
        });
        await store.InitializeAsync(default);
        _disposables.Add(store);
        return store;
    }

    private static EventData Event(string type = "thing.happened") => new(type, "{\"n\":1}");

    private Task<List<string>> Query(string sql) => PostgresEventStoreTestsAccess.QueryLinesAsync(_schema.ConnectionString, sql);

    [Fact]
    public async Task A_trigger_rejects_update_delete_and_truncate_even_for_the_owner()
    {
        var store = await OpenAsync();
        await store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
        foreach (var sql in new[] { "UPDATE events SET event_type = 'x'", "DELETE FROM events", "TRUNCATE events" })
        {
            var e = await Assert.ThrowsAsync<PostgresException>(() => PostgresEventStoreTestsAccess.ExecuteAsync(_schema.ConnectionString, sql));
            Assert.Equal(PostgresErrorCodes.RestrictViolation, e.SqlState);
            Assert.Contains("append-only", e.MessageText);
        }
        Assert.Single(await Query("SELECT event_id FROM events"));
    }

    [Fact]
    public async Task The_application_role_of_the_runbook_can_append_and_read_but_not_change_events()
    {
        var owner = await OpenAsync();
        var role = "trc_app_" + _schema.Name;
        // The grants of docs/runbooks/event-store.md.
        await PostgresEventStoreTestsAccess.ExecuteAsync(_schema.ConnectionString, $"""
            CREATE ROLE {role} LOGIN;
            GRANT USAGE ON SCHEMA {_schema.Name} TO {role};
            GRANT SELECT, INSERT ON events TO {role};
            GRANT SELECT ON event_id_origin, schema_migrations TO {role};
            GRANT SELECT, INSERT, UPDATE ON projection_checkpoints TO {role};
            """);
        try
        {
            var appConnection = new NpgsqlConnectionStringBuilder(_schema.ConnectionString) { Username = role, Pooling = false }.ConnectionString;
            await using (var app = new PostgresEventStore(new PostgresEventStoreOptions { ConnectionString = appConnection }))
            {
                // A replica starts as the application role: migrations are already applied.
                await app.InitializeAsync(default);
                var result = await app.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
                Assert.True(await app.WaitForEventsAsync(result.LastEventId - 1, TimeSpan.FromSeconds(30), default));
                Assert.Equal(result.LastEventId, (await app.ReadAllAsync(0, 10, EventFilter.All, default)).NextCursor);
            }
            foreach (var sql in new[] { "UPDATE events SET event_type = 'x'", "DELETE FROM events", "TRUNCATE events", "UPDATE event_id_origin SET xid_offset = 0" })
            {
                var e = await Assert.ThrowsAsync<PostgresException>(() => PostgresEventStoreTestsAccess.ExecuteAsync(appConnection, sql));
                Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, e.SqlState);
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await PostgresEventStoreTestsAccess.ExecuteAsync(_schema.ConnectionString, $"DROP OWNED BY {role}; DROP ROLE {role}");
        }
    }

    [Fact]
    public async Task Migrations_run_once_even_when_many_stores_start_together()
    {
        var stores = Enumerable.Range(0, 6).Select(_ => new PostgresEventStore(new PostgresEventStoreOptions { ConnectionString = _schema.ConnectionString })).ToList();
        _disposables.AddRange(stores);
        await Task.WhenAll(stores.Select(s => s.InitializeAsync(default)));
        Assert.Equal(["1|001_events.sql", "2|002_tenant.sql"], await Query("SELECT version, name FROM schema_migrations"));
    }

    [Fact]
    public async Task A_connection_dropped_before_commit_leaves_nothing_and_the_retry_appends_once()
    {
        var direct = await OpenAsync();
        var target = new NpgsqlConnectionStringBuilder(_schema.ConnectionString);
        await using var proxy = new TcpProxy(target.Host!, target.Port);
        var proxied = await OpenAsync(new NpgsqlConnectionStringBuilder(_schema.ConnectionString) { Port = proxy.Port, Host = "127.0.0.1" }.ConnectionString);

        var id = Guid.NewGuid();
        var request = new AppendRequest("app", id, 0, [Event(), Event(), Event()], IdempotencyKey: "drop-before-" + id);
        proxied.BeforeCommitForTests = async _ =>
        {
            proxy.CutAll();
            await Task.Delay(100);
        };
        await Assert.ThrowsAnyAsync<Exception>(() => proxied.AppendAsync(request, default));

        // The server rolled the transaction back when the client vanished.
        await Task.Delay(300);
        Assert.Empty(await direct.ReadAggregateAsync("app", id, 0, default));
        var retry = await direct.AppendAsync(request, default);
        Assert.False(retry.WasReplay);
        Assert.Equal(3, (await direct.ReadAggregateAsync("app", id, 0, default)).Count);
        // And the append lock was not left behind: appends go on.
        await direct.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
    }

    [Fact]
    public async Task A_connection_dropped_after_commit_keeps_the_whole_append_and_the_retry_does_not_duplicate_it()
    {
        var direct = await OpenAsync();
        var target = new NpgsqlConnectionStringBuilder(_schema.ConnectionString);
        await using var proxy = new TcpProxy(target.Host!, target.Port);
        var proxied = await OpenAsync(new NpgsqlConnectionStringBuilder(_schema.ConnectionString) { Port = proxy.Port, Host = "127.0.0.1" }.ConnectionString);
        await proxied.GetHeadAsync(default); // a pooled connection through the proxy

        var id = Guid.NewGuid();
        var request = new AppendRequest("app", id, 0, [Event(), Event()], IdempotencyKey: "drop-after-" + id);
        proxy.DropServerReplies = true;
        var append = proxied.AppendAsync(request, default);
        // The server runs and commits the append; its reply never reaches the client.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await direct.ReadAggregateAsync("app", id, 0, default)).Count == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        proxy.CutAll();
        await Assert.ThrowsAnyAsync<Exception>(() => append);

        var stored = await direct.ReadAggregateAsync("app", id, 0, default);
        Assert.Equal([1, 2], stored.Select(e => e.AggregateSeq));
        var retry = await direct.AppendAsync(request, default);
        Assert.True(retry.WasReplay);
        Assert.Equal(stored.Select(e => e.EventId), [retry.FirstEventId, retry.LastEventId]);
        Assert.Equal(2, (await direct.ReadAggregateAsync("app", id, 0, default)).Count);
    }

    [Fact]
    public async Task Appends_that_returned_survive_an_immediate_shutdown_of_the_server()
    {
        var dir = Path.Combine(Path.GetTempPath(), "trc-crash-" + Guid.NewGuid().ToString("N")[..8]);
        var port = FreePort();
        var env = new Dictionary<string, string> { ["TRC_TEST_PG_DIR"] = dir, ["TRC_TEST_PG_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        try
        {
            var url = TestPostgres.RunScript("start", env);
            var results = new List<AppendResult>();
            await using (var store = new PostgresEventStore(new PostgresEventStoreOptions { ConnectionString = url, EnableNotifications = false }))
            {
                await store.InitializeAsync(default);
                for (var i = 0; i < 200; i++)
                {
                    results.Add(await store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [new EventData("n", $"{{\"i\":{i}}}")]), default));
                }
            }
            NpgsqlConnection.ClearAllPools();
            TestPostgres.RunScript("crash", env);
            TestPostgres.RunScript("start", env);

            await using var reopened = new PostgresEventStore(new PostgresEventStoreOptions { ConnectionString = url, EnableNotifications = false });
            await reopened.InitializeAsync(default);
            var page = await reopened.ReadAllAsync(0, 1000, EventFilter.All, default);
            Assert.Equal(results.Select(r => r.LastEventId), page.Events.Select(e => e.EventId));
            Assert.Equal(Enumerable.Range(0, 200), page.Events.Select(e => System.Text.Json.JsonDocument.Parse(e.PayloadJson).RootElement.GetProperty("i").GetInt32()));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            TestPostgres.RunScript("destroy", env);
        }
    }

    [Fact]
    public async Task A_plain_reader_without_the_horizon_would_skip_events_under_the_same_load()
    {
        // The hazard the horizon exists for, shown on this very setup: a reader that trusts
        // "event_id > cursor" misses events whose transactions commit late.
        var store = await OpenAsync();
        store.BeforeCommitForTests = async ct => await Task.Delay(Random.Shared.Next(0, 4), ct);
        var writers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 250; i++)
            {
                await store.AppendAsync(new AppendRequest("load", Guid.NewGuid(), 0, [Event()]), default);
            }
        })).ToList();
        var seen = new List<long>();
        long cursor = 0;
        while (!writers.All(w => w.IsCompleted))
        {
            var ids = await Query($"SELECT event_id FROM events WHERE event_id > {cursor} ORDER BY event_id LIMIT 500");
            foreach (var id in ids.Select(long.Parse))
            {
                seen.Add(id);
                cursor = id;
            }
            await Task.Delay(1);
        }
        await Task.WhenAll(writers);
        var all = (await Query("SELECT event_id FROM events ORDER BY event_id")).Select(long.Parse).ToList();
        var missedAndNeverSeen = all.Where(id => id <= cursor).Except(seen).Count();
        Assert.True(missedAndNeverSeen > 0, "the naive reader saw everything: the load did not make commits overtake each other");
    }

    [Fact]
    public async Task One_replica_leads_each_projection_and_no_event_is_applied_twice()
    {
        var stores = new[] { await OpenAsync(), await OpenAsync() };
        var options = new ProjectionRunnerOptions { LeaseRetryInterval = TimeSpan.FromMilliseconds(100), IdleWait = TimeSpan.FromMilliseconds(200) };
        var runners = stores.Select(s => new ProjectionRunner(ProjectionBackend.For(s), [new CountingProjection("shared")], options)).ToList();
        foreach (var runner in runners)
        {
            await runner.StartAsync(default);
        }
        var bothLed = false;
        var pair = runners.ToArray(); // fixed: the list below loses the disposed leader
        using var watch = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!watch.IsCancellationRequested)
            {
                bothLed |= pair[0].IsLeading("shared") && pair[1].IsLeading("shared");
                await Task.Delay(2);
            }
        });

        // Wait for the last id an append returned: GetHeadAsync is the reader-safe horizon and may
        // lag behind commits while other transactions are open.
        var lastIds = await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            long last = 0;
            for (var i = 0; i < 500; i++)
            {
                last = (await stores[w % 2].AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default)).LastEventId;
            }
            return last;
        })));
        var head = lastIds.Max();
        Assert.True(await new ProjectionWaiter(ProjectionBackend.For(stores[1])).WaitAsync(["shared"], head, TimeSpan.FromSeconds(30), default));
        Assert.Equal(["app|2000"], await Query("SELECT aggregate_type, events FROM shared_event_counts"));
        Assert.Single(runners, r => r.IsLeading("shared"));

        // The leader goes away; the other takes over and carries on from the checkpoint.
        var leader = runners.Single(r => r.IsLeading("shared"));
        await leader.DisposeAsync();
        runners.Remove(leader);
        var last = await stores[0].AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event(), Event()]), default);
        Assert.True(await new ProjectionWaiter(ProjectionBackend.For(stores[0])).WaitAsync(["shared"], last.LastEventId, TimeSpan.FromSeconds(30), default));
        Assert.True(runners.Single().IsLeading("shared"));
        Assert.Equal(["app|2002"], await Query("SELECT aggregate_type, events FROM shared_event_counts"));

        await watch.CancelAsync();
        await watcher;
        Assert.False(bothLed, "two runners led the same projection at once");
        foreach (var runner in runners)
        {
            await runner.DisposeAsync();
        }
    }

    [Fact]
    public async Task Notifications_wake_a_waiter_in_another_process_long_before_its_poll()
    {
        var appender = await OpenAsync();
        var waiter = await OpenAsync(poll: TimeSpan.FromSeconds(60)); // returns once LISTEN is active
        var head = await waiter.GetHeadAsync(default);
        var started = System.Diagnostics.Stopwatch.StartNew();
        var wait = Task.Run(() => waiter.WaitForEventsAsync(head, TimeSpan.FromSeconds(60), default));
        await Task.Delay(50);
        await appender.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
        Assert.True(await wait.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"woke after {started.Elapsed}");
    }

    [Fact]
    public async Task Without_notifications_waiters_still_see_new_events_by_polling()
    {
        var appender = await OpenAsync(notifications: false);
        var waiter = await OpenAsync(notifications: false, poll: TimeSpan.FromMilliseconds(100));
        var head = await waiter.GetHeadAsync(default);
        var wait = Task.Run(() => waiter.WaitForEventsAsync(head, TimeSpan.FromSeconds(30), default));
        await Task.Delay(50);
        await appender.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
        Assert.True(await wait.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task An_append_blocked_behind_a_concurrent_one_can_be_cancelled_and_appends_go_on()
    {
        var first = await OpenAsync();
        var second = await OpenAsync();
        var id = Guid.NewGuid();
        var release = new TaskCompletionSource();
        first.BeforeCommitForTests = _ => release.Task;
        var holding = first.AppendAsync(new AppendRequest("app", id, 0, [Event()]), default);
        await Task.Delay(200);

        // The same aggregate at the same version waits on the first append's uncommitted row.
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second.AppendAsync(new AppendRequest("app", id, 0, [Event()]), cancel.Token));

        release.SetResult();
        Assert.Equal(1, (await holding).NewVersion);
        first.BeforeCommitForTests = null;
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => second.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), limit.Token)));
        Assert.Equal(2, (await second.AppendAsync(new AppendRequest("app", id, 1, [Event()]), limit.Token)).NewVersion);
    }

    [Fact]
    public async Task Event_ids_keep_increasing_when_the_transaction_counter_runs_behind_the_log()
    {
        // A logical restore into a new cluster restarts transaction ids; simulated by an event
        // whose id lies far beyond this cluster's counter.
        var store = await OpenAsync();
        var farAhead = (1L << 40) * 1024;
        await PostgresEventStoreTestsAccess.ExecuteAsync(_schema.ConnectionString,
            $"INSERT INTO events (event_id, aggregate_type, aggregate_id, aggregate_seq, event_type, payload) VALUES ({farAhead}, 'restored', gen_random_uuid(), 1, 'x', '{{}}')");

        var restarted = await OpenAsync();
        var next = await restarted.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
        Assert.True(await restarted.WaitForEventsAsync(next.LastEventId - 1, TimeSpan.FromSeconds(30), default));
        Assert.True(next.FirstEventId > farAhead, $"event {next.FirstEventId} sorts before the restored event {farAhead}");
        var page = await restarted.ReadAllAsync(0, 10, EventFilter.All, default);
        Assert.Equal([farAhead, next.FirstEventId], page.Events.Select(e => e.EventId));
        Assert.True(long.Parse((await Query("SELECT xid_offset FROM event_id_origin")).Single(), System.Globalization.CultureInfo.InvariantCulture) > 0);
        _ = store;
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}

/// <summary>Static helpers shared with the conformance class.</summary>
internal static class PostgresEventStoreTestsAccess
{
    public static Task<List<string>> QueryLinesAsync(string connectionString, string sql) =>
        EventStoreConformanceTests.QueryLinesAsync(new NpgsqlConnection(connectionString), sql);

    public static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
