using System.Net;
using System.Threading.Channels;
using Trc.Core.Api;
using Trc.Edge.Proxy;
using Trc.Edge.Routing;

namespace Trc.Edge.Tests;

/// <summary>
/// The feed's logic around its source: a scripted source stands in for the control plane here (the
/// real one is exercised end to end in Trc.Cli.Tests' EdgeFedTests).
/// </summary>
public sealed class ControlPlaneFeedTests
{
    private static readonly EdgeListenPlan Plan = new() { Addresses = [IPAddress.Loopback], PortMap = new Dictionary<int, int> { [443] = 0 } };

    private static EdgeRoutesView View(long position, params string[] hosts) =>
        new(position, hosts.Select(h => new EdgeRouteView($"o/a/prod/{h}:443", "o", "a", "prod", h, 443, "tls_passthrough", "off", "web", 8443, null, [])).ToList());

    [Fact]
    public async Task A_failed_snapshot_keeps_the_routes_in_force_and_is_retried_until_it_applies()
    {
        await using var server = new EdgeServer();
        var source = new ScriptedSource { Next = View(5, "a.example.com", "b.example.com"), FailuresLeft = 1 };
        var feed = new ControlPlaneFeed(server, source, Plan);
        using var stop = new CancellationTokenSource();
        feed.Apply(View(1, "a.example.com"));
        var run = feed.RunAsync(stop.Token);

        await Until(() => feed.Applied == 1);
        Assert.Equal(1, feed.Position);
        Assert.Single(server.Table.Routes);

        source.Changes.Writer.TryWrite(5);
        await Until(() => feed.LastError is not null);
        Assert.Contains("control plane down", feed.LastError);
        Assert.Single(server.Table.Routes); // the routes in force stay

        await Until(() => feed.Applied == 2);
        Assert.Equal(5, feed.Position);
        Assert.Equal(2, server.Table.Routes.Count);
        Assert.Null(feed.LastError);
        Assert.Equal([5L, 5L], source.Asked); // both tries asked for the snapshot as of event 5

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task An_event_already_covered_by_the_snapshot_in_force_asks_for_nothing()
    {
        await using var server = new EdgeServer();
        var source = new ScriptedSource { Next = View(9, "a.example.com") };
        var feed = new ControlPlaneFeed(server, source, Plan);
        using var stop = new CancellationTokenSource();
        feed.Apply(View(7, "a.example.com"));
        var run = feed.RunAsync(stop.Token);
        await Until(() => feed.Applied == 1);

        source.Changes.Writer.TryWrite(6);
        source.Changes.Writer.TryWrite(7);
        source.Changes.Writer.TryWrite(9);
        await Until(() => feed.Applied == 2);
        Assert.Equal([9L], source.Asked);

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "not within 10 s");
            await Task.Delay(20);
        }
    }

    private sealed class ScriptedSource : IEdgeRouteSource
    {
        public Channel<long> Changes { get; } = Channel.CreateUnbounded<long>();

        public required EdgeRoutesView Next { get; init; }

        public int FailuresLeft { get; set; }

        public List<long> Asked { get; } = [];

        public Task<EdgeRoutesView> SnapshotAsync(long after, CancellationToken ct)
        {
            lock (Asked)
            {
                Asked.Add(after);
            }
            if (FailuresLeft > 0)
            {
                FailuresLeft--;
                throw new HttpRequestException("control plane down");
            }
            return Task.FromResult(Next);
        }

        public IAsyncEnumerable<long> ChangesAsync(long after, CancellationToken ct) => Changes.Reader.ReadAllAsync(ct);
    }
}
