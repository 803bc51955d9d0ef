using System.Net;
using System.Text;
using Trc.Client.Events;
using Trc.Client.Logs;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Testing;

namespace Trc.Client.Tests;

/// <summary>The node, instance and log methods of <see cref="TrcClient"/> against a real server.</summary>
public sealed class TrcClientNodeTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static readonly DateTimeOffset T0 = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private ClientTestServer Server => fixture.Server;

    private const string Manifest = """
        app = "shop"

        [processes.web]
        ports = [8443]
        memory = "256Mi"
        """;

    private static RegisterNodeRequest Node(string? name = null) => new(name ?? ServerFixture.NewName("node-"), 16L << 30, 4, "fake", "none", null, "client-test");

    /// <summary>An org with env prod and release 1 deployed after a node registered: (owner, org, instance).</summary>
    private async Task<(TrcClient Owner, string Org, InstanceView Instance)> RunningAsync()
    {
        await Server.Node.RegisterNodeAsync(Node());
        var org = ServerFixture.NewName();
        var owner = await Server.NewEnvAsync(org);
        await owner.DeployAsync(org, "shop", "prod", new DeployRequest(ClientTestServer.Image, Manifest));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var items = (await owner.ListInstancesAsync(org, "shop", "prod")).Items;
            if (items.Count == 1)
            {
                return (owner, org, items[0]);
            }
            Assert.True(DateTime.UtcNow < deadline, "no instance was scheduled");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task An_agent_registers_heartbeats_and_reads_what_its_node_runs()
    {
        var name = ServerFixture.NewName("node-");
        var node = await Server.Node.RegisterNodeAsync(Node(name));
        Assert.Equal((name, "ready", "client-test"), (node.Name, node.Status, node.AgentVersion));
        Assert.Equal(node.Id, (await Server.Node.RegisterNodeAsync(Node(name))).Id);
        await Server.Node.HeartbeatAsync(node.Id, new HeartbeatRequest(8L << 30, 4, []));
        Assert.Equal(node.Prefix, (await Server.Node.GetNodeAsync(node.Id)).Prefix);
        Assert.Contains((await Server.Admin.ListNodesAsync()).Items, n => n.Id == node.Id);

        var (_, _, instance) = await RunningAsync();
        var view = await Server.Node.GetNodeInstancesAsync(instance.NodeId);
        var spec = Assert.Single(view.Instances, i => i.Id == instance.Id);
        Assert.Equal((ClientTestServer.Image, 256L << 20), (spec.Image, spec.MemoryBytes));
        Assert.Equal([8443], spec.Ports);
        Assert.True((await Server.Node.GetNodeInstancesAsync(instance.NodeId, after: view.Position)).Position >= view.Position);

        var e = await Assert.ThrowsAsync<TrcApiException>(() => Server.Node.ListNodesAsync());
        Assert.Equal((HttpStatusCode.Forbidden, "forbidden"), (e.StatusCode, e.Code));
        var missing = await Assert.ThrowsAsync<TrcApiException>(() => Server.Node.HeartbeatAsync(Guid.NewGuid(), new HeartbeatRequest(1, 1, [])));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Secrets_come_as_the_exact_file_or_empty_when_the_release_has_none()
    {
        var (owner, org, instance) = await RunningAsync();
        Assert.Empty(await Server.Node.GetInstanceSecretsAsync(instance.NodeId, instance.Id));

        // On an env that runs a release, a secrets change rolls out release 2: same image, the new secrets.
        await owner.SetSecretsAsync(org, "shop", "prod", new Dictionary<string, byte[]> { ["KEY"] = [0, 1, 2, 255], ["NAME"] = "v"u8.ToArray() });
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        InstanceView? next = null;
        while (next is null)
        {
            next = (await owner.ListInstancesAsync(org, "shop", "prod")).Items.FirstOrDefault(i => i.Release == 2);
            Assert.True(DateTime.UtcNow < deadline, "release 2 was not scheduled");
            await Task.Delay(50);
        }
        var file = await Server.Node.GetInstanceSecretsAsync(next.NodeId, next.Id);
        Assert.Equal(await owner.RenderSecretsAsync(org, "shop", "prod"), file);
    }

    [Fact]
    public async Task A_secrets_answer_that_is_not_a_secrets_file_is_an_error_not_bytes()
    {
        await using var proxy = new CannedHttpServer(_ => CannedHttpServer.Response("200 OK", "text/html", "<html>captive portal</html>"));
        using var client = new TrcClient(proxy.Address, Server.NodeToken);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => client.GetInstanceSecretsAsync(Guid.NewGuid(), Guid.NewGuid()));
        Assert.Contains("not a secrets file", e.Message);
    }

    [Fact]
    public async Task State_reports_and_logs_reach_users()
    {
        var (owner, org, instance) = await RunningAsync();
        await Server.Node.ReportInstanceStateAsync(instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Running, "fd74:7263:0:1::9"));
        var listed = Assert.Single((await owner.ListInstancesAsync(org, "shop", "prod")).Items);
        Assert.Equal((InstanceStates.Running, "fd74:7263:0:1::9"), (listed.State, listed.Address));
        var bad = await Assert.ThrowsAsync<TrcApiException>(() => Server.Node.ReportInstanceStateAsync(instance.NodeId, instance.Id, new InstanceStateRequest("bogus")));
        Assert.Equal(("invalid_state", "state"), (bad.Code, bad.Field));

        await Server.Node.ShipLogsAsync(instance.NodeId, new LogBatchRequest([
            new LogLineRequest(instance.Id, "stdout", T0, "one"),
            new LogLineRequest(instance.Id, "stderr", T0.AddSeconds(1), "two"),
        ]));
        var page = await owner.GetLogsAsync(org, "shop", "prod");
        Assert.Equal(["one", "two"], page.Lines.Select(l => l.Line));
        Assert.Equal(["two"], (await owner.GetLogsAsync(org, "shop", "prod", new LogQuery(Since: "2025-03-01T12:00:01Z"))).Lines.Select(l => l.Line));
        Assert.Equal(["one"], (await owner.GetLogsAsync(org, "shop", "prod", new LogQuery(Instance: instance.Id, Process: "web", Limit: 1, After: 0))).Lines.Select(l => l.Line));
        Assert.Empty((await owner.GetLogsAsync(org, "shop", "prod", new LogQuery(After: page.NextCursor))).Lines);
        var refused = await Assert.ThrowsAsync<TrcApiException>(() => owner.GetLogsAsync(org, "shop", "prod", new LogQuery(Since: "last tuesday")));
        Assert.Equal(("invalid_query", "since"), (refused.Code, refused.Field));
    }

    [Fact]
    public async Task The_log_stream_follows_new_lines_from_a_cursor()
    {
        var (owner, org, instance) = await RunningAsync();
        await Server.Node.ShipLogsAsync(instance.NodeId, new LogBatchRequest([new LogLineRequest(instance.Id, "stdout", T0, "old")]));
        var cursor = (await owner.GetLogsAsync(org, "shop", "prod")).NextCursor;

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var lines = owner.StreamLogsAsync(org, "shop", "prod", new LogQuery(After: cursor), new EventStreamOptions { InitialReconnectDelay = TimeSpan.FromMilliseconds(50) }, cts.Token).GetAsyncEnumerator(cts.Token);
        var next = lines.MoveNextAsync();
        await Server.Node.ShipLogsAsync(instance.NodeId, new LogBatchRequest([new LogLineRequest(instance.Id, "stdout", T0, "new")]));
        Assert.True(await next);
        Assert.Equal(("new", instance.Id), (lines.Current.Line, lines.Current.Instance));
        Assert.True(lines.Current.Id > cursor);

        // From a time: the old line first.
        await using var since = owner.StreamLogsAsync(org, "shop", "prod", new LogQuery(Since: "2025-03-01T00:00:00Z"), null, cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await since.MoveNextAsync());
        Assert.Equal("old", since.Current.Line);
    }
}
