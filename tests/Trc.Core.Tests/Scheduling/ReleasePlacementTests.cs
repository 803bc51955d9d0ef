using Trc.Core.Domain;
using Trc.Core.Manifest;
using Trc.Core.Scheduling;

namespace Trc.Core.Tests.Scheduling;

public sealed class ReleasePlacementTests
{
    private static readonly Guid NodeA = new("00000000-0000-0000-0000-00000000000a");
    private static readonly Guid NodeB = new("00000000-0000-0000-0000-00000000000b");

    private static ProcessSpec Process(string name, long memory = 256L << 20, int min = 1) =>
        new(name, null, [8443], 1m, memory, null, new ScalingSpec(min, Math.Max(min, 1)), null);

    private static NodeCapacity Node(Guid id, string name, long free, bool ready = true) => new(id, name, free, ready);

    /// <summary>Ids 1, 2, 3, ... so plans can be compared exactly.</summary>
    private static Func<Guid> Ids()
    {
        var n = 0;
        return () => new Guid($"10000000-0000-0000-0000-{++n:D12}");
    }

    private static Guid Id(int n) => new($"10000000-0000-0000-0000-{n:D12}");

    private static InstanceScheduled Scheduled(DomainEvent e) => Assert.IsType<InstanceScheduled>(e.Payload);

    private static InstanceStopRequested Stopped(DomainEvent e) => Assert.IsType<InstanceStopRequested>(e.Payload);

    [Fact]
    public void A_deployed_release_gets_one_instance_per_process_on_the_ready_node_with_the_most_free_memory()
    {
        var plan = ReleasePlacement.Plan(1, [Process("web"), Process("worker")], [], [Node(NodeA, "a", 1L << 30), Node(NodeB, "b", 2L << 30)], Ids());

        Assert.Empty(plan.Waiting);
        Assert.Equal([EventNames.InstanceScheduled, EventNames.InstanceScheduled], plan.Events.Select(e => e.Type));
        Assert.Equal(new InstanceScheduled(Id(1), NodeB, "web", 1, "release 1: web 1 of 1"), Scheduled(plan.Events[0]));
        // B had 2 GiB, now 1.75; A has 1: B again.
        Assert.Equal(new InstanceScheduled(Id(2), NodeB, "worker", 1, "release 1: worker 1 of 1"), Scheduled(plan.Events[1]));
        Assert.All(plan.Events, e => Assert.Equal(NodeB.ToString("D"), e.RoutingKey));
    }

    [Fact]
    public void Scaling_min_instances_are_kept_and_zero_still_runs_one()
    {
        var plan = ReleasePlacement.Plan(3, [Process("web", min: 3), Process("worker", min: 0)], [], [Node(NodeA, "a", 4L << 30)], Ids());
        Assert.Equal(["web", "web", "web", "worker"], plan.Events.Select(e => Scheduled(e).Process));
        Assert.Equal(["release 3: web 1 of 3", "release 3: web 2 of 3", "release 3: web 3 of 3", "release 3: worker 1 of 1"], plan.Events.Select(e => Scheduled(e).Reason));
    }

    [Fact]
    public void An_env_that_has_what_it_needs_gets_an_empty_plan()
    {
        ScheduledInstance[] instances = [new(Id(1), NodeA, "web", 2, false), new(Id(2), NodeA, "web", 1, true)];
        var plan = ReleasePlacement.Plan(2, [Process("web")], instances, [Node(NodeA, "a", 1L << 30)], Ids());
        Assert.True(plan.IsEmpty);
        Assert.Empty(plan.Waiting);
    }

    [Fact]
    public void Instances_of_other_releases_are_stop_requested_and_the_new_release_scheduled()
    {
        ScheduledInstance[] instances = [new(Id(7), NodeA, "web", 1, false), new(Id(8), NodeA, "worker", 1, false), new(Id(9), NodeA, "web", 0, true)];
        var plan = ReleasePlacement.Plan(2, [Process("web")], instances, [Node(NodeA, "a", 1L << 30)], Ids());

        Assert.Equal(
            [new InstanceStopRequested(Id(7), NodeA, "release 1 replaced by 2"), new InstanceStopRequested(Id(8), NodeA, "release 1 replaced by 2")],
            plan.Events.Take(2).Select(Stopped));
        Assert.Equal(new InstanceScheduled(Id(1), NodeA, "web", 2, "release 2: web 1 of 1"), Scheduled(plan.Events[2]));
        Assert.Equal(3, plan.Events.Count);
    }

    [Fact]
    public void Extra_instances_and_instances_of_unknown_processes_are_stop_requested()
    {
        ScheduledInstance[] instances = [new(Id(1), NodeA, "web", 1, false), new(Id(2), NodeA, "web", 1, false), new(Id(3), NodeA, "cron", 1, false)];
        var plan = ReleasePlacement.Plan(1, [Process("web")], instances, [Node(NodeA, "a", 1L << 30)], Ids());
        Assert.Equal([Id(3), Id(2)], plan.Events.Select(e => Stopped(e).InstanceId));
        Assert.Equal("release 1 has no process cron", Stopped(plan.Events[0]).Reason);
    }

    [Fact]
    public void Without_a_ready_node_with_room_nothing_is_scheduled_and_the_plan_says_why()
    {
        var none = ReleasePlacement.Plan(1, [Process("web", min: 2)], [], [Node(NodeA, "a", 8L << 30, ready: false)], Ids());
        Assert.True(none.IsEmpty);
        Assert.Equal(new WaitingProcess("web", "2 of 2 instances of web (release 1) wait for a node: no node is ready"), Assert.Single(none.Waiting));

        // Room for one of two: the one is scheduled, the other waits; memory caps never overbook a node.
        var tight = ReleasePlacement.Plan(1, [Process("web", memory: 512L << 20, min: 2)], [], [Node(NodeA, "a", 768L << 20)], Ids());
        Assert.Single(tight.Events);
        Assert.Equal("1 of 2 instances of web (release 1) wait for a node: no ready node has 512Mi of memory free", Assert.Single(tight.Waiting).Reason);
    }

    [Fact]
    public void No_deployed_release_stops_everything()
    {
        var plan = ReleasePlacement.Plan(0, [], [new ScheduledInstance(Id(1), NodeA, "web", 1, false)], [Node(NodeA, "a", 1L << 30)], Ids());
        Assert.Equal(new InstanceStopRequested(Id(1), NodeA, "release 1 is no longer deployed"), Stopped(Assert.Single(plan.Events)));
    }

    [Fact]
    public void Ties_go_to_the_node_first_by_name_so_plans_are_deterministic()
    {
        var nodes = new[] { Node(NodeB, "b", 1L << 30), Node(NodeA, "a", 1L << 30) };
        var first = ReleasePlacement.Plan(1, [Process("web")], [], nodes, Ids());
        var again = ReleasePlacement.Plan(1, [Process("web")], [], nodes.Reverse().ToArray(), Ids());
        Assert.Equal(NodeA, Scheduled(Assert.Single(first.Events)).NodeId);
        Assert.Equal(first.Events.Select(e => e.Json), again.Events.Select(e => e.Json));
    }

    [Fact]
    public void The_plan_of_an_env_aggregate_reads_its_deployed_release_and_instances()
    {
        var env = new EnvState(Guid.NewGuid());
        var manifest = ManifestLoader.Load("""
            app = "shop"
            [processes.web]
            memory = "256Mi"
            [processes.web.scaling]
            min = 2
            max = 2
            """).Manifest!;
        using var json = System.Text.Json.JsonDocument.Parse(ManifestJson.Serialize(manifest));
        env.Apply(EventNames.EnvCreated, EventJson.Serialize(new EnvCreated(Guid.NewGuid(), Guid.NewGuid(), "shop", "prod")));
        env.Apply(EventNames.ReleaseCreated, EventJson.Serialize(new ReleaseCreated(1, "img@sha256:" + new string('a', 64), "sha256:" + new string('a', 64), null, json.RootElement.Clone(), 0, 512L << 20, 2)));
        env.Apply(EventNames.ReleaseDeployed, EventJson.Serialize(new ReleaseDeployed(1)));
        env.Apply(EventNames.InstanceScheduled, EventJson.Serialize(new InstanceScheduled(Id(1), NodeA, "web", 1, "r")));

        var plan = ReleasePlacement.Plan(env, [Node(NodeA, "a", 1L << 30)], Ids());
        Assert.Equal("release 1: web 2 of 2", Scheduled(Assert.Single(plan.Events)).Reason);

        env.Apply(EventNames.InstanceStopRequested, EventJson.Serialize(new InstanceStopRequested(Id(1), NodeA, "x")));
        Assert.True(env.Instances[Id(1)].StopRequested);
        Assert.Equal(2, ReleasePlacement.Plan(env, [Node(NodeA, "a", 1L << 30)], Ids()).Events.Count);
    }
}
