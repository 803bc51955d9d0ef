using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using Trc.Agent.Host;
using Trc.Agent.Runtime.Fake;
using Trc.Client;
using Trc.Client.Events;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.ControlPlane.Nodes;
using Trc.Testing;
using Xunit.Abstractions;

namespace Trc.Agent.Tests.Host;

/// <summary>
/// The scheduler across nodes, end to end: several in-process agents (the fake driver; each its own
/// node name, fake host and data dir) against one real control plane with test timings. Instances
/// get fake addresses and the test decides each health check (AgentOptions.HealthProbeOverride),
/// so rollouts' health gates and the edge's backends (GET /v1/edge/routes) are the real ones.
/// Every wait polls against a generous deadline; no sleep is an assertion. The only fixed windows
/// are the "nothing more happens" checks, a few scheduler intervals long.
/// </summary>
public sealed class FleetTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(4); // heartbeats every 300 ms: ~13 missed before a node counts as lost (2 s flaked under a loaded CI host)
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan Drain = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan HealthTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Heartbeat = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private const string Org = "acme";
    private const string App = "shop";
    private const string Env = "prod";
    private const int Port = 8443;

    private readonly string _dir = Directory.CreateTempSubdirectory("trc-fleet-").FullName;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly ConcurrentQueue<string> _log = new();
    private readonly List<FleetNode> _nodes = [];
    private readonly ConcurrentDictionary<Guid, int> _probes = new();
    private readonly ConcurrentDictionary<Guid, TimeSpan> _firstHealthy = new();
    private volatile Func<InstanceSpecView, int, bool> _passes = (_, _) => true;
    private TestControlPlane _server = null!;
    private TrcClient _admin = null!;

    public async Task InitializeAsync()
    {
        _server = await TestControlPlane.StartAsync(configure: o => TestControlPlane.WithScheduler(o, Lease, Interval, HealthTimeout, Drain));
        _admin = new TrcClient(_server.Address, _server.AdminToken);
        await _admin.CreateOrgAsync(Org);
        await _admin.CreateAppAsync(Org, App);
        await _admin.CreateEnvAsync(Org, App, Env);
    }

    public async Task DisposeAsync()
    {
        try
        {
            output.WriteLine(await DescribeAsync());
        }
        catch (Exception e)
        {
            output.WriteLine("(cannot describe the fleet: " + e.Message + ")");
        }
        foreach (var node in _nodes)
        {
            await node.StopAsync();
        }
        foreach (var host in _nodes.Select(n => n.Host).Distinct())
        {
            foreach (var vm in host.Running)
            {
                host.Crash(vm); // ends the fake guests' tasks
            }
        }
        output.WriteLine("agent log (last 400 lines):");
        foreach (var line in _log.TakeLast(400))
        {
            output.WriteLine(line);
        }
        _admin.Dispose();
        await _server.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    // ---- the tests ----------------------------------------------------------------------------------

    [Fact]
    public async Task A_rollout_starts_beside_the_old_release_switches_once_all_are_healthy_and_stops_the_old_after_the_drain()
    {
        await StartFleetAsync("node-a", "node-b", "node-c");
        var r1 = await DeployAsync('a');
        Assert.Equal(1, r1.Deployment);
        await WaitForDeploymentAsync(1, RolloutStatuses.Completed);
        var first = await LiveAsync();
        Assert.Equal(2, first.Count);
        Assert.All(first, i => Assert.Equal(1, i.Release));
        Assert.Equal(2, first.Select(i => i.NodeId).Distinct().Count()); // spread
        await WaitForBackendsAsync(first.Select(i => i.Id), "release 1's instances");

        // Release 2: the first of its instances probed passes its 2nd check, the other its 3rd
        // (below the 3 failures that make an instance unhealthy), so they turn healthy apart.
        var order = new ConcurrentDictionary<Guid, int>();
        var seen = 0;
        _passes = (i, n) => i.Release != 2 || n > order.GetOrAdd(i.Id, _ => Interlocked.Increment(ref seen));
        await using var edge = new EdgeSampler(this);
        var r2 = await DeployAsync('b');
        Assert.Equal(2, r2.Deployment);
        var d2 = await WaitForDeploymentAsync(2, RolloutStatuses.Completed);
        Assert.NotNull(d2.SwitchedAt);
        var scheduled = await ScheduledAsync();
        var fresh = scheduled.Where(s => s.Payload.Deployment == 2).Select(s => s.Payload.InstanceId).ToList();
        Assert.Equal(2, fresh.Count);
        await WaitForBackendsAsync(fresh, "release 2's instances");
        await WaitUntilAsync(() => Task.FromResult(RunningEverywhere().SetEquals(fresh)), "only release 2's VMs to run");
        var samples = await edge.StopAsync();

        // The switch came after every instance of release 2 was healthy, and before any of release 1 was asked to stop.
        var switched = Assert.Single(await EventsAsync(EventNames.TrafficSwitched), e => Payload<TrafficSwitched>(e).Deployment == 2);
        var healthy = await EventsAsync(EventNames.InstanceStateChanged);
        foreach (var id in fresh)
        {
            var ready = healthy.FirstOrDefault(e => e.AggregateId == id && Payload<InstanceStateChanged>(e).State == InstanceStates.Healthy);
            Assert.True(ready is not null && ready.Id < switched.Id, $"instance {id} of release 2 was not healthy before traffic switched to it (event {ready?.Id} vs switch {switched.Id})");
        }
        Assert.True(_probes[fresh[0]] >= 2 || _probes[fresh[1]] >= 2, "release 2 passed its health gate without the failing checks the test asked for");
        var stops = await EventsAsync(EventNames.InstanceStopRequested);
        foreach (var old in first)
        {
            var stop = Assert.Single(stops, e => Payload<InstanceStopRequested>(e).InstanceId == old.Id);
            Assert.True(stop.Id > switched.Id, $"release 1's instance {old.Id} was asked to stop (event {stop.Id}) before traffic switched (event {switched.Id})");
            Assert.True(stop.OccurredAt - switched.OccurredAt >= Drain,
                $"release 1's instance {old.Id} was asked to stop {(stop.OccurredAt - switched.OccurredAt).TotalMilliseconds:0} ms after the switch, before the {Drain.TotalMilliseconds:0} ms drain");
        }
        Assert.DoesNotContain(stops, e => fresh.Contains(Payload<InstanceStopRequested>(e).InstanceId));
        var completed = Assert.Single(await EventsAsync(EventNames.DeploymentCompleted), e => Payload<DeploymentCompleted>(e).Deployment == 2);
        Assert.True(stops.Where(e => first.Any(i => i.Id == Payload<InstanceStopRequested>(e).InstanceId)).All(e => e.Id < completed.Id),
            "deployment 2 completed before release 1's instances were asked to stop");

        // The edge, sampled throughout: never empty, one release at a time, only instances that had
        // passed their check, release 2 only once all of it had, and never release 1 again after.
        var byBackend = scheduled.ToDictionary(s => Backend(s.Payload.InstanceId), s => s.Payload);
        var allFreshHealthy = fresh.Max(id => _firstHealthy[id]);
        TimeSpan? firstNew = null;
        Assert.NotEmpty(samples);
        foreach (var (at, backends) in samples)
        {
            Assert.True(backends.Count > 0, $"the edge had no backend at {at.TotalSeconds:0.000} s");
            var instances = backends.Select(b => byBackend.TryGetValue(b, out var s) ? s : throw new Xunit.Sdk.XunitException($"the edge lists {b}, which is no instance of the app")).ToList();
            Assert.True(instances.Select(i => i.Release).Distinct().Count() == 1, $"the edge mixed releases at {at.TotalSeconds:0.000} s: {string.Join(", ", instances.Select(i => $"{i.InstanceId} (release {i.Release})"))}");
            foreach (var i in instances)
            {
                Assert.True(_firstHealthy.TryGetValue(i.InstanceId, out var h) && h < at, $"the edge listed instance {i.InstanceId} (release {i.Release}) at {at.TotalSeconds:0.000} s before it passed a health check");
            }
            if (instances[0].Release == 2)
            {
                Assert.True(allFreshHealthy < at, $"the edge listed release 2 at {at.TotalSeconds:0.000} s before all of it was healthy ({allFreshHealthy.TotalSeconds:0.000} s)");
                Assert.Equal(2, instances.Count);
                firstNew ??= at;
            }
            else
            {
                Assert.True(firstNew is null, $"the edge went back to release 1 at {at.TotalSeconds:0.000} s after it listed release 2 at {firstNew?.TotalSeconds:0.000} s");
                Assert.Equal(2, instances.Count);
            }
        }
        Assert.Contains(samples, s => byBackend[s.Backends[0]].Release == 1);
        Assert.Contains(samples, s => byBackend[s.Backends[0]].Release == 2);
        Assert.Equal("replaced", (await _admin.GetDeploymentAsync(Org, App, Env, 1)).Status);
    }

    [Fact]
    public async Task A_release_that_fails_its_health_gate_fails_its_deployment_and_the_one_before_keeps_serving()
    {
        await StartFleetAsync("node-a", "node-b", "node-c");
        await DeployAsync('a');
        await WaitForDeploymentAsync(1, RolloutStatuses.Completed);
        var first = await LiveAsync();
        await WaitForBackendsAsync(first.Select(i => i.Id), "release 1's instances");

        _passes = (i, _) => i.Release != 2;
        await using var edge = new EdgeSampler(this);
        await DeployAsync('b');
        var d2 = await WaitForDeploymentAsync(2, RolloutStatuses.Failed);
        Assert.NotNull(d2.FailureReason);
        Assert.Contains("failed its health check", d2.FailureReason);
        Assert.Null(d2.SwitchedAt);
        var fresh = (await ScheduledAsync()).Where(s => s.Payload.Deployment == 2).Select(s => s.Payload.InstanceId).ToList();
        Assert.NotEmpty(fresh);
        await WaitUntilAsync(() => Task.FromResult(RunningEverywhere().SetEquals(first.Select(i => i.Id))), "release 2's VMs to stop and release 1's to keep running");

        // Nothing more: for 10 scheduler intervals release 2 is not retried and release 1 is not touched.
        await Task.Delay(Interval * 10);
        var samples = await edge.StopAsync();
        var stops = (await EventsAsync(EventNames.InstanceStopRequested)).Select(e => Payload<InstanceStopRequested>(e).InstanceId).ToList();
        foreach (var old in first)
        {
            Assert.True(!stops.Contains(old.Id), $"release 1's instance {old.Id} was asked to stop although release 2 failed");
        }
        Assert.All(fresh, id => Assert.Contains(id, stops));
        Assert.Equal(fresh.Count, (await ScheduledAsync()).Count(s => s.Payload.Deployment == 2));
        Assert.True(RunningEverywhere().SetEquals(first.Select(i => i.Id)), "release 1's VMs are the ones running");
        var env = await _admin.GetEnvAsync(Org, App, Env);
        Assert.Equal(1, env.ActiveRelease);
        Assert.Equal(RolloutStatuses.Failed, env.Rollout);
        Assert.Equal(RolloutStatuses.Completed, (await _admin.GetDeploymentAsync(Org, App, Env, 1)).Status);

        var release1 = first.Select(i => Backend(i.Id)).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(samples);
        foreach (var (at, backends) in samples)
        {
            Assert.True(backends.SequenceEqual(release1), $"the edge listed {string.Join(", ", backends)} at {at.TotalSeconds:0.000} s; only release 1's {string.Join(", ", release1)} serve");
        }
    }

    [Fact]
    public async Task Rollback_rolls_out_a_copy_of_the_release_before_and_completes()
    {
        await StartFleetAsync("node-a", "node-b", "node-c");
        var r1 = await DeployAsync('a');
        await WaitForDeploymentAsync(1, RolloutStatuses.Completed);
        var r2 = await DeployAsync('b', memory: "192Mi");
        await WaitForDeploymentAsync(2, RolloutStatuses.Completed);

        var rollback = await _admin.RollbackAsync(Org, App, Env);
        Assert.Equal(3, rollback.Number);
        Assert.Equal(3, rollback.Release);
        Assert.Equal(DeploymentKinds.Rollback, rollback.Kind);
        await WaitForDeploymentAsync(3, RolloutStatuses.Completed);

        var r3 = await _admin.GetReleaseAsync(Org, App, Env, 3);
        Assert.Equal(r1.ImageDigest, r3.ImageDigest);
        Assert.Equal(r1.Manifest.GetRawText(), r3.Manifest.GetRawText());
        Assert.NotEqual(r2.Manifest.GetRawText(), r3.Manifest.GetRawText());
        var live = await LiveAsync();
        Assert.Equal(2, live.Count);
        Assert.All(live, i => Assert.Equal(3, i.Release));
        Assert.Equal(2, live.Select(i => i.NodeId).Distinct().Count());
        await WaitForBackendsAsync(live.Select(i => i.Id), "release 3's instances");
        await WaitUntilAsync(() => Task.FromResult(RunningEverywhere().SetEquals(live.Select(i => i.Id))), "only release 3's VMs to run");
        var env = await _admin.GetEnvAsync(Org, App, Env);
        Assert.Equal(3, env.ActiveRelease);
        Assert.Equal(3, env.DeployedRelease);
    }

    [Fact]
    public async Task Setting_secrets_on_a_running_env_replaces_every_instance_exactly_once()
    {
        await StartFleetAsync("node-a", "node-b", "node-c");
        var r1 = await DeployAsync('a');
        await WaitForDeploymentAsync(1, RolloutStatuses.Completed);
        var first = await LiveAsync();

        var secrets = await _admin.SetSecretsAsync(Org, App, Env, new Dictionary<string, byte[]> { ["API_KEY"] = Encoding.UTF8.GetBytes("s3cret") });
        Assert.Equal(1, secrets.Version);
        var deployment = (await _admin.ListDeploymentsAsync(Org, App, Env)).Items[0];
        Assert.Equal(2, deployment.Number);
        Assert.Equal(DeploymentKinds.Secrets, deployment.Kind);
        await WaitForDeploymentAsync(2, RolloutStatuses.Completed);
        var release = await _admin.GetReleaseAsync(Org, App, Env, deployment.Release);
        Assert.Equal(1, release.SecretsVersion);
        Assert.Equal(r1.ImageDigest, release.ImageDigest);

        var live = await LiveAsync();
        await WaitUntilAsync(() => Task.FromResult(RunningEverywhere().SetEquals(live.Select(i => i.Id))), "only the new instances' VMs to run");
        var scheduled = await ScheduledAsync();
        Assert.Equal(2, scheduled.Count(s => s.Payload.Deployment == 1));
        Assert.Equal(2, scheduled.Count(s => s.Payload.Deployment == 2));
        Assert.Equal(4, scheduled.Count);
        Assert.True(live.Select(i => i.Id).ToHashSet().SetEquals(scheduled.Where(s => s.Payload.Deployment == 2).Select(s => s.Payload.InstanceId)),
            "the instances running are the secrets deployment's");
        var stops = (await EventsAsync(EventNames.InstanceStopRequested)).Select(e => Payload<InstanceStopRequested>(e).InstanceId).ToList();
        Assert.Equal(2, stops.Count);
        foreach (var old in first)
        {
            Assert.Equal(1, stops.Count(s => s == old.Id));
        }
        var starts = _nodes.Select(n => n.Host).Distinct().SelectMany(h => h.Starts).GroupBy(s => s.InstanceId).ToList();
        Assert.Equal(4, starts.Count);
        Assert.All(starts, g => Assert.True(g.Count() == 1, $"instance {g.Key} started {g.Count()} times"));
        var states = (await EventsAsync(EventNames.InstanceStateChanged)).Select(Payload<InstanceStateChanged>).ToList();
        Assert.All(states, s => Assert.Equal(0, s.Restarts));
    }

    [Fact]
    public async Task A_node_that_goes_silent_is_declared_lost_and_its_instance_is_replaced_on_another_node()
    {
        var loss = await LoseANodeAsync();
        Assert.NotEqual(loss.Victim.Id, loss.Replacement.NodeId);
        Assert.NotEqual(loss.Survivor.NodeId, loss.Replacement.NodeId);
        var lost = Assert.Single(await EventsAsync(EventNames.NodeLost));
        Assert.Equal(loss.Victim.Id, lost.AggregateId);
        Assert.True(loss.Victim.Host.IsRunning(loss.Moved.ToString("D")), "nobody could stop the VM of the lost node");
        // Only the instance of the lost node moved.
        var stops = (await EventsAsync(EventNames.InstanceStopRequested)).Select(e => Payload<InstanceStopRequested>(e).InstanceId).ToList();
        Assert.Equal([loss.Moved], stops);
    }

    [Fact]
    public async Task A_lost_node_that_comes_back_stops_what_moved_away_so_nothing_runs_twice()
    {
        var loss = await LoseANodeAsync();
        var back = await StartNodeAsync(loss.Victim.Name, loss.Victim.Host);
        Assert.Equal(loss.Victim.Id, back.Id);
        var moved = loss.Moved.ToString("D");
        await WaitUntilAsync(() => Task.FromResult(!loss.Victim.Host.IsRunning(moved)), "the returning agent to stop the VM that moved away");
        Assert.Contains(loss.Victim.Host.EventsOf(moved), e => e.Kind == FakeVmEventKind.StopRequested); // stopped by its agent, not lost
        await WaitUntilAsync(async () => (await NodeAsync(back.Id)).Status == NodeStatuses.Ready, "the node to be ready again");
        Assert.Single(await EventsAsync(EventNames.NodeRecovered), e => e.AggregateId == back.Id);

        // What moved away stays away: a few scheduler intervals later, one VM per wanted instance.
        await Task.Delay(Interval * 10);
        var live = await LiveAsync();
        Assert.Equal(2, live.Count);
        Assert.True(live.Select(i => i.Id).ToHashSet().SetEquals([loss.Survivor.Id, loss.Replacement.InstanceId]), "the survivor and the replacement are the live instances");
        Assert.True(RunningEverywhere().SetEquals([loss.Survivor.Id, loss.Replacement.InstanceId]),
            $"VMs running across the fleet: {string.Join(", ", RunningEverywhere())}; wanted: {loss.Survivor.Id}, {loss.Replacement.InstanceId}");
        Assert.Equal(3, (await ScheduledAsync()).Count);
        Assert.DoesNotContain(loss.Moved, back.Agent.Instances);
        await WaitForBackendsAsync([loss.Survivor.Id, loss.Replacement.InstanceId], "the survivor and the replacement");
    }

    [Fact]
    public async Task Draining_a_node_moves_its_instances_once_their_replacements_are_healthy()
    {
        await StartFleetAsync("node-a", "node-b", "node-c");
        await DeployAsync('a');
        await WaitForDeploymentAsync(1, RolloutStatuses.Completed);
        var first = await LiveAsync();
        await WaitForBackendsAsync(first.Select(i => i.Id), "release 1's instances");
        var drained = first[0];
        var survivor = first[1];

        await using var edge = new EdgeSampler(this);
        var node = await _admin.SetNodeStateAsync(drained.NodeId, NodeAdminStates.Draining, "maintenance");
        Assert.Equal(NodeAdminStates.Draining, node.AdminState);
        Assert.Equal(NodeStatuses.Draining, node.Status);
        InstanceScheduled? replacement = null;
        await WaitUntilAsync(async () =>
        {
            replacement = (await ScheduledAsync()).Select(s => s.Payload).FirstOrDefault(s => s.InstanceId != drained.Id && s.InstanceId != survivor.Id);
            return replacement is not null;
        }, "a replacement to be scheduled");
        await WaitForBackendsAsync([survivor.Id, replacement!.InstanceId], "the survivor and the replacement");
        await WaitUntilAsync(() => Task.FromResult(RunningEverywhere().SetEquals([survivor.Id, replacement.InstanceId])), "the drained instance's VM to stop");
        var samples = await edge.StopAsync();

        Assert.NotEqual(drained.NodeId, replacement.NodeId);
        Assert.NotEqual(survivor.NodeId, replacement.NodeId); // spread over the nodes that take instances
        var healthy = (await EventsAsync(EventNames.InstanceStateChanged))
            .First(e => e.AggregateId == replacement.InstanceId && Payload<InstanceStateChanged>(e).State == InstanceStates.Healthy);
        var stop = Assert.Single(await EventsAsync(EventNames.InstanceStopRequested));
        Assert.Equal(drained.Id, Payload<InstanceStopRequested>(stop).InstanceId);
        Assert.True(healthy.Id < stop.Id, $"the drained instance was asked to stop (event {stop.Id}) before its replacement was healthy (event {healthy.Id})");
        Assert.Equal(3, (await ScheduledAsync()).Count);
        Assert.NotEmpty(samples);
        foreach (var (at, backends) in samples)
        {
            Assert.True(backends.Count >= 2, $"the edge had {backends.Count} backend(s) at {at.TotalSeconds:0.000} s while the node drained; it never goes below 2");
            foreach (var id in new[] { drained.Id, survivor.Id, replacement.InstanceId }.Where(id => backends.Contains(Backend(id))))
            {
                Assert.True(_firstHealthy.TryGetValue(id, out var h) && h < at, $"the edge listed instance {id} at {at.TotalSeconds:0.000} s before it passed a health check");
            }
            Assert.True(backends.All(b => b == Backend(drained.Id) || b == Backend(survivor.Id) || b == Backend(replacement.InstanceId)), $"the edge listed {string.Join(", ", backends)}");
        }

        var active = await _admin.SetNodeStateAsync(drained.NodeId, NodeAdminStates.Active);
        Assert.Equal(NodeAdminStates.Active, active.AdminState);
        await WaitUntilAsync(async () => (await NodeAsync(drained.NodeId)).Status == NodeStatuses.Ready, "the undrained node to be ready");
        // Undraining moves nothing back.
        await Task.Delay(Interval * 5);
        Assert.Equal(3, (await ScheduledAsync()).Count);
    }

    // ---- node loss ----------------------------------------------------------------------------------

    private sealed record NodeLoss(FleetNode Victim, Guid Moved, InstanceView Survivor, InstanceScheduled Replacement);

    /// <summary>Deploys two instances on three nodes, takes one instance's agent away, and waits for the replacement.</summary>
    private async Task<NodeLoss> LoseANodeAsync()
    {
        await StartFleetAsync("node-a", "node-b", "node-c");
        await DeployAsync('a');
        await WaitForDeploymentAsync(1, RolloutStatuses.Completed);
        var first = await LiveAsync();
        await WaitForBackendsAsync(first.Select(i => i.Id), "release 1's instances");
        var moved = first[0];
        var survivor = first[1];
        var victim = _nodes.Single(n => n.Id == moved.NodeId);

        // The agent goes away (its heartbeats stop), leaving its VM running, as a crashed agent or a cut network would.
        await victim.StopAsync();
        var silentSince = _clock.Elapsed;
        Assert.True(victim.Host.IsRunning(moved.Id.ToString("D")), "the agent left its VM running");

        InstanceScheduled? replacement = null;
        await WaitUntilAsync(async () =>
        {
            replacement ??= (await ScheduledAsync()).Select(s => s.Payload).FirstOrDefault(s => s.InstanceId != moved.Id && s.InstanceId != survivor.Id);
            return replacement is not null && (await NodeAsync(victim.Id)).Status == NodeStatuses.Lost;
        }, "the node to be lost and its instance replaced");
        var took = _clock.Elapsed - silentSince;
        var bound = Lease + Interval * 5 + TimeSpan.FromSeconds(5);
        Assert.True(took <= bound, $"the node was declared lost and its instance replaced {took.TotalSeconds:0.0} s after its agent went away; the bound is {bound.TotalSeconds:0.0} s (lease + 5 intervals + slack)");
        Assert.Equal(1, replacement!.Deployment);
        Assert.Equal(1, replacement.Release);
        await WaitForBackendsAsync([survivor.Id, replacement.InstanceId], "the survivor and the replacement");
        return new NodeLoss(victim, moved.Id, survivor, replacement);
    }

    // ---- the fleet ----------------------------------------------------------------------------------

    private sealed class FleetNode(string name, FakeHost host, NodeAgent agent, TrcClient client, CancellationTokenSource stop, Task run, Guid id)
    {
        public string Name { get; } = name;

        public FakeHost Host { get; } = host;

        public NodeAgent Agent { get; } = agent;

        public Guid Id { get; } = id;

        private bool _stopped;

        /// <summary>Cancels the agent (its VMs keep running) and waits for it to end.</summary>
        public async Task StopAsync()
        {
            if (_stopped)
            {
                return;
            }
            _stopped = true;
            await stop.CancelAsync();
            try
            {
                await run.WaitAsync(Patience);
            }
            finally
            {
                stop.Dispose();
                client.Dispose();
            }
        }
    }

    private async Task StartFleetAsync(params string[] names)
    {
        foreach (var name in names)
        {
            await StartNodeAsync(name);
        }
        await WaitUntilAsync(async () =>
        {
            var nodes = (await _admin.ListNodesAsync()).Items;
            return names.All(n => nodes.Any(x => x.Name == n && x.Status == NodeStatuses.Ready));
        }, "every node to be ready");
    }

    /// <summary>An agent for node <paramref name="name"/> on <paramref name="host"/> (a new fake host when null), its data in its own directory.</summary>
    private async Task<FleetNode> StartNodeAsync(string name, FakeHost? host = null)
    {
        host ??= new FakeHost();
        var dataDir = Path.Combine(_dir, name);
        var launcher = new FakeLauncher(Path.Combine(dataDir, "instances")) { Addresses = true };
        var options = new AgentOptions
        {
            NodeName = name,
            DataDir = dataDir,
            MemoryBytes = 4L << 30,
            HeartbeatInterval = Heartbeat,
            StopGrace = TimeSpan.FromMilliseconds(200),
            ResyncInterval = TimeSpan.FromSeconds(5),
            Restart = new RestartPolicy { InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(500) },
            HealthProbeOverride = ProbeAsync,
        };
        var client = new TrcClient(_server.Address, _server.NodeToken);
        var agent = new NodeAgent(options, client, new FakeDriver(host) { StopMargin = TimeSpan.FromMilliseconds(500) }, _ => launcher,
            line => _log.Enqueue($"{_clock.Elapsed.TotalSeconds,8:0.000} {name}: {line}"));
        var stop = new CancellationTokenSource();
        var run = Task.Run(() => agent.RunAsync(stop.Token));
        var registered = await agent.Registered.WaitAsync(Patience);
        var node = new FleetNode(name, host, agent, client, stop, run, registered.Id);
        _nodes.Add(node);
        return node;
    }

    /// <summary>The test's health check: records each probe and asks <see cref="_passes"/>.</summary>
    private Task<(bool Healthy, string Detail)> ProbeAsync(InstanceSpecView instance, HealthcheckView check, IPAddress address, CancellationToken ct)
    {
        if (!address.Equals(FakeLauncher.FakeAddress(instance.Id)))
        {
            return Task.FromResult((false, $"probed at {address}, not the instance's address"));
        }
        var n = _probes.AddOrUpdate(instance.Id, 1, (_, c) => c + 1);
        if (_passes(instance, n))
        {
            _firstHealthy.TryAdd(instance.Id, _clock.Elapsed);
            return Task.FromResult((true, "connected (test)"));
        }
        return Task.FromResult((false, $"port {check.Port} refused the connection (test: check {n} of release {instance.Release})"));
    }

    /// <summary>Every VM running on any host of the fleet.</summary>
    private HashSet<Guid> RunningEverywhere() => _nodes.Select(n => n.Host).Distinct().SelectMany(h => h.Running).Select(Guid.Parse).ToHashSet();

    // ---- the control plane --------------------------------------------------------------------------

    private static string Image(char digest) => "registry.example.com/shop@sha256:" + new string(digest, 64);

    private static string Manifest(string memory) => $$"""
        app = "{{App}}"

        [processes.web]
        ports = [{{Port}}]
        cpu = 0.25
        memory = "{{memory}}"

        [processes.web.scaling]
        min = 2
        max = 2

        [processes.web.healthcheck]
        tcp = {{Port}}
        interval = "1s"
        timeout = "500ms"

        [[routes]]
        hostname = "shop.example.com"
        backend_port = {{Port}}
        """;

    private Task<ReleaseView> DeployAsync(char digest, string memory = "128Mi") =>
        _admin.DeployAsync(Org, App, Env, new DeployRequest(Image(digest), Manifest(memory)));

    private async Task<DeploymentView> WaitForDeploymentAsync(int number, string status)
    {
        DeploymentView? deployment = null;
        await WaitUntilAsync(async () =>
        {
            deployment = await _admin.GetDeploymentAsync(Org, App, Env, number);
            if (deployment.Status != status && deployment.Status is RolloutStatuses.Failed or RolloutStatuses.Completed or "superseded" or "replaced")
            {
                Assert.Fail($"deployment {number} is {deployment.Status}, not {status}{(deployment.FailureReason is { } why ? ": " + why : "")}\n{await DescribeAsync()}");
            }
            return deployment.Status == status;
        }, $"deployment {number} to be {status}");
        return deployment!;
    }

    /// <summary>The env's instances not asked to stop.</summary>
    private async Task<List<InstanceView>> LiveAsync() => [.. (await _admin.ListInstancesAsync(Org, App, Env)).Items.Where(i => !i.StopRequested).OrderBy(i => i.Id)];

    private async Task<NodeView> NodeAsync(Guid id) => (await _admin.ListNodesAsync()).Items.Single(n => n.Id == id);

    private static string Backend(Guid instance) => $"[{FakeLauncher.FakeAddress(instance)}]:{Port}";

    private async Task<IReadOnlyList<string>> BackendsAsync() => (await _admin.GetEdgeRoutesAsync()).Routes.Single(r => r.App == App).Backends;

    private async Task WaitForBackendsAsync(IEnumerable<Guid> instances, string what)
    {
        var wanted = instances.Select(Backend).Order(StringComparer.Ordinal).ToList();
        await WaitUntilAsync(async () => (await BackendsAsync()).SequenceEqual(wanted), $"the edge's backends to be {what}");
    }

    private async Task<List<EventView>> EventsAsync(params string[] types)
    {
        var all = new List<EventView>();
        long after = 0;
        while (true)
        {
            var page = await _admin.GetEventsAsync(new EventQuery(After: after, Limit: 1000, Types: types));
            all.AddRange(page.Events);
            if (page.Events.Count < 1000)
            {
                return all;
            }
            after = page.NextCursor;
        }
    }

    private static T Payload<T>(EventView e) => EventJson.Deserialize<T>(e.Payload.GetRawText());

    private async Task<List<(long Id, InstanceScheduled Payload)>> ScheduledAsync() =>
        [.. (await EventsAsync(EventNames.InstanceScheduled)).Select(e => (e.Id, Payload<InstanceScheduled>(e)))];

    private async Task WaitUntilAsync(Func<Task<bool>> done, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!await done())
        {
            if (watch.Elapsed > Patience)
            {
                Assert.Fail($"timed out after {Patience.TotalSeconds:0} s waiting for {what}\n{await DescribeAsync()}");
            }
            await Task.Delay(50);
        }
    }

    /// <summary>The fleet's story so far, for failure messages: nodes, deployments, instances, and the scheduler's and nodes' events.</summary>
    private async Task<string> DescribeAsync()
    {
        var text = new StringBuilder();
        text.AppendLine($"at {_clock.Elapsed.TotalSeconds:0.000} s; nodes:");
        foreach (var n in (await _admin.ListNodesAsync()).Items)
        {
            text.AppendLine($"  {n.Name} {n.Id} {n.Status} ({n.AdminState}) {n.StatusReason}; VMs: {string.Join(", ", _nodes.Where(x => x.Id == n.Id).Select(x => x.Host).Distinct().SelectMany(h => h.Running))}");
        }
        text.AppendLine("deployments:");
        foreach (var d in (await _admin.ListDeploymentsAsync(Org, App, Env)).Items)
        {
            text.AppendLine($"  {d.Number} release {d.Release} {d.Kind} {d.Status} {d.FailureReason}");
        }
        text.AppendLine("instances:");
        foreach (var i in (await _admin.ListInstancesAsync(Org, App, Env)).Items)
        {
            text.AppendLine($"  {i.Id} release {i.Release} deployment {i.Deployment} on {i.Node}: {i.State}{(i.StopRequested ? " (stop requested: " + i.StopReason + ")" : "")} first healthy {(_firstHealthy.TryGetValue(i.Id, out var h) ? h.TotalSeconds.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture) : "-")}");
        }
        text.AppendLine("events:");
        foreach (var e in await EventsAsync(EventNames.ReleaseDeployed, EventNames.InstanceScheduled, EventNames.InstanceStopRequested, EventNames.InstanceStateChanged,
                     EventNames.TrafficSwitched, EventNames.DeploymentCompleted, EventNames.DeploymentFailed, EventNames.NodeLost, EventNames.NodeRecovered, EventNames.NodeAdminStateSet))
        {
            text.AppendLine($"  {e.Id} {e.OccurredAt:HH:mm:ss.fff} {e.Type} {e.AggregateId} {e.Payload.GetRawText()}");
        }
        return text.ToString();
    }

    /// <summary>Polls the edge's backends of the app until stopped.</summary>
    private sealed class EdgeSampler : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly List<(TimeSpan At, IReadOnlyList<string> Backends)> _samples = [];
        private readonly Task _run;

        public EdgeSampler(FleetTests test)
        {
            _run = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    var backends = await test.BackendsAsync();
                    _samples.Add((test._clock.Elapsed, backends));
                    await Task.Delay(25, CancellationToken.None);
                }
            });
        }

        /// <summary>Stops sampling; the samples, each with the time its answer arrived.</summary>
        public async Task<List<(TimeSpan At, IReadOnlyList<string> Backends)>> StopAsync()
        {
            await _stop.CancelAsync();
            await _run;
            return _samples;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _run;
            }
            catch (Exception)
            {
                // Already reported by StopAsync, or the test failed before it.
            }
            _stop.Dispose();
        }
    }
}
