using System.Net;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Core.Scheduling;

namespace Trc.ControlPlane.Tests;

/// <summary>
/// The scheduler running in the server, with agents played over HTTP (no VMs): each test has a
/// server of its own, so which nodes are ready is the test's doing. Rollouts with real agents are
/// Trc.Agent.Tests' FleetTests.
/// </summary>
public sealed class SchedulerTests
{
    private static async Task<List<EventView>> EventsAsync(TestServer server, string type)
    {
        var page = await TestServer.Send(server.Admin, HttpMethod.Get, $"{ApiPaths.Events}?type={type}&limit=1000").Json<EventPageView>();
        return page.Events.ToList();
    }

    private static ApiCall Deploy(HttpClient owner, string org, string manifest = Setup.Manifest) =>
        TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, manifest));

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task A_deploy_on_an_idle_fleet_is_scheduled_at_once_on_the_biggest_ready_node(Backend backend)
    {
        await using var server = await TestServer.StartAsync(backend);
        var small = await NodeAgent.RegisterAsync(server, "small", memory: 1L << 30);
        var big = await NodeAgent.RegisterAsync(server, "big", memory: 4L << 30);
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(server, org, deploy: false);
        await Deploy(owner, org).Expect(HttpStatusCode.Created);

        // Placement: among nodes already in use, best fit; on an idle fleet, the node with the most memory.
        var instance = Assert.Single(await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Count == 1, "one instance"));
        Assert.Equal((big.Id, "big", "web", 1, 1, InstanceStates.Scheduled, false), (instance.NodeId, instance.Node, instance.Process, instance.Release, instance.Deployment, instance.State, instance.StopRequested));
        var scheduled = Assert.Single(await EventsAsync(server, EventNames.InstanceScheduled));
        Assert.Equal((EventNames.EnvAggregate, big.Id.ToString("D")), (scheduled.AggregateType, scheduled.RoutingKey));
        Assert.Equal("deployment 1 (release 1): web 1 of 1", scheduled.Payload.GetProperty("reason").GetString());
        var bigView = await TestServer.Send(server.Admin, HttpMethod.Get, NodeApiPaths.Node(big.Id)).Json<NodeView>();
        Assert.Equal((1, 256L << 20, (4L << 30) - (4L << 30) / 100 * 5), (bigView.Instances, bigView.UsedMemoryBytes, bigView.AllocatableMemoryBytes));
        Assert.Equal(0, (await TestServer.Send(server.Admin, HttpMethod.Get, NodeApiPaths.Node(small.Id)).Json<NodeView>()).Instances);
        // The org's audit log shows who placed it.
        var orgEvents = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.OrgEvents(org) + "?type=" + EventNames.InstanceScheduled).Json<EventPageView>();
        Assert.Equal(DomainIds.V5(DomainIds.Org("trc-platform"), "scheduler"), Assert.Single(orgEvents.Events).ActorId);
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Without_a_ready_node_the_env_waits_says_so_in_its_logs_and_a_late_node_gets_the_instances(Backend backend)
    {
        await using var server = await TestServer.StartAsync(backend);
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(server, org, deploy: false);
        await Deploy(owner, org, Setup.Manifest + "\n[processes.web.scaling]\nmin = 2\nmax = 2\n").Expect(HttpStatusCode.Created);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        LogPageView logs;
        do
        {
            logs = await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.Logs(org, "shop", "prod")).Json<LogPageView>();
        }
        while (logs.Lines.Count == 0 && DateTime.UtcNow < deadline && await Task.Delay(50).ContinueWith(_ => true));
        var note = Assert.Single(logs.Lines);
        Assert.Equal(("system", "web", Guid.Empty, 1), (note.Stream, note.Process, note.Instance, note.Release));
        Assert.StartsWith("trc: deployment 1: an instance of web waits for a node: ", note.Line);
        Assert.Contains("no node is ready", note.Line);
        Assert.Empty((await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.Instances(org, "shop", "prod")).Json<ListView<InstanceView>>()).Items);

        var node = await NodeAgent.RegisterAsync(server);
        var instances = await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Count == 2, "two instances on the late node");
        Assert.All(instances, i => Assert.Equal(node.Id, i.NodeId));
        var view = await NodeAgent.InstancesAsync(server, node.Id);
        Assert.Equal(instances.Select(i => i.Id).Order(), view.Instances.Select(i => i.Id).Order());
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task A_redeploy_runs_beside_the_old_release_until_ready_then_the_old_one_is_stopped(Backend backend)
    {
        await using var server = await TestServer.StartAsync(backend, o => o with { Rollouts = new RolloutTimings(TimeSpan.FromMinutes(5), TimeSpan.Zero) });
        var node = await NodeAgent.RegisterAsync(server);
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(server, org, deploy: false);
        await Deploy(owner, org).Expect(HttpStatusCode.Created);
        var first = Assert.Single(await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Count == 1, "release 1"));
        await NodeAgent.ReportAsync(server, node.Id, first.Id, new InstanceStateRequest(InstanceStates.Running, "fd74:7263:0:1::2"));
        await WaitForDeploymentAsync(owner, org, 1, "completed");

        await Deploy(owner, org).Expect(HttpStatusCode.Created);
        var both = await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Count == 2 && i.Any(x => x.Release == 2), "release 2 beside release 1");
        Assert.False(both.Single(i => i.Release == 1).StopRequested); // it serves until release 2 is ready
        Assert.Equal(2, both.Single(i => i.Release == 2).Deployment);
        Assert.Empty(await EventsAsync(server, EventNames.InstanceStopRequested));

        var second = both.Single(i => i.Release == 2);
        await NodeAgent.ReportAsync(server, node.Id, second.Id, new InstanceStateRequest(InstanceStates.Running, "fd74:7263:0:1::3"));
        var done = await WaitForDeploymentAsync(owner, org, 2, "completed");
        Assert.NotNull(done.SwitchedAt);
        var stop = Assert.Single(await EventsAsync(server, EventNames.InstanceStopRequested));
        Assert.Equal(("deployment 2 (release 2) serves; drained for 0ms", first.Id, node.Id.ToString("D")),
            (stop.Payload.GetProperty("reason").GetString(), stop.Payload.GetProperty("instance_id").GetGuid(), stop.RoutingKey));
        Assert.Equal("replaced", (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Deployment(org, "shop", "prod", 1)).Json<DeploymentView>()).Status);
        var env = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Env(org, "shop", "prod")).Json<EnvView>();
        Assert.Equal((2, 2, 2, "completed"), (env.DeployedRelease, env.ActiveRelease, env.Deployment, env.Rollout));

        // The node runs only release 2 now; once the old instance reports stopped, users no longer see it.
        var view = await NodeAgent.InstancesAsync(server, node.Id, stop.Id);
        Assert.Equal(2, Assert.Single(view.Instances).Release);
        await NodeAgent.ReportAsync(server, node.Id, first.Id, new InstanceStateRequest(InstanceStates.Stopped));
        Assert.Equal(2, Assert.Single((await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.Instances(org, "shop", "prod")).Json<ListView<InstanceView>>()).Items).Release);
    }

    private static async Task<DeploymentView> WaitForDeploymentAsync(HttpClient owner, string org, int number, string status)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        DeploymentView d;
        do
        {
            d = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Deployment(org, "shop", "prod", number)).Json<DeploymentView>();
            if (d.Status == status)
            {
                return d;
            }
            await Task.Delay(50);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail($"deployment {number} is {d.Status}, not {status}: {d.FailureReason}");
        return d;
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task A_silent_node_gets_nothing_until_it_heartbeats_again(Backend backend)
    {
        var clock = new ShiftedClock();
        await using var server = await TestServer.StartAsync(backend, o => o with { Time = clock, SchedulerInterval = TimeSpan.FromMilliseconds(200) });
        var node = await NodeAgent.RegisterAsync(server);
        clock.Offset += TimeSpan.FromMinutes(1);
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(server, org, deploy: false);
        await Deploy(owner, org).Expect(HttpStatusCode.Created);
        // A few passes later, still nothing.
        var passes = server.Host.Scheduler.Passes;
        while (server.Host.Scheduler.Passes < passes + 3)
        {
            await Task.Delay(50);
        }
        Assert.Empty((await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.Instances(org, "shop", "prod")).Json<ListView<InstanceView>>()).Items);

        await NodeAgent.HeartbeatAsync(server, node.Id);
        Assert.Equal(node.Id, Assert.Single(await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Count == 1, "an instance after the heartbeat")).NodeId);
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Quick_redeploys_never_lose_a_race_to_the_scheduler(Backend backend)
    {
        await using var server = await TestServer.StartAsync(backend);
        await NodeAgent.RegisterAsync(server);
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(server, org, deploy: false);
        for (var i = 0; i < 8; i++)
        {
            await Deploy(owner, org).Expect(HttpStatusCode.Created);
            await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route($"quick{i}-{Guid.NewGuid().ToString("N")[..6]}.example.com")).Expect(HttpStatusCode.Created);
        }
        var live = await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Count(x => !x.StopRequested) == 1 && i.Single(x => !x.StopRequested).Release == 8, "one instance of release 8");
        Assert.All(live.Where(i => i.Release != 8), i => Assert.True(i.StopRequested));
    }

    [Fact]
    public async Task One_replica_leads_the_scheduler_and_another_takes_over_when_it_goes()
    {
        var schema = await TestPostgres.CreateSchemaAsync();
        var dir = Directory.CreateTempSubdirectory("trc-sched-").FullName;
        try
        {
            var a = await TestServer.StartAsync(Backend.Postgres, o => o with { Database = schema.ConnectionString, DataDirectory = Path.Combine(dir, "a"), SchedulerInterval = TimeSpan.FromMilliseconds(100) });
            var b = await TestServer.StartAsync(Backend.Postgres, o => o with
            {
                Database = schema.ConnectionString,
                DataDirectory = Path.Combine(dir, "b"),
                MasterKeyFile = Path.Combine(dir, "a", "master.key"),
                AdminTokenFile = a.Host.AdminTokenFile,
                NodeTokenFile = a.Host.NodeTokenFile,
                SchedulerInterval = TimeSpan.FromMilliseconds(100),
            });
            await Until(() => a.Host.Scheduler.IsLeading ^ b.Host.Scheduler.IsLeading, "exactly one replica leads");
            var (leader, follower) = a.Host.Scheduler.IsLeading ? (a, b) : (b, a);
            // Heartbeats through either replica renew the same lease.
            var node = await NodeAgent.RegisterAsync(follower, "shared", memory: 64L << 30);
            await NodeAgent.HeartbeatAsync(leader, node.Id);
            var org = Setup.OrgName();
            var owner = await Setup.ShopAsync(a, org, deploy: false);
            for (var release = 1; release <= 3; release++)
            {
                await Deploy(owner, org, Setup.Manifest + "\n[processes.web.scaling]\nmin = 3\nmax = 3\n").Expect(HttpStatusCode.Created);
            }
            await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Count(x => !x.StopRequested && x.Release == 3) == 3, "three instances of release 3");
            var passes = leader.Host.Scheduler.Passes;
            await Until(() => leader.Host.Scheduler.Passes >= passes + 3, "three more passes");
            Assert.Equal(0, follower.Host.Scheduler.Passes);
            var all = (await TestServer.Send(a.Admin, HttpMethod.Get, ApiPaths.Events + "?type=" + EventNames.InstanceScheduled + "&limit=1000").Json<EventPageView>()).Events;
            Assert.Equal(3, all.Count(e => e.Payload.GetProperty("release").GetInt32() == 3));

            // The leader goes: the other takes the lease and schedules the next deploy.
            await leader.DisposeAsync();
            await Until(() => follower.Host.Scheduler.IsLeading, "the other replica leads");
            await NodeAgent.HeartbeatAsync(follower, node.Id);
            var ownerB = follower == b ? await b.TokenAsync(org, Roles.Owner) : owner;
            await Deploy(ownerB, org, Setup.Manifest + "\n[processes.web.scaling]\nmin = 3\nmax = 3\n").Expect(HttpStatusCode.Created);
            await NodeAgent.WaitForInstancesAsync(ownerB, org, "prod", i => i.Count(x => !x.StopRequested && x.Release == 4) == 3, "three instances of release 4");
            await follower.DisposeAsync();
        }
        finally
        {
            await schema.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within 30 s: {what}");
            await Task.Delay(50);
        }
    }
}
