using System.Net;
using System.Threading.Channels;
using Trc.Client.Events;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Testing;

namespace Trc.Client.Tests.Events;

/// <summary>The event page and the Server-Sent Events stream, against a real server.</summary>
public sealed class TrcClientEventTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static readonly EventStreamOptions FastRetry = new()
    {
        InitialReconnectDelay = TimeSpan.FromMilliseconds(50),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(200),
    };

    private ClientTestServer Server => fixture.Server;

    [Fact]
    public async Task An_org_page_holds_its_events_in_order_and_the_cursor_moves_past_them()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        await owner.CreateAppAsync(org, "shop");
        var page = await owner.GetEventsAsync(new EventQuery(org));
        Assert.Contains(page.Events, e => e.Type == EventNames.AppCreated && e.Payload.GetProperty("name").GetString() == "shop");
        Assert.Equal(page.Events.Select(e => e.Id).Order(), page.Events.Select(e => e.Id));
        Assert.Empty((await owner.GetEventsAsync(new EventQuery(org, After: page.NextCursor))).Events);

        var filtered = await owner.GetEventsAsync(new EventQuery(org, Types: [EventNames.AppCreated], Limit: 5));
        Assert.All(filtered.Events, e => Assert.Equal(EventNames.AppCreated, e.Type));
        Assert.Single(filtered.Events);
    }

    [Fact]
    public async Task The_platform_log_is_for_the_admin_only()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        Assert.NotEmpty((await Server.Admin.GetEventsAsync(new EventQuery(Limit: 10))).Events);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => owner.GetEventsAsync(new EventQuery()));
        Assert.Equal(HttpStatusCode.Forbidden, e.StatusCode);
    }

    [Fact]
    public async Task The_stream_delivers_an_event_appended_after_it_started()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var cursor = (await owner.GetEventsAsync(new EventQuery(org, Limit: 1000))).NextCursor;
        using var cts = new CancellationTokenSource(Patience);
        var received = Follow(owner.StreamEventsAsync(new EventQuery(org, After: cursor), FastRetry, cts.Token));

        await owner.CreateAppAsync(org, "shop");

        var app = await NextOfTypeAsync(received.Reader, EventNames.AppCreated, cts.Token);
        Assert.True(app.Id > cursor);
        Assert.Equal("shop", app.Payload.GetProperty("name").GetString());
        await cts.CancelAsync();
    }

    [Fact]
    public async Task The_stream_resumes_after_the_connection_is_cut_without_skipping_or_repeating()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var token = (await Server.Admin.CreateTokenAsync(org, "stream", Roles.Viewer)).Token;
        await using var proxy = new TcpProxy(Server.Address.Host, Server.Address.Port);
        var viaProxy = Server.Client(token, proxy.Address);
        var reconnects = new List<EventStreamReconnect>();
        var options = FastRetry with { Reconnecting = r => { lock (reconnects) { reconnects.Add(r); } } };
        using var cts = new CancellationTokenSource(Patience);
        var received = Follow(viaProxy.StreamEventsAsync(new EventQuery(org), options, cts.Token));

        var seen = new List<EventView>();
        await owner.CreateAppAsync(org, "one");
        var one = await NextOfTypeAsync(received.Reader, EventNames.AppCreated, cts.Token, seen);

        proxy.CutAll();
        await owner.CreateAppAsync(org, "two");
        var two = await NextOfTypeAsync(received.Reader, EventNames.AppCreated, cts.Token, seen);

        Assert.Equal("two", two.Payload.GetProperty("name").GetString());
        Assert.True(proxy.Accepted >= 2, "the client should have connected again");
        lock (reconnects)
        {
            Assert.NotEmpty(reconnects);
            Assert.True(reconnects[0].LastEventId >= one.Id);
        }
        // Every event of the org, exactly once and in order: the resumed stream neither
        // skipped nor repeated any.
        var all = (await owner.GetEventsAsync(new EventQuery(org, Limit: 1000))).Events.Where(e => e.Id <= two.Id).Select(e => e.Id).ToList();
        Assert.Equal(all, seen.Select(e => e.Id));
        await cts.CancelAsync();
    }

    [Fact]
    public async Task A_revoked_token_ends_the_resumed_stream_with_a_401()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var created = await owner.CreateTokenAsync(org, "watcher", Roles.Viewer);
        await using var proxy = new TcpProxy(Server.Address.Host, Server.Address.Port);
        var watcher = Server.Client(created.Token, proxy.Address);
        using var cts = new CancellationTokenSource(Patience);
        var received = Follow(watcher.StreamEventsAsync(new EventQuery(org), FastRetry, cts.Token));
        await NextOfTypeAsync(received.Reader, EventNames.TokenCreated, cts.Token);

        await owner.RevokeTokenAsync(org, created.Id);
        proxy.CutAll();

        var ended = await Assert.ThrowsAsync<TrcApiException>(async () =>
        {
            await foreach (var _ in received.Reader.ReadAllAsync(cts.Token))
            {
            }
        });
        Assert.Equal(HttpStatusCode.Unauthorized, ended.StatusCode);
    }

    [Fact]
    public async Task A_first_connection_that_fails_is_thrown_at_once()
    {
        using var client = new TrcClient(new Uri($"http://127.0.0.1:{TrcClientErrorTests.ClosedPort()}/"), Server.AdminToken);
        await Assert.ThrowsAsync<TrcConnectionException>(async () =>
        {
            await foreach (var _ in client.StreamEventsAsync(options: FastRetry))
            {
            }
        });
    }

    [Fact]
    public async Task Reconnecting_gives_up_after_the_configured_attempts()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var proxy = new TcpProxy(Server.Address.Host, Server.Address.Port);
        var viaProxy = Server.Client((await Server.Admin.CreateTokenAsync(org, "s", Roles.Viewer)).Token, proxy.Address);
        using var cts = new CancellationTokenSource(Patience);
        var received = Follow(viaProxy.StreamEventsAsync(new EventQuery(org), FastRetry with { MaxReconnectAttempts = 2 }, cts.Token));
        await NextOfTypeAsync(received.Reader, EventNames.TokenCreated, cts.Token);

        await proxy.DisposeAsync(); // nothing listens there any more

        await Assert.ThrowsAsync<TrcConnectionException>(async () =>
        {
            await foreach (var _ in received.Reader.ReadAllAsync(cts.Token))
            {
            }
        });
    }

    [Fact]
    public async Task Reconnects_that_open_the_stream_again_do_not_count_against_the_attempts()
    {
        // A quiet stream behind a proxy that closes every connection after a keep-alive: each
        // reconnect succeeds, so MaxReconnectAttempts (consecutive failures) is never reached.
        var connections = 0;
        await using var cutting = new CannedHttpServer(_ =>
        {
            Interlocked.Increment(ref connections);
            return CannedHttpServer.Response("200 OK", "text/event-stream", ": keep-alive\n\n");
        });
        using var client = new TrcClient(cutting.Address, Server.AdminToken);
        var options = new EventStreamOptions { InitialReconnectDelay = TimeSpan.FromMilliseconds(5), MaxReconnectDelay = TimeSpan.FromMilliseconds(20), MaxReconnectAttempts = 3 };
        using var cts = new CancellationTokenSource(Patience);
        var received = Follow(client.StreamEventsAsync(options: options, ct: cts.Token));
        while (Volatile.Read(ref connections) < 10 && !received.Reader.Completion.IsCompleted)
        {
            await Task.Delay(10, cts.Token);
        }
        Assert.False(received.Reader.Completion.IsCompleted, received.Reader.Completion.Exception?.ToString());
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in received.Reader.ReadAllAsync())
            {
            }
        });
    }

    [Fact]
    public async Task Cancelling_ends_the_stream()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        using var cts = new CancellationTokenSource();
        var received = Follow(owner.StreamEventsAsync(new EventQuery(org), FastRetry, cts.Token));
        await NextOfTypeAsync(received.Reader, EventNames.TokenCreated, new CancellationTokenSource(Patience).Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in received.Reader.ReadAllAsync())
            {
            }
        });
    }

    /// <summary>Runs the stream in the background into a channel; the stream's exception completes the channel.</summary>
    private static Channel<EventView> Follow(IAsyncEnumerable<EventView> stream)
    {
        var channel = Channel.CreateUnbounded<EventView>();
        _ = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in stream)
                {
                    await channel.Writer.WriteAsync(e);
                }
                channel.Writer.Complete();
            }
            catch (Exception e)
            {
                channel.Writer.Complete(e);
            }
        });
        return channel;
    }

    /// <summary>Reads until an event of <paramref name="type"/>; everything read is added to <paramref name="seen"/>.</summary>
    private static async Task<EventView> NextOfTypeAsync(ChannelReader<EventView> reader, string type, CancellationToken ct, List<EventView>? seen = null)
    {
        while (true)
        {
            var e = await reader.ReadAsync(ct);
            seen?.Add(e);
            if (e.Type == type)
            {
                return e;
            }
        }
    }
}
