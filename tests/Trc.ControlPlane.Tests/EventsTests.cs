using System.Net;
using System.Text.Json;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.EventStore;

namespace Trc.ControlPlane.Tests;

public abstract class EventsTests(ServerFixture fixture)
{
    private TestServer Server => fixture.Server;

    private static async Task<Guid> TokenIdAsync(HttpClient client) =>
        (await TestServer.Send(client, HttpMethod.Get, ApiPaths.WhoAmI).Json<WhoAmIView>()).TokenId;

    /// <summary>Every event of the org, read page by page.</summary>
    private static async Task<List<EventView>> AllAsync(HttpClient client, string path, int pageSize = 1000)
    {
        var all = new List<EventView>();
        long after = 0;
        while (true)
        {
            var separator = path.Contains('?', StringComparison.Ordinal) ? '&' : '?';
            var page = await TestServer.Send(client, HttpMethod.Get, $"{path}{separator}after={after}&limit={pageSize}").Json<EventPageView>();
            all.AddRange(page.Events);
            if (page.Events.Count < pageSize)
            {
                return all;
            }
            after = page.NextCursor;
        }
    }

    private static async Task BusyOrgAsync(HttpClient owner, string org)
    {
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route($"ev-{Guid.NewGuid().ToString("N")[..8]}.example.com")).Expect(HttpStatusCode.Created);
        await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), new SetSecretsRequest(new Dictionary<string, JsonElement> { ["A"] = JsonSerializer.SerializeToElement("x") })).Expect(HttpStatusCode.OK);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Volumes(org, "shop", "prod"), new CreateVolumeRequest("data-" + Guid.NewGuid().ToString("N")[..6], "1Gi")).Expect(HttpStatusCode.Created);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest)).Expect(HttpStatusCode.Created);
    }

    [Fact]
    public async Task Every_event_records_the_token_that_caused_it()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var deployer = await Server.TokenAsync(org, Roles.Deployer);
        await TestServer.Send(deployer, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest)).Expect(HttpStatusCode.Created);
        await BusyOrgAsync(owner, org);

        var (adminId, ownerId, deployerId) = (await TokenIdAsync(Server.Admin), await TokenIdAsync(owner), await TokenIdAsync(deployer));
        var events = await AllAsync(owner, ApiPaths.OrgEvents(org));
        Assert.Equal(EventNames.OrgCreated, events[0].Type);
        Assert.Equal(adminId, events[0].ActorId);
        // The owner's first deploy and the release its secrets change rolled out.
        Assert.Equal(3, events.Count(e => e.Type == EventNames.ReleaseCreated && e.ActorId == ownerId));
        Assert.Equal(1, events.Count(e => e.Type == EventNames.ReleaseCreated && e.ActorId == deployerId));
        Assert.All(events, e => Assert.Contains(e.ActorId, new Guid?[] { adminId, ownerId, deployerId }));
        Assert.Contains(events, e => e.Type == EventNames.RouteAdded && e.ActorId == ownerId);

        // Platform-wide, nothing is anonymous either (the admin token's own creation is by itself).
        Assert.All(await AllAsync(Server.Admin, ApiPaths.Events), e => Assert.NotNull(e.ActorId));
    }

    [Fact]
    public async Task An_org_sees_only_its_own_events()
    {
        var (a, b) = (Setup.OrgName(), Setup.OrgName());
        var ownerA = await Setup.ShopAsync(Server, a);
        var ownerB = await Setup.ShopAsync(Server, b);
        await BusyOrgAsync(ownerA, a);
        await BusyOrgAsync(ownerB, b);
        var orgA = await TestServer.Send(ownerA, HttpMethod.Get, ApiPaths.Org(a)).Json<OrgView>();
        var orgB = await TestServer.Send(ownerB, HttpMethod.Get, ApiPaths.Org(b)).Json<OrgView>();

        var eventsA = await AllAsync(ownerA, ApiPaths.OrgEvents(a));
        var eventsB = await AllAsync(ownerB, ApiPaths.OrgEvents(b));
        Assert.NotEmpty(eventsA);
        Assert.Empty(eventsA.Select(e => e.Id).Intersect(eventsB.Select(e => e.Id)));
        Assert.DoesNotContain(eventsA, e => e.AggregateId == orgB.Id || e.Payload.GetRawText().Contains(b, StringComparison.Ordinal));
        Assert.Contains(eventsA, e => e.AggregateId == orgA.Id);

        await TestServer.Send(ownerB, HttpMethod.Get, ApiPaths.OrgEvents(a)).Problem(HttpStatusCode.NotFound, "not_found");
        await TestServer.Send(ownerB, HttpMethod.Get, ApiPaths.OrgEventsStream(a)).Problem(HttpStatusCode.NotFound, "not_found");
        await TestServer.Send(ownerA, HttpMethod.Get, ApiPaths.Events).Problem(HttpStatusCode.Forbidden, "forbidden");
        await TestServer.Send(ownerA, HttpMethod.Get, ApiPaths.EventsStream).Problem(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task Paging_by_cursor_reads_each_event_once_and_filters_by_type()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        for (var i = 0; i < 3; i++)
        {
            await BusyOrgAsync(owner, org);
        }
        var whole = await AllAsync(owner, ApiPaths.OrgEvents(org));
        var paged = await AllAsync(owner, ApiPaths.OrgEvents(org), pageSize: 3);
        Assert.Equal(whole.Select(e => e.Id), paged.Select(e => e.Id));
        Assert.Equal(whole.Select(e => e.Id).Order(), whole.Select(e => e.Id));
        Assert.Equal(whole.Count, whole.Select(e => e.Id).Distinct().Count());

        var filtered = await AllAsync(owner, ApiPaths.OrgEvents(org) + $"?type={EventNames.ReleaseCreated}&type={EventNames.RouteAdded}", pageSize: 2);
        Assert.Equal(whole.Where(e => e.Type is EventNames.ReleaseCreated or EventNames.RouteAdded).Select(e => e.Id), filtered.Select(e => e.Id));
        // 1 + 3 deploys, and 3 secrets changes on a deployed env (each rolls a new release out).
        Assert.Equal(7, filtered.Count(e => e.Type == EventNames.ReleaseCreated));

        // A page past the end is empty, and its cursor does not go backwards.
        var head = whole[^1].Id;
        var empty = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.OrgEvents(org) + $"?after={head}").Json<EventPageView>();
        Assert.Empty(empty.Events);
        Assert.True(empty.NextCursor >= head);
    }

    [Fact]
    public async Task The_platform_stream_filters_by_node()
    {
        // Node-routed events come from the scheduler later; append two straight to the log here.
        var node = "node-" + Guid.NewGuid().ToString("N")[..8];
        await Server.Host.Store.AppendAsync(new AppendRequest("node", Guid.NewGuid(), ExpectedVersion.NoStream,
            [new EventData("test.node_event", "{\"n\":1}", node), new EventData("test.node_event", "{\"n\":2}", "other-" + node)], ActorId: Guid.NewGuid()), default);
        var forNode = await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.Events + $"?node={node}&limit=1000").Json<EventPageView>();
        var single = Assert.Single(forNode.Events);
        Assert.Equal((node, 1), (single.RoutingKey, single.Payload.GetProperty("n").GetInt32()));
        var none = await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.Events + "?node=no-such-node&limit=1000").Json<EventPageView>();
        Assert.Empty(none.Events);
    }

    [Theory]
    [InlineData("?after=-1", "after")]
    [InlineData("?after=abc", "after")]
    [InlineData("?after=1&after=2", "after")]
    [InlineData("?after=99999999999999999999999", "after")]
    [InlineData("?limit=0", "limit")]
    [InlineData("?limit=1001", "limit")]
    [InlineData("?limit=1.5", "limit")]
    [InlineData("?limit=%00", "limit")]
    public async Task Bad_queries_name_the_parameter(string query, string field)
    {
        var org = Setup.OrgName();
        var owner = await Server.NewOrgAsync(org);
        foreach (var (client, path) in new[] { (owner, ApiPaths.OrgEvents(org)), (owner, ApiPaths.OrgEventsStream(org)), (Server.Admin, ApiPaths.Events), (Server.Admin, ApiPaths.EventsStream) })
        {
            var problem = await TestServer.Send(client, HttpMethod.Get, path + query).Problem(HttpStatusCode.BadRequest, "invalid_query");
            Assert.Equal(field, problem.Field);
        }
    }

    [Fact]
    public async Task Oversized_filters_and_a_bad_last_event_id_are_refused()
    {
        Assert.Equal("type", (await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.Events + "?type=" + new string('t', 201)).Problem(HttpStatusCode.BadRequest, "invalid_query")).Field);
        Assert.Equal("node", (await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.Events + "?node=" + new string('n', 201)).Problem(HttpStatusCode.BadRequest, "invalid_query")).Field);
        var request = new HttpRequestMessage(HttpMethod.Get, ApiPaths.EventsStream);
        request.Headers.Add("Last-Event-ID", "yesterday");
        var response = await Server.Admin.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Last-Event-ID", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_stream_delivers_live_events_and_resumes_after_a_reconnect_without_a_gap()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);

        // First connection: everything so far, then live events as they happen.
        var received = new List<SseEvent>();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        await using (var stream = await SseStream.OpenAsync(owner, ApiPaths.OrgEventsStream(org), null, cts.Token))
        {
            var before = (await AllAsync(owner, ApiPaths.OrgEvents(org))).Count;
            received.AddRange(await stream.ReadAsync(before, cts.Token));
            var live = BusyOrgAsync(owner, org);
            await live;
            var now = (await AllAsync(owner, ApiPaths.OrgEvents(org))).Count;
            received.AddRange(await stream.ReadAsync(now - before, cts.Token));
        }

        // Changes while nobody listens, then a reconnect from the last id seen.
        await BusyOrgAsync(owner, org);
        await BusyOrgAsync(owner, org);
        var all = await AllAsync(owner, ApiPaths.OrgEvents(org));
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        await using (var stream = await SseStream.OpenAsync(owner, ApiPaths.OrgEventsStream(org), received[^1].Id, cts.Token))
        {
            received.AddRange(await stream.ReadAsync(all.Count - received.Count, cts.Token));
        }

        Assert.Equal(all.Select(e => e.Id), received.Select(e => e.Id));
        Assert.Equal(all.Select(e => e.Type), received.Select(e => e.Type));
        Assert.All(received, e => Assert.Equal(e.Id, e.Data.GetProperty("id").GetInt64()));
    }

    [Fact]
    public async Task A_filtered_stream_sends_only_matching_events()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var stream = await SseStream.OpenAsync(owner, ApiPaths.OrgEventsStream(org) + "?type=" + EventNames.ReleaseCreated, null, cts.Token);
        await BusyOrgAsync(owner, org);
        await BusyOrgAsync(owner, org);
        var events = await stream.ReadAsync(3, cts.Token);
        Assert.All(events, e => Assert.Equal(EventNames.ReleaseCreated, e.Type));
        Assert.Equal([1, 2, 3], events.Select(e => e.Data.GetProperty("payload").GetProperty("number").GetInt32()));
    }
}

/// <summary>One Server-Sent Event.</summary>
public sealed record SseEvent(long Id, string Type, JsonElement Data);

/// <summary>A minimal Server-Sent Events reader over a real HTTP response.</summary>
public sealed class SseStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;

    private SseStream(HttpResponseMessage response, StreamReader reader) => (_response, _reader) = (response, reader);

    public static async Task<SseStream> OpenAsync(HttpClient client, string path, long? lastEventId, CancellationToken ct)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is { } id)
        {
            request.Headers.Add("Last-Event-ID", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return new SseStream(response, new StreamReader(await response.Content.ReadAsStreamAsync(ct)));
    }

    /// <summary>Reads exactly <paramref name="count"/> events (comments skipped).</summary>
    public async Task<List<SseEvent>> ReadAsync(int count, CancellationToken ct)
    {
        var events = new List<SseEvent>();
        long? id = null;
        string? type = null;
        string? data = null;
        while (events.Count < count)
        {
            var line = await _reader.ReadLineAsync(ct) ?? throw new EndOfStreamException("the server closed the stream");
            if (line.Length == 0)
            {
                if (data is not null)
                {
                    using var doc = JsonDocument.Parse(data);
                    events.Add(new SseEvent(id ?? throw new InvalidDataException("event without id"), type ?? "message", doc.RootElement.Clone()));
                }
                (id, type, data) = (null, null, null);
            }
            else if (line.StartsWith(':'))
            {
                continue;
            }
            else if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                type = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data = data is null ? line[6..] : data + "\n" + line[6..];
            }
        }
        return events;
    }

    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _response.Dispose();
        return ValueTask.CompletedTask;
    }
}

public sealed class SqliteEventsTests(SqliteServer fixture) : EventsTests(fixture), IClassFixture<SqliteServer>;

public sealed class PostgresEventsTests(PostgresServer fixture) : EventsTests(fixture), IClassFixture<PostgresServer>;
