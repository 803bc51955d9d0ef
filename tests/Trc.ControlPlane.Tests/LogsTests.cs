using System.Net;
using System.Text;
using System.Text.Json;
using Trc.Core.Api;

namespace Trc.ControlPlane.Tests;

/// <summary>Logs: agents ship lines of their instances, users read and follow them.</summary>
public abstract class LogsTests(ServerFixture fixture)
{
    private TestServer Server => fixture.Server;

    private static readonly DateTimeOffset T0 = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private Task ShipAsync(Guid node, params LogLineRequest[] lines) =>
        TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.NodeLogs(node), new LogBatchRequest(lines)).Expect(HttpStatusCode.NoContent);

    /// <summary>Ships each line from its instance's node (other tests' nodes may be ready too, so web and worker can be on two).</summary>
    private async Task ShipEachAsync(params (InstanceView Instance, string Stream, DateTimeOffset Time, string Line)[] lines)
    {
        foreach (var (instance, stream, time, line) in lines)
        {
            await ShipAsync(instance.NodeId, new LogLineRequest(instance.Id, stream, time, line));
        }
    }

    private static Task<LogPageView> ReadAsync(HttpClient client, string org, string query = "") =>
        TestServer.Send(client, HttpMethod.Get, NodeApiPaths.Logs(org, "shop", "prod") + query).Json<LogPageView>();

    /// <summary>An env running two processes on a node: (owner, web instance, worker instance).</summary>
    private async Task<(HttpClient Owner, InstanceView Web, InstanceView Worker)> TwoProcessesAsync(string org)
    {
        var (owner, _) = await NodeAgent.RunningShopAsync(Server, org, Setup.Manifest + "\n[processes.worker]\nmemory = \"128Mi\"\n");
        var instances = await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Count == 2, "web and worker");
        return (owner, instances.Single(i => i.Process == "web"), instances.Single(i => i.Process == "worker"));
    }

    [Fact]
    public async Task Lines_are_tagged_from_the_schedule_and_read_back_oldest_first_with_filters()
    {
        var org = Setup.OrgName();
        var (owner, web, worker) = await TwoProcessesAsync(org);
        await ShipEachAsync((web, "stdout", T0, "listening on :8443"), (worker, "stderr", T0.AddSeconds(1), "queue empty"));
        await ShipAsync(web.NodeId,
            new LogLineRequest(web.Id, "system", T0.AddSeconds(2), "health check passed"),
            new LogLineRequest(web.Id, "stdout", T0.AddSeconds(3), "GET / 200 \u00e9\t\u2603"));

        var page = await ReadAsync(owner, org);
        Assert.Equal(["listening on :8443", "queue empty", "health check passed", "GET / 200 \u00e9\t\u2603"], page.Lines.Select(l => l.Line));
        Assert.Equal(page.Lines[^1].Id, page.NextCursor);
        Assert.True(page.Lines.Zip(page.Lines.Skip(1)).All(p => p.First.Id < p.Second.Id));
        var first = page.Lines[0];
        Assert.Equal((org, "shop", "prod", "web", web.Id, 1, "stdout", T0), (first.Org, first.App, first.Env, first.Process, first.Instance, first.Release, first.Stream, first.Time));
        Assert.Equal(("worker", worker.Id, "stderr"), (page.Lines[1].Process, page.Lines[1].Instance, page.Lines[1].Stream));

        Assert.Equal(3, (await ReadAsync(owner, org, "?process=web")).Lines.Count);
        Assert.Equal(["queue empty"], (await ReadAsync(owner, org, $"?instance={worker.Id}")).Lines.Select(l => l.Line));
        // A filtered page's cursor moves past the lines the filter skipped, so a follower does not read them again.
        Assert.Equal(page.NextCursor, (await ReadAsync(owner, org, $"?instance={worker.Id}")).NextCursor);
        Assert.Equal(page.NextCursor, (await ReadAsync(owner, org, $"?after=0&instance={worker.Id}")).NextCursor);
        Assert.Equal(["health check passed", "GET / 200 \u00e9\t\u2603"], (await ReadAsync(owner, org, "?since=2025-03-01T12:00:02Z")).Lines.Select(l => l.Line));
        Assert.Equal(["health check passed", "GET / 200 \u00e9\t\u2603"], (await ReadAsync(owner, org, "?since=2025-03-01T14:00:02%2B02:00")).Lines.Select(l => l.Line));
        Assert.Empty((await ReadAsync(owner, org, "?since=10m")).Lines);

        // Paging: a tail of two, then forward from the start.
        var tail = await ReadAsync(owner, org, "?limit=2");
        Assert.Equal(page.Lines.TakeLast(2).Select(l => l.Id), tail.Lines.Select(l => l.Id));
        var one = await ReadAsync(owner, org, "?after=0&limit=1");
        Assert.Equal(page.Lines[0].Id, Assert.Single(one.Lines).Id);
        var rest = await ReadAsync(owner, org, $"?after={one.NextCursor}&limit=10");
        Assert.Equal(page.Lines.Skip(1).Select(l => l.Id), rest.Lines.Select(l => l.Id));
        var none = await ReadAsync(owner, org, $"?after={rest.NextCursor}");
        Assert.Empty(none.Lines);
        Assert.Equal(rest.NextCursor, none.NextCursor);

        // A viewer reads them; another org's token cannot tell they exist.
        var viewer = await Server.TokenAsync(org, "viewer");
        Assert.Equal(4, (await ReadAsync(viewer, org)).Lines.Count);
        var other = await Server.NewOrgAsync(Setup.OrgName());
        await TestServer.Send(other, HttpMethod.Get, NodeApiPaths.Logs(org, "shop", "prod")).Problem(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task Queries_are_checked()
    {
        var org = Setup.OrgName();
        // Not deployed: the scheduler writes no line to this env's logs.
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        foreach (var (query, field) in new[]
        {
            ("?limit=0", "limit"), ("?limit=5001", "limit"), ("?limit=x", "limit"), ("?after=-1", "after"),
            ("?since=yesterday", "since"), ("?since=2025-03-01T12:00:00", "since"), ("?since=0m", "since"), ("?since=10m&since=1h", "since"),
            ("?process=Web", "process"), ("?instance=12", "instance"),
            ("?limit=1.5", "limit"), ("?limit=1&limit=2", "limit"), ("?after=1&after=2", "after"), ("?after=99999999999999999999", "after"),
            ("?since=999999999h", "since"), ("?since=-10m", "since"), ("?since=10M", "since"), ("?since=2025-13-01T00:00:00Z", "since"),
            ("?since=2025-03-01 12:00:00Z", "since"), ("?since=" + new string('9', 5000) + "m", "since"), ("?since=10m%00", "since"),
            ("?process=web&process=worker", "process"), ("?process=" + new string('a', 5000), "process"), ("?process=%1b%5b2J", "process"),
            ($"?instance={Guid.NewGuid()}&instance={Guid.NewGuid()}", "instance"),
        })
        {
            var problem = await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.Logs(org, "shop", "prod") + query).Problem(HttpStatusCode.BadRequest, "invalid_query");
            Assert.True(field == problem.Field, $"{query}: {problem.Field} {problem.Detail}");
            Assert.True(problem.Detail!.Length < 300 && !problem.Detail.Any(char.IsControl), $"{query}: {problem.Detail}");
            await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.LogsStream(org, "shop", "prod") + query).Problem(HttpStatusCode.BadRequest, "invalid_query");
        }

        // A duration reaching back before year 1 is every line, not a 500.
        Assert.Empty((await ReadAsync(owner, org, "?since=200000000h")).Lines);
        Assert.Empty((await ReadAsync(owner, org, "?since=36500d")).Lines);
    }

    [Fact]
    public async Task The_instances_and_logs_of_an_env_that_is_not_there_are_404_naming_it()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        foreach (var (app, env, named) in new[] { ("shop", "nope", "env"), ("NOPE", "prod", "app"), ("shop", new string('e', 5000), "env"), ("shop", "\u202eprod", "env") })
        {
            foreach (var path in new[] { NodeApiPaths.Instances(org, app, env), NodeApiPaths.Logs(org, app, env), NodeApiPaths.LogsStream(org, app, env) })
            {
                var problem = await TestServer.Send(owner, HttpMethod.Get, path).Problem(HttpStatusCode.NotFound, "not_found");
                Assert.StartsWith(named + " ", problem.Detail!, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Batches_are_checked_line_by_line_and_stored_whole_or_not_at_all()
    {
        var org = Setup.OrgName();
        var (owner, web, _) = await TwoProcessesAsync(org);
        var path = NodeApiPaths.NodeLogs(web.NodeId);
        var ok = new LogLineRequest(web.Id, "stdout", T0, "ok");

        async Task RefusedAsync(object body, HttpStatusCode status, string code, string? field) =>
            (await TestServer.Send(Server.Node, HttpMethod.Post, path, body).Problem(status, code)).AssertField(field);

        await RefusedAsync(new LogBatchRequest([ok, ok with { Stream = "stdin" }]), HttpStatusCode.UnprocessableEntity, "invalid_stream", "lines[1].stream");
        await RefusedAsync(new LogBatchRequest([ok, ok with { Line = new string('x', 16 * 1024 + 1) }]), HttpStatusCode.UnprocessableEntity, "line_too_long", "lines[1].line");
        await RefusedAsync(new LogBatchRequest([ok, ok with { Line = new string('\u00e9', 8 * 1024 + 1) }]), HttpStatusCode.UnprocessableEntity, "line_too_long", "lines[1].line");
        await RefusedAsync(new LogBatchRequest(Enumerable.Repeat(ok, 1001).ToList()), HttpStatusCode.UnprocessableEntity, "too_many_lines", "lines");
        await RefusedAsync(new LogBatchRequest([ok, ok with { Instance = Guid.NewGuid() }]), HttpStatusCode.UnprocessableEntity, "unknown_instance", "lines[1].instance");
        await RefusedAsync("""{"lines":[null]}""", HttpStatusCode.BadRequest, "invalid_json", "lines[0]");
        await RefusedAsync("""{"lines":[{"instance":"x","stream":"stdout","time":"2025-01-01T00:00:00Z","line":"a"}]}""", HttpStatusCode.BadRequest, "invalid_json", "lines[0].instance");
        await RefusedAsync("""{"lines":[{"instance":"00000000-0000-0000-0000-000000000001","stream":"stdout","time":"yesterday","line":"a"}]}""", HttpStatusCode.BadRequest, "invalid_json", "lines[0].time");
        await RefusedAsync("""{"lines":[{"instance":"00000000-0000-0000-0000-000000000001","stream":"stdout","time":"2025-01-01T00:00:00Z","line":7}]}""", HttpStatusCode.BadRequest, "invalid_json", "lines[0].line");
        await RefusedAsync("""{"lines":"all"}""", HttpStatusCode.BadRequest, "invalid_json", "lines");
        await RefusedAsync("""{"lines":[],"node":"x"}""", HttpStatusCode.BadRequest, "invalid_json", "node");
        await RefusedAsync("""{"lines":[""", HttpStatusCode.BadRequest, "invalid_json", "lines[0]");
        await RefusedAsync("""{"lines":[{"instance":"00000000-0000-0000-0000-000000000001","stream":"stdout","time":"2025-01-01T00:00:00Z","line":null}]}""", HttpStatusCode.BadRequest, "invalid_json", "lines[0].line");
        await RefusedAsync("""{"lines":[{"instance":"00000000-0000-0000-0000-000000000001","stream":null,"time":"2025-01-01T00:00:00Z","line":"a"}]}""", HttpStatusCode.BadRequest, "invalid_json", "lines[0].stream");
        await RefusedAsync("""{"lines":[{"instance":"00000000-0000-0000-0000-000000000001","stream":"stdout","time":"2025-01-01T00:00:00Z","line":"a","level":"info"}]}""", HttpStatusCode.BadRequest, "invalid_json", "lines[0].level");
        await RefusedAsync("""{"lines":[{"instance":"00000000-0000-0000-0000-000000000001","stream":"stdout","time":1735689600,"line":"a"}]}""", HttpStatusCode.BadRequest, "invalid_json", "lines[0].time");
        await RefusedAsync(new LogBatchRequest([ok, ok with { Stream = "STDOUT" }]), HttpStatusCode.UnprocessableEntity, "invalid_stream", "lines[1].stream");
        var hostile = await TestServer.Send(Server.Node, HttpMethod.Post, path, new LogBatchRequest([ok with { Stream = "std\u001b[2Jout" }])).Problem(HttpStatusCode.UnprocessableEntity, "invalid_stream");
        Assert.DoesNotContain('\u001b', hostile.Detail!);

        // Another node may not ship this node's instances' lines (nor learn whether they exist).
        var other = await NodeAgent.RegisterAsync(Server);
        (await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.NodeLogs(other.Id), new LogBatchRequest([ok])).Problem(HttpStatusCode.UnprocessableEntity, "unknown_instance")).AssertField("lines[0].instance");
        await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.NodeLogs(Guid.NewGuid()), new LogBatchRequest([ok])).Problem(HttpStatusCode.NotFound, "not_found");

        Assert.Empty((await ReadAsync(owner, org, "?process=web")).Lines);

        // The most a batch may hold is accepted: 1,000 lines of 16 KiB (a 16 MiB body).
        var full = Enumerable.Range(0, 1000).Select(i => ok with { Line = i.ToString("D5") + new string('y', 16 * 1024 - 5) }).ToList();
        await ShipAsync(web.NodeId, [.. full]);
        var stored = await ReadAsync(owner, org, "?process=web&limit=5000");
        Assert.Equal(1000, stored.Lines.Count);
        Assert.Equal(16 * 1024, stored.Lines[999].Line.Length);
        Assert.StartsWith("00999", stored.Lines[999].Line, StringComparison.Ordinal);

        // An empty batch is fine; NUL is kept as U+FFFD (PostgreSQL text cannot hold NUL).
        await ShipAsync(web.NodeId);
        await ShipAsync(web.NodeId, ok with { Line = "a\u0000b" });
        Assert.Equal("a\uFFFDb", (await ReadAsync(owner, org, "?process=web&limit=1")).Lines[0].Line);
    }

    [Fact]
    public async Task The_stream_follows_new_lines_and_resumes_after_the_last_event_id()
    {
        var org = Setup.OrgName();
        var (owner, web, worker) = await TwoProcessesAsync(org);
        await ShipAsync(web.NodeId, new LogLineRequest(web.Id, "stdout", T0, "before"));

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await owner.SendAsync(new HttpRequestMessage(HttpMethod.Get, NodeApiPaths.LogsStream(org, "shop", "prod") + "?process=web"), HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token), Encoding.UTF8);

        // From now on: "before" is not sent; a worker line is filtered out.
        await ShipEachAsync((worker, "stdout", T0, "worker"), (web, "stdout", T0, "one"), (web, "stderr", T0, "two"));
        var (id1, line1) = await NextAsync(reader, cts.Token);
        var (id2, line2) = await NextAsync(reader, cts.Token);
        Assert.Equal(("one", "two"), (line1.Line, line2.Line));
        Assert.Equal((id1, id2), (line1.Id, line2.Id));

        // A reconnect with Last-Event-ID goes on after it, without repeats.
        await ShipAsync(web.NodeId, new LogLineRequest(web.Id, "stdout", T0, "three"));
        using var again = new HttpRequestMessage(HttpMethod.Get, NodeApiPaths.LogsStream(org, "shop", "prod") + "?process=web");
        again.Headers.Add("Last-Event-ID", id1.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var resumed = await owner.SendAsync(again, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader2 = new StreamReader(await resumed.Content.ReadAsStreamAsync(cts.Token), Encoding.UTF8);
        Assert.Equal("two", (await NextAsync(reader2, cts.Token)).Line.Line);
        Assert.Equal("three", (await NextAsync(reader2, cts.Token)).Line.Line);

        // since= starts in the past.
        using var fromStart = await owner.SendAsync(new HttpRequestMessage(HttpMethod.Get, NodeApiPaths.LogsStream(org, "shop", "prod") + "?process=web&since=2025-01-01T00:00:00Z"), HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader3 = new StreamReader(await fromStart.Content.ReadAsStreamAsync(cts.Token), Encoding.UTF8);
        Assert.Equal("before", (await NextAsync(reader3, cts.Token)).Line.Line);
    }

    private static async Task<(long Id, LogEntryView Line)> NextAsync(StreamReader reader, CancellationToken ct)
    {
        long? id = null;
        while (true)
        {
            var line = await reader.ReadLineAsync(ct) ?? throw new EndOfStreamException();
            if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                Assert.Equal("event: log", line);
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                return (id!.Value, JsonSerializer.Deserialize<LogEntryView>(line[6..], ApiJson.ClientOptions)!);
            }
        }
    }
}

public sealed class SqliteLogsTests(SqliteServer fixture) : LogsTests(fixture), IClassFixture<SqliteServer>;

public sealed class PostgresLogsTests(PostgresServer fixture) : LogsTests(fixture), IClassFixture<PostgresServer>;

/// <summary>Retention: by receive time, and a cap per env.</summary>
public sealed class LogRetentionTests
{
    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Lines_older_than_the_retention_and_beyond_the_cap_are_swept(Backend backend)
    {
        var clock = new ShiftedClock();
        await using var server = await TestServer.StartAsync(backend, o => o with { Time = clock, LogRetention = TimeSpan.FromDays(7), LogMaxLinesPerEnv = 5 });
        var org = Setup.OrgName();
        var (owner, instance) = await NodeAgent.RunningShopAsync(server, org);
        async Task ShipAsync(params string[] lines) =>
            await TestServer.Send(server.Node, HttpMethod.Post, NodeApiPaths.NodeLogs(instance.NodeId),
                new LogBatchRequest(lines.Select(l => new LogLineRequest(instance.Id, "stdout", DateTimeOffset.UtcNow, l)).ToList())).Expect(HttpStatusCode.NoContent);
        async Task<List<string>> LinesAsync() =>
            (await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.Logs(org, "shop", "prod") + "?process=web&instance=" + instance.Id).Json<LogPageView>()).Lines.Select(l => l.Line).ToList();

        await ShipAsync("old-1", "old-2");
        clock.Offset += TimeSpan.FromDays(6);
        await ShipAsync("new-1", "new-2");
        clock.Offset += TimeSpan.FromDays(2);
        await server.Host.LogSweeper.SweepAsync(default);
        Assert.Equal(["new-1", "new-2"], await LinesAsync());

        await ShipAsync("a", "b", "c", "d", "e");
        await server.Host.LogSweeper.SweepAsync(default);
        Assert.Equal(["a", "b", "c", "d", "e"], await LinesAsync());
    }
}
