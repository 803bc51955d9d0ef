using System.Collections.Concurrent;
using Trc.EventStore.Projections;

namespace Trc.EventStore.Tests;

/// <summary>
/// The event store's contract, run once per backend: each backend's test class inherits this and
/// says how to make a store and how to read its table directly.
/// </summary>
public abstract class EventStoreConformanceTests : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _disposables = [];

    protected IEventStore Store { get; private set; } = null!;

    /// <summary>A new store over the same database as <see cref="Store"/> (another "process").</summary>
    protected abstract Task<IEventStore> OpenStoreAsync();

    /// <summary>Every event_id in the events table, read directly (not through the store's reader).</summary>
    protected abstract Task<List<long>> TableEventIdsAsync();

    /// <summary>Rows of a query as "a|b|c" lines, read directly, in the order the query gives.</summary>
    protected abstract Task<List<string>> QueryLinesAsync(string sql);

    /// <summary>Sets the test hook that holds each append's transaction open before commit.</summary>
    protected abstract void HoldBeforeCommit(IEventStore store, Func<CancellationToken, Task>? hold);

    public virtual async Task InitializeAsync() => Store = await TrackAsync(await OpenStoreAsync());

    public virtual async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--)
        {
            await _disposables[i].DisposeAsync();
        }
    }

    protected async Task<T> TrackAsync<T>(T disposable)
        where T : IAsyncDisposable
    {
        _disposables.Add(disposable);
        await Task.CompletedTask;
        return disposable;
    }

    /// <summary>
    /// Waits until the feed hands out <paramref name="eventId"/>: the horizon may trail a fresh
    /// commit while other transactions on the server are open (ADR 0017).
    /// </summary>
    protected async Task WaitUntilReadableAsync(long eventId)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (await Store.GetHeadAsync(default) < eventId)
        {
            Assert.True(DateTime.UtcNow < deadline, $"event {eventId} did not become readable");
            await Store.WaitForEventsAsync(eventId - 1, TimeSpan.FromMilliseconds(100), default);
        }
    }

    /// <summary>Rows of <paramref name="sql"/> as "a|b|c" lines, over any ADO.NET connection.</summary>
    public static async Task<List<string>> QueryLinesAsync(System.Data.Common.DbConnection connection, string sql)
    {
        await using (connection)
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            await using var reader = await command.ExecuteReaderAsync();
            var lines = new List<string>();
            while (await reader.ReadAsync())
            {
                lines.Add(string.Join('|', Enumerable.Range(0, reader.FieldCount).Select(i => Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture))));
            }
            return lines;
        }
    }

    protected static EventData Event(string type = "thing.happened", string payload = "{\"n\":1}", string? routingKey = null) => new(type, payload, routingKey);

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    // ---- append and read ---------------------------------------------------------------------

    [Fact]
    public async Task Appended_events_read_back_from_the_aggregate_and_the_log()
    {
        var id = Guid.NewGuid();
        var actor = Guid.NewGuid();
        var result = await Store.AppendAsync(new AppendRequest("app", id, ExpectedVersion.NoStream,
            [Event("app.created", "{\"name\":\"shop\"}"), Event("app.renamed", "{\"name\":\"store\"}", "node-1")], actor), default);

        Assert.Equal(2, result.NewVersion);
        Assert.Equal(result.FirstEventId + 1, result.LastEventId);
        Assert.False(result.WasReplay);

        var events = await Store.ReadAggregateAsync("app", id, 0, default);
        Assert.Equal([1, 2], events.Select(e => e.AggregateSeq));
        Assert.Equal(["app.created", "app.renamed"], events.Select(e => e.EventType));
        Assert.All(events, e => Assert.Equal(actor, e.ActorId));
        Assert.Equal("shop", System.Text.Json.JsonDocument.Parse(events[0].PayloadJson).RootElement.GetProperty("name").GetString());
        Assert.Null(events[0].RoutingKey);
        Assert.Equal("node-1", events[1].RoutingKey);
        Assert.True(Math.Abs((DateTimeOffset.UtcNow - events[0].OccurredAt).TotalMinutes) < 5);

        await WaitUntilReadableAsync(result.LastEventId);
        var page = await Store.ReadAllAsync(0, 100, EventFilter.All, default);
        Assert.Equal([result.FirstEventId, result.LastEventId], page.Events.Select(e => e.EventId));
        Assert.Equal(result.LastEventId, page.NextCursor);
        Assert.Equal(result.LastEventId, await Store.GetHeadAsync(default));
        Assert.Equal([2], (await Store.ReadAggregateAsync("app", id, 1, default)).Select(e => e.AggregateSeq));
    }

    [Fact]
    public async Task Appends_continue_the_aggregate_sequence_from_the_expected_version()
    {
        var id = Guid.NewGuid();
        await Store.AppendAsync(new AppendRequest("env", id, 0, [Event()]), default);
        var second = await Store.AppendAsync(new AppendRequest("env", id, 1, [Event(), Event(), Event()]), default);
        Assert.Equal(4, second.NewVersion);
        Assert.Equal([1, 2, 3, 4], (await Store.ReadAggregateAsync("env", id, 0, default)).Select(e => e.AggregateSeq));
        // Another aggregate type with the same id is a different aggregate.
        Assert.Equal(1, (await Store.AppendAsync(new AppendRequest("route", id, 0, [Event()]), default)).NewVersion);
    }

    [Fact]
    public async Task Append_at_a_stale_version_is_a_conflict_and_appends_nothing()
    {
        var id = Guid.NewGuid();
        await Store.AppendAsync(new AppendRequest("app", id, 0, [Event(), Event()]), default);
        var conflict = await Assert.ThrowsAsync<ConcurrencyConflictException>(() => Store.AppendAsync(new AppendRequest("app", id, 1, [Event()]), default));
        Assert.Equal(1, conflict.ExpectedVersion);
        Assert.Equal(2, conflict.ActualVersion);
        Assert.Equal("app", conflict.AggregateType);
        await Assert.ThrowsAsync<ConcurrencyConflictException>(() => Store.AppendAsync(new AppendRequest("app", id, 0, [Event()]), default));
        await Assert.ThrowsAsync<ConcurrencyConflictException>(() => Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 3, [Event()]), default));
        Assert.Equal(2, (await Store.ReadAggregateAsync("app", id, 0, default)).Count);
    }

    [Fact]
    public async Task Any_version_appends_without_a_check()
    {
        var id = Guid.NewGuid();
        await Store.AppendAsync(new AppendRequest("audit", id, ExpectedVersion.Any, [Event()]), default);
        var result = await Store.AppendAsync(new AppendRequest("audit", id, ExpectedVersion.Any, [Event()]), default);
        Assert.Equal(2, result.NewVersion);
    }

    [Fact]
    public async Task Of_many_concurrent_appends_at_the_same_version_exactly_one_wins()
    {
        var id = Guid.NewGuid();
        await Store.AppendAsync(new AppendRequest("deploy", id, 0, [Event()]), default);
        var attempts = Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
        {
            try
            {
                await Store.AppendAsync(new AppendRequest("deploy", id, 1, [Event("deploy.started", $"{{\"attempt\":{i}}}")]), default);
                return true;
            }
            catch (ConcurrencyConflictException)
            {
                return false;
            }
        })).ToList();
        var outcomes = await Task.WhenAll(attempts);
        Assert.Equal(1, outcomes.Count(won => won));
        Assert.Equal([1, 2], (await Store.ReadAggregateAsync("deploy", id, 0, default)).Select(e => e.AggregateSeq));
    }

    [Fact]
    public async Task A_retried_append_with_the_same_key_returns_the_first_result_and_adds_nothing()
    {
        var id = Guid.NewGuid();
        var request = new AppendRequest("secrets", id, 0, [Event(), Event(), Event()], IdempotencyKey: "req-" + Guid.NewGuid());
        var first = await Store.AppendAsync(request, default);
        await Store.AppendAsync(new AppendRequest("secrets", id, 3, [Event()]), default);
        var retry = await Store.AppendAsync(request, default);

        Assert.True(retry.WasReplay);
        Assert.Equal(first with { WasReplay = true }, retry);
        Assert.Equal(4, (await Store.ReadAggregateAsync("secrets", id, 0, default)).Count);
    }

    [Fact]
    public async Task Concurrent_appends_with_the_same_key_append_once()
    {
        // Many rounds: the races between a committing append and a retry are narrow.
        for (var round = 0; round < 25; round++)
        {
            var id = Guid.NewGuid();
            var request = new AppendRequest("release", id, 0, [Event(), Event()], IdempotencyKey: "k-" + Guid.NewGuid());
            var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Store.AppendAsync(request, default))));
            Assert.Equal(1, results.Count(r => !r.WasReplay));
            Assert.Single(results.Select(r => (r.FirstEventId, r.LastEventId, r.NewVersion)).Distinct());
            Assert.Equal(2, (await Store.ReadAggregateAsync("release", id, 0, default)).Count);
        }
    }

    [Fact]
    public async Task A_key_used_for_another_aggregate_is_refused()
    {
        var key = "k-" + Guid.NewGuid();
        await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()], IdempotencyKey: key), default);
        var other = Guid.NewGuid();
        await Assert.ThrowsAsync<IdempotencyKeyReusedException>(() => Store.AppendAsync(new AppendRequest("app", other, 0, [Event()], IdempotencyKey: key), default));
        Assert.Empty(await Store.ReadAggregateAsync("app", other, 0, default));
    }

    [Fact]
    public async Task A_batch_appends_to_several_aggregates_at_once_in_request_order()
    {
        var (org, route, host) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        await Store.AppendAsync(new AppendRequest("org", org, 0, [Event("org.created")]), default);
        var results = await Store.AppendAsync(
        [
            new AppendRequest("route", route, 0, [Event("route.created"), Event("route.bound")]),
            new AppendRequest("hostname", host, 0, [Event("hostname.claimed")]),
            new AppendRequest("org", org, 1, [Event("org.usage.changed")]),
        ], default);

        Assert.Equal([2, 1, 2], results.Select(r => r.NewVersion));
        var ids = results.SelectMany(r => new[] { r.FirstEventId, r.LastEventId }).ToList();
        Assert.True(ids.Zip(ids.Skip(1)).All(p => p.First <= p.Second), "ids follow request order");
        Assert.Equal(["route.created", "route.bound"], (await Store.ReadAggregateAsync("route", route, 0, default)).Select(e => e.EventType));
        Assert.Single(await Store.ReadAggregateAsync("hostname", host, 0, default));
        Assert.Equal(2, (await Store.ReadAggregateAsync("org", org, 0, default)).Count);
    }

    [Fact]
    public async Task A_batch_with_one_stale_version_appends_nothing_at_all()
    {
        var (org, route) = (Guid.NewGuid(), Guid.NewGuid());
        await Store.AppendAsync(new AppendRequest("org", org, 0, [Event(), Event()]), default);
        var conflict = await Assert.ThrowsAsync<ConcurrencyConflictException>(() => Store.AppendAsync(
        [
            new AppendRequest("route", route, 0, [Event("route.created")]),
            new AppendRequest("org", org, 1, [Event("org.usage.changed")]),
        ], default));
        Assert.Equal("org", conflict.AggregateType);
        Assert.Empty(await Store.ReadAggregateAsync("route", route, 0, default));
        Assert.Equal(2, (await Store.ReadAggregateAsync("org", org, 0, default)).Count);
    }

    [Fact]
    public async Task Of_concurrent_batches_sharing_an_aggregate_one_wins_and_the_losers_leave_no_trace()
    {
        var org = Guid.NewGuid();
        await Store.AppendAsync(new AppendRequest("org", org, 0, [Event()]), default);
        var own = Enumerable.Range(0, 12).Select(_ => Guid.NewGuid()).ToArray();
        var outcomes = await Task.WhenAll(own.Select(id => Task.Run(async () =>
        {
            try
            {
                await Store.AppendAsync([new AppendRequest("route", id, 0, [Event()]), new AppendRequest("org", org, 1, [Event()])], default);
                return true;
            }
            catch (ConcurrencyConflictException)
            {
                return false;
            }
        })));
        Assert.Equal(1, outcomes.Count(won => won));
        for (var i = 0; i < own.Length; i++)
        {
            Assert.Equal(outcomes[i] ? 1 : 0, (await Store.ReadAggregateAsync("route", own[i], 0, default)).Count);
        }
        Assert.Equal(2, (await Store.ReadAggregateAsync("org", org, 0, default)).Count);
    }

    [Fact]
    public async Task A_retried_batch_with_the_same_key_returns_every_first_result()
    {
        var (a, b) = (Guid.NewGuid(), Guid.NewGuid());
        var batch = new[]
        {
            new AppendRequest("app", a, 0, [Event(), Event()], IdempotencyKey: "batch-" + a),
            new AppendRequest("env", b, 0, [Event()]),
        };
        var first = await Store.AppendAsync(batch, default);
        var retry = await Store.AppendAsync(batch, default);
        Assert.Equal(first.Select(r => r with { WasReplay = true }), retry);
        Assert.Equal(2, (await Store.ReadAggregateAsync("app", a, 0, default)).Count);
        Assert.Single(await Store.ReadAggregateAsync("env", b, 0, default));
    }

    [Fact]
    public async Task A_malformed_batch_is_refused_naming_the_problem()
    {
        var id = Guid.NewGuid();
        var twice = await Assert.ThrowsAsync<ArgumentException>(() => Store.AppendAsync([new AppendRequest("app", id, 0, [Event()]), new AppendRequest("app", id, 1, [Event()])], default));
        Assert.Contains("again", twice.Message);
        var secondKey = await Assert.ThrowsAsync<ArgumentException>(() => Store.AppendAsync([new AppendRequest("app", id, 0, [Event()]), new AppendRequest("env", id, 0, [Event()], IdempotencyKey: "k")], default));
        Assert.Contains("requests[1].IdempotencyKey", secondKey.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => Store.AppendAsync(Array.Empty<AppendRequest>(), default));
        Assert.Empty(await Store.ReadAggregateAsync("app", id, 0, default));
    }

    [Fact]
    public async Task The_feed_filters_by_tenant()
    {
        var (t1, t2) = (Guid.NewGuid(), Guid.NewGuid());
        await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event("a")], TenantId: t1), default);
        await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event("b")], TenantId: t2), default);
        var last = await Store.AppendAsync(new AppendRequest("node", Guid.NewGuid(), 0, [Event("c")]), default);
        await WaitUntilReadableAsync(last.LastEventId);
        var page = await Store.ReadAllAsync(0, 100, new EventFilter(TenantId: t1), default);
        Assert.Equal(["a"], page.Events.Select(e => e.EventType));
        Assert.All(page.Events, e => Assert.Equal(t1, e.TenantId));
        Assert.Null((await Store.ReadAllAsync(0, 100, new EventFilter(["c"]), default)).Events.Single().TenantId);
    }

    public static TheoryData<string, AppendRequest> InvalidRequests() => new()
    {
        { "AggregateType", new AppendRequest("", Guid.NewGuid(), 0, [Event()]) },
        { "AggregateType", new AppendRequest(new string('a', 201), Guid.NewGuid(), 0, [Event()]) },
        { "AggregateType", new AppendRequest("a\u0000b", Guid.NewGuid(), 0, [Event()]) },
        { "ExpectedVersion", new AppendRequest("app", Guid.NewGuid(), -2, [Event()]) },
        { "Events", new AppendRequest("app", Guid.NewGuid(), 0, []) },
        { "Events", new AppendRequest("app", Guid.NewGuid(), 0, Enumerable.Repeat(Event(), 1001).ToList()) },
        { "Events[0].EventType", new AppendRequest("app", Guid.NewGuid(), 0, [Event(type: "")]) },
        { "Events[1].PayloadJson", new AppendRequest("app", Guid.NewGuid(), 0, [Event(), Event(payload: "{not json")]) },
        { "Events[0].PayloadJson", new AppendRequest("app", Guid.NewGuid(), 0, [Event(payload: "{\"a\":\"" + new string('x', 1 << 20) + "\"}")]) },
        { "Events[0].RoutingKey", new AppendRequest("app", Guid.NewGuid(), 0, [Event(routingKey: "")]) },
        { "IdempotencyKey", new AppendRequest("app", Guid.NewGuid(), 0, [Event()], IdempotencyKey: "") },
    };

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task A_malformed_append_is_refused_naming_the_field_and_appends_nothing(string field, AppendRequest request)
    {
        var head = await Store.GetHeadAsync(default);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => Store.AppendAsync(request, default));
        Assert.Contains(field, error.Message);
        Assert.Equal(head, await Store.GetHeadAsync(default));
    }

    // ---- the log as a feed ---------------------------------------------------------------------

    [Fact]
    public async Task The_log_pages_by_cursor_in_event_id_order()
    {
        long last = 0;
        for (var i = 0; i < 25; i++)
        {
            last = (await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default)).LastEventId;
        }
        await WaitUntilReadableAsync(last);
        var ids = new List<long>();
        long cursor = 0;
        while (true)
        {
            var page = await Store.ReadAllAsync(cursor, 7, EventFilter.All, default);
            if (page.Events.Count == 0)
            {
                break;
            }
            Assert.True(page.Events.Count <= 7);
            ids.AddRange(page.Events.Select(e => e.EventId));
            cursor = page.NextCursor;
        }
        Assert.Equal(await TableEventIdsAsync(), ids);
    }

    [Fact]
    public async Task Filters_by_event_type_and_routing_key_and_the_cursor_skips_what_did_not_match()
    {
        var id = Guid.NewGuid();
        var appended = await Store.AppendAsync(new AppendRequest("instance", id, 0,
        [
            Event("instance.wanted", routingKey: "node-a"),
            Event("instance.wanted", routingKey: "node-b"),
            Event("route.bound"),
            Event("instance.stopped", routingKey: "node-a"),
            Event("log.noise"),
        ]), default);
        await WaitUntilReadableAsync(appended.LastEventId);

        var forNodeA = await Store.ReadAllAsync(0, 100, new EventFilter(RoutingKey: "node-a"), default);
        Assert.Equal(["instance.wanted", "instance.stopped"], forNodeA.Events.Select(e => e.EventType));
        Assert.All(forNodeA.Events, e => Assert.Equal("node-a", e.RoutingKey));

        var typed = await Store.ReadAllAsync(0, 100, new EventFilter(["route.bound", "instance.stopped"]), default);
        Assert.Equal(["route.bound", "instance.stopped"], typed.Events.Select(e => e.EventType));

        var both = await Store.ReadAllAsync(0, 100, new EventFilter(["instance.wanted"], "node-b"), default);
        Assert.Single(both.Events);

        // Fewer matches than the limit: the cursor moves to the end of what was scanned.
        var head = await Store.GetHeadAsync(default);
        Assert.Equal(head, forNodeA.NextCursor);
        var none = await Store.ReadAllAsync(0, 100, new EventFilter(["never.happens"]), default);
        Assert.Empty(none.Events);
        Assert.Equal(head, none.NextCursor);
        Assert.Empty((await Store.ReadAllAsync(none.NextCursor, 100, EventFilter.All, default)).Events);
    }

    [Fact]
    public async Task A_waiter_wakes_when_events_are_appended_and_times_out_when_none_are()
    {
        var head = await Store.GetHeadAsync(default);
        Assert.False(await Store.WaitForEventsAsync(head, TimeSpan.FromMilliseconds(200), default));

        var waiter = Task.Run(() => Store.WaitForEventsAsync(head, Patience, default));
        await Task.Delay(100);
        Assert.False(waiter.IsCompleted);
        await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
        Assert.True(await waiter.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_waiter_in_another_store_over_the_same_database_wakes_too()
    {
        var other = await TrackAsync(await OpenStoreAsync());
        var head = await other.GetHeadAsync(default);
        var waiter = Task.Run(() => other.WaitForEventsAsync(head, Patience, default));
        await Task.Delay(100);
        await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
        Assert.True(await waiter.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>
    /// The heart of the contract: eight writers hold each append's transaction open for a random
    /// time, so transactions commit out of event_id order, while a reader tails the log. The
    /// reader must see exactly the table's events, in order, none skipped, none twice.
    /// </summary>
    [Fact]
    public async Task Readers_never_skip_or_repeat_events_when_transactions_commit_out_of_order()
    {
        const int writers = 8;
        const int appendsPerWriter = 900; // 1-2 events each: about 10,800 events
        HoldBeforeCommit(Store, async ct => await Task.Delay(Random.Shared.Next(0, 4), ct));
        var done = 0;
        var total = 0;
        var writerTasks = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            for (var i = 0; i < appendsPerWriter; i++)
            {
                var count = random.Next(1, 3);
                await Store.AppendAsync(new AppendRequest("load", Guid.NewGuid(), 0, Enumerable.Range(0, count).Select(_ => Event()).ToList()), default);
                Interlocked.Add(ref total, count);
            }
            Interlocked.Increment(ref done);
        })).ToList();

        var reader = await TrackAsync(await OpenStoreAsync());
        var seen = new List<long>();
        long cursor = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (DateTime.UtcNow < deadline)
        {
            var page = await reader.ReadAllAsync(cursor, 500, EventFilter.All, default);
            seen.AddRange(page.Events.Select(e => e.EventId));
            cursor = page.NextCursor;
            if (page.Events.Count == 0)
            {
                if (Volatile.Read(ref done) == writers && seen.Count >= Volatile.Read(ref total))
                {
                    break;
                }
                await reader.WaitForEventsAsync(cursor, TimeSpan.FromMilliseconds(50), default);
            }
        }
        await Task.WhenAll(writerTasks);
        HoldBeforeCommit(Store, null);

        Assert.True(total >= 10_000, $"only {total} events");
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.True(seen.Zip(seen.Skip(1)).All(p => p.First < p.Second), "the reader saw events out of order");
        Assert.Equal(await TableEventIdsAsync(), seen);
    }

    // ---- projections and read-your-writes --------------------------------------------------------

    [Fact]
    public async Task A_projection_applies_the_log_and_read_your_writes_waits_for_it()
    {
        var projection = new CountingProjection("ryw");
        var backend = ProjectionBackend.For(Store);
        await using var runner = new ProjectionRunner(backend, [projection], FastRunner);
        await runner.StartAsync(default);

        var id = Guid.NewGuid();
        var result = await Store.AppendAsync(new AppendRequest("app", id, 0, [Event(), Event()]), default);
        Assert.True(await new ProjectionWaiter(backend).WaitAsync(["ryw"], result.LastEventId, Patience, default));

        Assert.Equal(["app|2"], await QueryLinesAsync($"SELECT aggregate_type, version FROM {projection.VersionsTable} WHERE aggregate_id = '{id:D}'"));
    }

    [Fact]
    public async Task Read_your_writes_times_out_when_no_runner_applies_the_log()
    {
        var backend = ProjectionBackend.For(Store);
        await backend.InitializeAsync(new CountingProjection("idle"), default);
        var result = await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
        Assert.False(await new ProjectionWaiter(backend).WaitAsync(["idle"], result.LastEventId, TimeSpan.FromMilliseconds(300), default));
    }

    [Fact]
    public async Task A_projection_that_handles_some_types_still_moves_past_the_others()
    {
        var projection = new CountingProjection("routes_only", ["route.bound"]);
        var backend = ProjectionBackend.For(Store);
        await using var runner = new ProjectionRunner(backend, [projection], FastRunner);
        await runner.StartAsync(default);

        await Store.AppendAsync(new AppendRequest("route", Guid.NewGuid(), 0, [Event("route.bound")]), default);
        var unrelated = await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event("app.created")]), default);
        Assert.True(await new ProjectionWaiter(backend).WaitAsync(["routes_only"], unrelated.LastEventId, Patience, default));
        Assert.Equal(["route|1"], await QueryLinesAsync($"SELECT aggregate_type, events FROM {projection.CountsTable}"));
    }

    [Fact]
    public async Task A_failing_batch_changes_nothing_and_is_retried_until_it_succeeds()
    {
        var projection = new CountingProjection("flaky");
        var failures = 0;
        projection.FailOn = e => e.EventType == "poison" && Interlocked.Increment(ref failures) <= 3;
        var backend = ProjectionBackend.For(Store);
        await using var runner = new ProjectionRunner(backend, [projection], FastRunner);
        await runner.StartAsync(default);

        var result = await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event("fine"), Event("poison"), Event("fine")]), default);
        Assert.True(await new ProjectionWaiter(backend).WaitAsync(["flaky"], result.LastEventId, Patience, default));
        Assert.True(failures > 3);
        // Rolled-back attempts left no trace: each event counted once.
        Assert.Equal(["app|3"], await QueryLinesAsync($"SELECT aggregate_type, events FROM {projection.CountsTable}"));
    }

    [Fact]
    public async Task Of_two_batches_applied_from_the_same_checkpoint_only_one_commits()
    {
        var projection = new CountingProjection("race");
        var backend = ProjectionBackend.For(Store);
        await backend.InitializeAsync(projection, default);
        var result = await Store.AppendAsync(new AppendRequest("app", Guid.NewGuid(), 0, [Event()]), default);
        await WaitUntilReadableAsync(result.LastEventId);
        var page = await Store.ReadAllAsync(0, 10, EventFilter.All, default);
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
            backend.ApplyAsync("race", 0, page.NextCursor, async context =>
            {
                foreach (var e in page.Events)
                {
                    await projection.ApplyAsync(context, e, default);
                }
            }, default))));
        Assert.Equal(1, outcomes.Count(applied => applied));
        Assert.Equal(result.LastEventId, (await backend.GetCheckpointsAsync(["race"], default))["race"]);
        Assert.Equal(["app|1"], await QueryLinesAsync($"SELECT aggregate_type, events FROM {projection.CountsTable}"));
    }

    [Fact]
    public async Task A_projection_rebuilt_from_the_first_event_ends_identical()
    {
        var projection = new CountingProjection("rebuild");
        var backend = ProjectionBackend.For(Store);
        await using var runner = new ProjectionRunner(backend, [projection], FastRunner);
        await runner.StartAsync(default);

        // Build it live, under concurrent appends.
        var aggregates = Enumerable.Range(0, 40).Select(_ => Guid.NewGuid()).ToArray();
        var lastIds = await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            long last = 0;
            for (var i = 0; i < 150; i++)
            {
                var id = aggregates[(w * 10) + (i % 10)];
                last = (await Store.AppendAsync(new AppendRequest(i % 3 == 0 ? "env" : "app", id, ExpectedVersion.Any, [Event()]), default)).LastEventId;
            }
            return last;
        })));
        var head = lastIds.Max();
        Assert.True(await new ProjectionWaiter(backend).WaitAsync(["rebuild"], head, Patience, default));
        var before = await DumpAsync(projection);
        Assert.Equal(600, before.Where(l => l.StartsWith("count|", StringComparison.Ordinal)).Sum(l => int.Parse(l.Split('|')[2], System.Globalization.CultureInfo.InvariantCulture)));

        await runner.RebuildAsync("rebuild", default);
        Assert.True(await new ProjectionWaiter(backend).WaitAsync(["rebuild"], head, Patience, default));
        Assert.Equal(before, await DumpAsync(projection));
    }

    private async Task<List<string>> DumpAsync(CountingProjection projection)
    {
        var counts = await QueryLinesAsync($"SELECT 'count', aggregate_type, events, last_event_id FROM {projection.CountsTable} ORDER BY aggregate_type");
        var versions = await QueryLinesAsync($"SELECT 'version', aggregate_type, aggregate_id, version FROM {projection.VersionsTable} ORDER BY aggregate_type, aggregate_id");
        return [.. counts, .. versions];
    }

    protected static ProjectionRunnerOptions FastRunner { get; } = new()
    {
        IdleWait = TimeSpan.FromMilliseconds(200),
        LeaseRetryInterval = TimeSpan.FromMilliseconds(100),
    };
}
