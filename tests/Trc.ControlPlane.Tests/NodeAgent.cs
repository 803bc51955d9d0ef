using System.Net;
using Trc.Core.Api;

namespace Trc.ControlPlane.Tests;

/// <summary>What a node agent does, over HTTP with the node token: the tests' stand-in for trc agent.</summary>
public static class NodeAgent
{
    public static string NewName(string prefix = "node") => $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    public static RegisterNodeRequest Request(string name, long memory = 64L << 30, string? region = null, string? version = "test-1") =>
        new(name, memory, 8, "fake", "none", region, version);

    public static Task<NodeView> RegisterAsync(TestServer server, string? name = null, long memory = 64L << 30, string? region = null) =>
        TestServer.Send(server.Node, HttpMethod.Post, NodeApiPaths.Nodes, Request(name ?? NewName(), memory, region)).Json<NodeView>();

    public static Task HeartbeatAsync(TestServer server, Guid node) =>
        TestServer.Send(server.Node, HttpMethod.Post, NodeApiPaths.Heartbeat(node), new HeartbeatRequest(1L << 30, 8, [])).Expect(HttpStatusCode.NoContent);

    public static Task<NodeInstancesView> InstancesAsync(TestServer server, Guid node, long after = 0) =>
        TestServer.Send(server.Node, HttpMethod.Get, NodeApiPaths.NodeInstances(node) + (after > 0 ? $"?after={after}" : "")).Json<NodeInstancesView>();

    public static Task ReportAsync(TestServer server, Guid node, Guid instance, InstanceStateRequest state) =>
        TestServer.Send(server.Node, HttpMethod.Post, NodeApiPaths.InstanceState(node, instance), state).Expect(HttpStatusCode.NoContent);

    /// <summary>Polls until <paramref name="until"/> holds for the env's instances (the scheduler runs in the background).</summary>
    public static async Task<IReadOnlyList<InstanceView>> WaitForInstancesAsync(HttpClient client, string org, string env, Func<IReadOnlyList<InstanceView>, bool> until, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        IReadOnlyList<InstanceView> items = [];
        while (DateTime.UtcNow < deadline)
        {
            items = (await TestServer.Send(client, HttpMethod.Get, NodeApiPaths.Instances(org, "shop", env)).Json<ListView<InstanceView>>()).Items;
            if (until(items))
            {
                return items;
            }
            await Task.Delay(50);
        }
        Assert.Fail($"timed out waiting for {what}; instances: {string.Join("; ", items.Select(i => $"{i.Process} r{i.Release} {i.State} stop={i.StopRequested} on {i.Node}"))}");
        return items;
    }

    /// <summary>
    /// An org with app shop, env prod and release 1 deployed, after a node registered: one instance of
    /// it scheduled. Other tests' nodes may be ready too, so the instance says which node it is on.
    /// </summary>
    public static async Task<(HttpClient Owner, InstanceView Instance)> RunningShopAsync(TestServer server, string org, string manifest = Setup.Manifest)
    {
        var owner = await Setup.ShopAsync(server, org, deploy: false);
        await RegisterAsync(server);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, manifest)).Expect(HttpStatusCode.Created);
        var instances = await WaitForInstancesAsync(owner, org, "prod", i => i.Count > 0, "an instance of release 1");
        return (owner, instances[0]);
    }
}

/// <summary>The system clock moved by a settable offset (timers stay real): tests step past leases and retention.</summary>
public sealed class ShiftedClock : TimeProvider
{
    public TimeSpan Offset { get; set; }

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Offset;
}
