using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using Trc.EventStore;
using Trc.EventStore.Postgres;
using Trc.EventStore.Projections;
using Trc.EventStore.Sqlite;

namespace Trc.Bench;

/// <summary>
/// bench/run eventstore: trc's appends against a raw prepared INSERT loop on the same table, in the
/// same run; projection lag and read-your-writes under a steady load; a tailing reader that checks
/// nothing was skipped or repeated; SQLite appends.
/// </summary>
public static class EventStoreBench
{
    private const string Payload = """{"app":"shop","env":"prod","process":"web","release":"3f2a9c1e-7b7d-4a57-9a0e-5f1c2d3b4a5e","image":"registry.example.com/shop@sha256:0f4c2b8e9d1a7c6b5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d","instances":2}""";

    public static async Task<int> RunAsync()
    {
        var url = Environment.GetEnvironmentVariable("TRC_TEST_POSTGRES")
            ?? throw new InvalidOperationException("TRC_TEST_POSTGRES is not set (bench/run sets it)");
        var schema = "bench_" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        var connectionString = new NpgsqlConnectionStringBuilder(url) { SearchPath = schema, MaxPoolSize = 64 }.ConnectionString;
        var result = new Dictionary<string, object>();
        try
        {
            await using var store = new PostgresEventStore(new PostgresEventStoreOptions { ConnectionString = connectionString });
            await store.InitializeAsync(default);
            await using var tailStore = new PostgresEventStore(new PostgresEventStoreOptions { ConnectionString = connectionString });
            await tailStore.InitializeAsync(default);
            await using var raw = NpgsqlDataSource.Create(connectionString);

            Console.WriteLine($"Postgres {await ScalarAsync(raw, "SHOW server_version")}, fsync={await ScalarAsync(raw, "SHOW fsync")}, synchronous_commit={await ScalarAsync(raw, "SHOW synchronous_commit")}");
            Console.WriteLine("Appends per second (one event each): trc AppendAsync vs a raw prepared INSERT on the same table.");
            Console.WriteLine("8 pairs of 1.5 s rounds, back to back, order alternating; the ratio is the median of the pairs' ratios (this machine's speed drifts, a pair shares its conditions):");
            foreach (var writers in new[] { 1, 4, 16 })
            {
                var trc = new List<double>();
                var rawRates = new List<double>();
                var ratios = new List<double>();
                for (var pair = 0; pair < 8; pair++)
                {
                    double t, r;
                    if (pair % 2 == 0)
                    {
                        t = await MeasureAsync(writers, TimeSpan.FromSeconds(1.5), _ => store.AppendAsync(new AppendRequest("bench", Guid.NewGuid(), 0, [new EventData("bench.event", Payload)]), default));
                        r = await MeasureRawAsync(raw, writers, TimeSpan.FromSeconds(1.5));
                    }
                    else
                    {
                        r = await MeasureRawAsync(raw, writers, TimeSpan.FromSeconds(1.5));
                        t = await MeasureAsync(writers, TimeSpan.FromSeconds(1.5), _ => store.AppendAsync(new AppendRequest("bench", Guid.NewGuid(), 0, [new EventData("bench.event", Payload)]), default));
                    }
                    trc.Add(t);
                    rawRates.Add(r);
                    ratios.Add(t / r);
                }
                var ratio = Stats.Median(ratios);
                Console.WriteLine($"  {writers,2} writers: trc {Stats.Median(trc),8:F0}/s   raw {Stats.Median(rawRates),8:F0}/s   ratio {ratio:F2}   (pair ratios {string.Join(", ", ratios.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))})");
                result[$"append_ratio_{writers}"] = Math.Round(ratio, 3);
                result[$"trc_appends_per_s_{writers}"] = Math.Round(Stats.Median(trc));
                result[$"raw_inserts_per_s_{writers}"] = Math.Round(Stats.Median(rawRates));
            }

            // Correctness under load: 16 writers while a second process tails the log.
            using var stopTail = new CancellationTokenSource();
            var tail = Task.Run(() => TailAsync(tailStore, stopTail.Token));
            var loadRate = await MeasureAsync(16, TimeSpan.FromSeconds(5), _ => store.AppendAsync(new AppendRequest("load", Guid.NewGuid(), 0, [new EventData("bench.event", Payload)]), default));
            Console.WriteLine($"Under a tailing reader: {loadRate:F0} appends/s with 16 writers");

            var (lagP50, lagP99, ryw, achieved, appendLatency) = await MeasureLagAsync(store, eventsPerSecond: 2000, TimeSpan.FromSeconds(10));
            Console.WriteLine($"Projection lag at {achieved:F0} events/s (target 2000), commit to checkpoint: p50 {lagP50:F2} ms, p99 {lagP99:F2} ms");
            Console.WriteLine($"  for scale, the appends' own round trip (send to commit acknowledged) meanwhile: p50 {Stats.Percentile(appendLatency, 50):F2} ms, p99 {Stats.Percentile(appendLatency, 99):F2} ms");
            Console.WriteLine($"Read-your-writes wait under that load: p50 {Stats.Percentile(ryw, 50):F2} ms, p99 {Stats.Percentile(ryw, 99):F2} ms ({ryw.Count} samples)");
            result["lag_p50_ms"] = Math.Round(lagP50, 2);
            result["lag_p99_ms"] = Math.Round(lagP99, 2);
            result["ryw_p50_ms"] = Math.Round(Stats.Percentile(ryw, 50), 2);
            result["ryw_p99_ms"] = Math.Round(Stats.Percentile(ryw, 99), 2);
            result["lag_events_per_s"] = Math.Round(achieved);
            result["append_latency_p99_ms"] = Math.Round(Stats.Percentile(appendLatency, 99), 2);

            await stopTail.CancelAsync();
            var seen = await tail;
            var table = new List<long>();
            await using (var command = raw.CreateCommand("SELECT event_id FROM events WHERE aggregate_type <> 'raw' ORDER BY event_id"))
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    table.Add(reader.GetInt64(0));
                }
            }
            // The guarantee covers events appended through the store; compare those, up to where the
            // tail got (the raw peer's rows were written in earlier phases, outside the store).
            seen = seen.Where(e => e.Type != "raw").ToList();
            var upTo = seen.Count == 0 ? 0 : seen[^1].Id;
            var expected = table.Where(id => id <= upTo).ToHashSet();
            var seenIds = seen.Select(e => e.Id).ToList();
            var seenSet = seenIds.ToHashSet();
            var skipped = expected.Count(id => !seenSet.Contains(id));
            var duplicated = seenIds.Count - seenSet.Count;
            Console.WriteLine($"Tailing reader (second process-like store): {seen.Count} events read, {skipped} skipped, {duplicated} duplicated (table: {table.Count} rows)");
            result["skipped"] = skipped;
            result["duplicated"] = duplicated;
            result["tail_events"] = seen.Count;
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var admin = NpgsqlDataSource.Create(url);
            await using var drop = admin.CreateCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE");
            await drop.ExecuteNonQueryAsync();
        }

        var sqlite = await MeasureSqliteAsync();
        Console.WriteLine($"SQLite (WAL, synchronous=FULL): {sqlite:F0} appends/s, 1 writer");
        result["sqlite_appends_per_s"] = Math.Round(sqlite);

        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>Runs <paramref name="writers"/> loops of <paramref name="append"/> for the duration (after a 0.5 s warm-up) and returns completions per second.</summary>
    private static async Task<double> MeasureAsync(int writers, TimeSpan duration, Func<int, Task> append)
    {
        var counting = 0;
        long count = 0;
        var stop = DateTime.UtcNow + TimeSpan.FromMilliseconds(500) + duration;
        var measuring = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            while (DateTime.UtcNow < stop)
            {
                await append(w);
                if (Volatile.Read(ref counting) == 1)
                {
                    Interlocked.Increment(ref count);
                }
            }
        })).ToList();
        await Task.Delay(500);
        Volatile.Write(ref counting, 1);
        measuring.Restart();
        await Task.WhenAll(tasks);
        return count / measuring.Elapsed.TotalSeconds;
    }

    private static async Task<double> MeasureRawAsync(NpgsqlDataSource raw, int writers, TimeSpan duration)
    {
        var connections = new NpgsqlConnection[writers];
        var commands = new NpgsqlCommand[writers];
        for (var i = 0; i < writers; i++)
        {
            connections[i] = await raw.OpenConnectionAsync();
            // The floor: a plain prepared INSERT of the same row into the same table, taking its
            // event id the cheapest valid way (the transaction id, as trc does).
            commands[i] = new NpgsqlCommand("INSERT INTO events (event_id, aggregate_type, aggregate_id, aggregate_seq, event_type, payload) VALUES (pg_current_xact_id()::text::bigint * 1024, $1, $2, 1, $3, $4)", connections[i]);
            commands[i].Parameters.Add(new NpgsqlParameter<string> { TypedValue = "raw" });
            commands[i].Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = Guid.NewGuid() });
            commands[i].Parameters.Add(new NpgsqlParameter<string> { TypedValue = "raw.event" });
            commands[i].Parameters.Add(new NpgsqlParameter<string> { TypedValue = Payload, NpgsqlDbType = NpgsqlDbType.Jsonb });
            await commands[i].PrepareAsync();
        }
        try
        {
            return await MeasureAsync(writers, duration, async w =>
            {
                ((NpgsqlParameter<Guid>)commands[w].Parameters[1]).TypedValue = Guid.NewGuid();
                await commands[w].ExecuteNonQueryAsync();
            });
        }
        finally
        {
            for (var i = 0; i < writers; i++)
            {
                await commands[i].DisposeAsync();
                await connections[i].DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Appends at a steady rate while a projection runner applies the log; measures, per event, the
    /// time from the append returning to the checkpoint passing it; and, alongside, read-your-writes
    /// waits (append, then wait for the projection to pass the id).
    /// </summary>
    private static async Task<(double P50, double P99, List<double> Ryw, double Achieved, List<double> AppendLatency)> MeasureLagAsync(PostgresEventStore store, int eventsPerSecond, TimeSpan duration)
    {
        var backend = ProjectionBackend.For(store);
        var projection = new BenchProjection();
        await using var runner = new ProjectionRunner(backend, [projection]);
        await runner.StartAsync(default);
        var waiter = new ProjectionWaiter(backend);
        var start = (await backend.GetCheckpointsAsync([projection.Name], default))[projection.Name];
        var head = await store.GetHeadAsync(default);
        await waiter.WaitAsync([projection.Name], head, TimeSpan.FromSeconds(60), default);

        var committed = new ConcurrentQueue<(long Id, long At)>();
        var appendLatency = new ConcurrentBag<double>();
        var lags = new List<double>();
        var ryw = new List<double>();
        using var stop = new CancellationTokenSource();
        var monitor = Task.Run(async () =>
        {
            var pending = new PriorityQueue<long, long>();
            while (!stop.IsCancellationRequested || !committed.IsEmpty || pending.Count > 0)
            {
                var wake = backend.CheckpointsMoved.WaitAsync(TimeSpan.FromMilliseconds(20), TimeProvider.System, default);
                var checkpoint = (await backend.GetCheckpointsAsync([projection.Name], default))[projection.Name];
                var now = Stopwatch.GetTimestamp();
                while (committed.TryDequeue(out var c))
                {
                    pending.Enqueue(c.At, c.Id);
                }
                while (pending.TryPeek(out var at, out var id) && id <= checkpoint)
                {
                    pending.Dequeue();
                    lags.Add(Stopwatch.GetElapsedTime(at, now).TotalMilliseconds);
                }
                if (stop.IsCancellationRequested && pending.Count > 0 && lags.Count > 0 && Stopwatch.GetElapsedTime(now).TotalSeconds > 30)
                {
                    break;
                }
                await wake;
            }
        });

        const int writers = 4;
        var perWriter = eventsPerSecond / (double)writers;
        long appended = 0;
        var clock = Stopwatch.StartNew();
        var writerTasks = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var n = 0L;
            while (clock.Elapsed < duration)
            {
                var due = TimeSpan.FromSeconds((n + (w / (double)writers)) / perWriter);
                var ahead = due - clock.Elapsed;
                if (ahead > TimeSpan.FromMilliseconds(1))
                {
                    await Task.Delay(ahead);
                }
                var sent = Stopwatch.GetTimestamp();
                var r = await store.AppendAsync(new AppendRequest("lag", Guid.NewGuid(), 0, [new EventData("bench.event", Payload)]), default);
                committed.Enqueue((r.LastEventId, Stopwatch.GetTimestamp()));
                appendLatency.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
                Interlocked.Increment(ref appended);
                n++;
            }
        })).ToList();
        var rywTask = Task.Run(async () =>
        {
            while (clock.Elapsed < duration)
            {
                var r = await store.AppendAsync(new AppendRequest("ryw", Guid.NewGuid(), 0, [new EventData("bench.event", Payload)]), default);
                var t = Stopwatch.GetTimestamp();
                if (!await waiter.WaitAsync([projection.Name], r.LastEventId, TimeSpan.FromSeconds(5), default))
                {
                    throw new TimeoutException("read-your-writes did not complete within 5 s");
                }
                ryw.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                await Task.Delay(10);
            }
        });
        await Task.WhenAll(writerTasks);
        var achieved = appended / clock.Elapsed.TotalSeconds;
        await rywTask;
        await stop.CancelAsync();
        await monitor;
        _ = start;
        return (Stats.Percentile(lags, 50), Stats.Percentile(lags, 99), ryw, achieved, appendLatency.ToList());
    }

    private static async Task<List<(long Id, string Type)>> TailAsync(PostgresEventStore store, CancellationToken stop)
    {
        var seen = new List<(long Id, string Type)>();
        long cursor = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var page = await store.ReadAllAsync(cursor, 5000, EventFilter.All, stop);
                seen.AddRange(page.Events.Select(e => (e.EventId, e.AggregateType)));
                cursor = page.NextCursor;
                if (page.Events.Count == 0)
                {
                    await store.WaitForEventsAsync(cursor, TimeSpan.FromMilliseconds(200), stop);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        // One last read, so the comparison covers everything committed before the stop.
        var last = await store.ReadAllAsync(cursor, 10_000, EventFilter.All, default);
        seen.AddRange(last.Events.Select(e => (e.EventId, e.AggregateType)));
        return seen;
    }

    private static async Task<double> MeasureSqliteAsync()
    {
        var dir = Directory.CreateTempSubdirectory("trc-bench-sqlite-");
        try
        {
            await using var store = new SqliteEventStore(new SqliteEventStoreOptions { Path = Path.Combine(dir.FullName, "events.db") });
            await store.InitializeAsync(default);
            return await MeasureAsync(1, TimeSpan.FromSeconds(3), _ => store.AppendAsync(new AppendRequest("bench", Guid.NewGuid(), 0, [new EventData("bench.event", Payload)]), default));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            dir.Delete(recursive: true);
        }
    }

    private static async Task<string> ScalarAsync(NpgsqlDataSource source, string sql)
    {
        await using var command = source.CreateCommand(sql);
        return Convert.ToString(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture)!;
    }


    /// <summary>A projection of realistic cost: one upsert per event.</summary>
    private sealed class BenchProjection : IProjection
    {
        public string Name => "bench_instances";

        public IReadOnlyCollection<string>? EventTypes => null;

        public Task InitializeAsync(ProjectionContext context, CancellationToken cancellationToken) =>
            context.ExecuteAsync("CREATE TABLE IF NOT EXISTS bench_instances (aggregate_id text PRIMARY KEY, version int NOT NULL, last_event_id bigint NOT NULL)", cancellationToken);

        public Task ApplyAsync(ProjectionContext context, StoredEvent e, CancellationToken cancellationToken) =>
            context.ExecuteAsync(
                "INSERT INTO bench_instances (aggregate_id, version, last_event_id) VALUES (@a, @v, @id) ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version, last_event_id = excluded.last_event_id",
                cancellationToken, ("@a", e.AggregateId.ToString("D")), ("@v", e.AggregateSeq), ("@id", e.EventId));

        public Task ResetAsync(ProjectionContext context, CancellationToken cancellationToken) =>
            context.ExecuteAsync("DELETE FROM bench_instances", cancellationToken);
    }
}
