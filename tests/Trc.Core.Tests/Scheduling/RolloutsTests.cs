using System.Text.Json;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Core.Manifest;
using Trc.Core.Scheduling;

namespace Trc.Core.Tests.Scheduling;

/// <summary>The rollout planner step by step: an env's events in, the plan out.</summary>
public sealed class RolloutsTests
{
    private static readonly Guid NodeA = new("00000000-0000-0000-0000-00000000000a");
    private static readonly Guid NodeB = new("00000000-0000-0000-0000-00000000000b");
    private static readonly DateTimeOffset T0 = new(2026, 11, 22, 12, 0, 0, TimeSpan.Zero);
    private static readonly RolloutTimings Timings = new(TimeSpan.FromMinutes(2), TimeSpan.FromSeconds(5));

    private const string Web = """
        app = "shop"
        [processes.web]
        memory = "256Mi"
        ports = [8080]
        [processes.web.scaling]
        min = 2
        max = 4
        """;

    private const string WebChecked = """
        app = "shop"
        [processes.web]
        memory = "256Mi"
        ports = [8080]
        [processes.web.healthcheck]
        tcp = 8080
        """;

    private sealed class Env
    {
        public EnvState State { get; } = new(Guid.NewGuid());
        public List<InstanceStatus> Instances { get; } = [];
        public Dictionary<Guid, NodeUse> Nodes { get; } = new() { [NodeA] = NodeUse.Usable, [NodeB] = NodeUse.Usable };

        public Env() => Apply(EventNames.EnvCreated, new EnvCreated(Guid.NewGuid(), Guid.NewGuid(), "shop", "prod"));

        public void Apply(string type, object payload) => State.Apply(type, JsonSerializer.Serialize(payload, payload.GetType(), EventJson.Options));

        public void Deploy(string manifestToml, string kind = DeploymentKinds.Deploy)
        {
            var manifest = ManifestLoader.Load(manifestToml).Manifest!;
            using var json = JsonDocument.Parse(ManifestJson.Serialize(manifest));
            var number = State.Releases.Count + 1;
            Apply(EventNames.ReleaseCreated, new ReleaseCreated(number, "img@sha256:" + new string('a', 64), "sha256:" + new string('a', 64), null, json.RootElement.Clone(), 0, 1, 1));
            Apply(EventNames.ReleaseDeployed, new ReleaseDeployed(number, State.Deployment + 1, kind, "test"));
        }

        /// <summary>Plans, then applies the plan (placing requests on the usable nodes in turn) as the scheduler would.</summary>
        public RolloutPlan Step(DateTimeOffset now, DateTimeOffset? switchedAt = null)
        {
            var plan = Rollouts.Plan(new RolloutInput(State, Instances.ToList(), Nodes, now, T0, switchedAt, Timings));
            foreach (var e in plan.Events)
            {
                Apply(e.Type, e.Payload);
                if (e.Payload is InstanceStopRequested stop)
                {
                    Instances.RemoveAll(i => i.Id == stop.InstanceId);
                }
            }
            var n = 0;
            foreach (var r in plan.Requests)
            {
                var usable = Nodes.Where(x => x.Value == NodeUse.Usable).Select(x => x.Key).Order().ToList();
                var node = r.PinnedNode ?? usable[n++ % usable.Count];
                var id = Guid.NewGuid();
                Apply(EventNames.InstanceScheduled, new InstanceScheduled(id, node, r.Process, r.Release, r.Reason, r.Deployment));
                Instances.Add(new InstanceStatus(id, node, r.Process, r.Release, r.Deployment, InstanceStates.Scheduled, 0));
            }
            return plan;
        }

        /// <summary>Deploys a first release and takes it to completed: its instances reach <paramref name="state"/>.</summary>
        public void Serve(string manifestToml, string state)
        {
            Deploy(manifestToml);
            Step(T0);
            Report(Deployment, state);
            Step(T0);
            Step(T0, T0);
            Assert.Equal(RolloutStatuses.Completed, State.RolloutStatus);
        }

        private int Deployment => State.Deployment;

        public void Report(int deployment, string state, int? exitCode = null) =>
            Set(i => i.Deployment == deployment, state, exitCode);

        public void Set(Func<InstanceStatus, bool> which, string state, int? exitCode = null)
        {
            for (var k = 0; k < Instances.Count; k++)
            {
                if (which(Instances[k]))
                {
                    Instances[k] = Instances[k] with { State = state, ExitCode = exitCode };
                }
            }
        }
    }

    private static IEnumerable<string> Types(RolloutPlan plan) => plan.Events.Select(e => e.Type);

    [Fact]
    public void A_first_deploy_starts_its_instances_switches_when_they_run_and_completes_at_once()
    {
        var env = new Env();
        env.Deploy(Web);
        var start = env.Step(T0);
        Assert.Equal(2, start.Requests.Count); // scaling.min
        Assert.All(start.Requests, r => Assert.Equal((1, 1), (r.Deployment, r.Release)));
        Assert.Equal(RolloutStatuses.Rolling, env.State.RolloutStatus);

        Assert.True(env.Step(T0).IsEmpty); // still scheduled: nothing to do
        env.Report(1, InstanceStates.Running);
        Assert.Equal([EventNames.TrafficSwitched], Types(env.Step(T0)));
        Assert.Equal(RolloutStatuses.Draining, env.State.RolloutStatus);
        // Nothing was serving before: complete without waiting for the drain.
        Assert.Equal([EventNames.DeploymentCompleted], Types(env.Step(T0, switchedAt: T0)));
        Assert.Equal((RolloutStatuses.Completed, 1, 1), (env.State.RolloutStatus, env.State.ActiveDeployment, env.State.ActiveRelease));
        Assert.True(env.Step(T0.AddMinutes(10), T0).IsEmpty);
    }

    [Fact]
    public void A_second_release_runs_beside_the_first_until_healthy_then_the_first_drains_and_stops()
    {
        var env = new Env();
        env.Serve(WebChecked, InstanceStates.Healthy);
        var old = env.Instances.Single().Id;

        env.Deploy(WebChecked);
        var start = env.Step(T0);
        Assert.Equal((2, 2), (start.Requests.Single().Deployment, start.Requests.Single().Release));
        Assert.Empty(start.Events); // the old one keeps serving
        env.Report(2, InstanceStates.Running);
        Assert.True(env.Step(T0).IsEmpty); // running is not enough with a health check
        env.Report(2, InstanceStates.Healthy);
        Assert.Equal([EventNames.TrafficSwitched], Types(env.Step(T0)));
        Assert.Equal(2, env.State.ActiveDeployment);
        // During the drain the old instance is left alone.
        Assert.True(env.Step(T0.AddSeconds(2), switchedAt: T0).IsEmpty);
        var done = env.Step(T0.AddSeconds(5), switchedAt: T0);
        Assert.Equal([EventNames.InstanceStopRequested, EventNames.DeploymentCompleted], Types(done));
        Assert.Equal(old, ((InstanceStopRequested)done.Events[0].Payload).InstanceId);
        Assert.Equal(1, ((DeploymentCompleted)done.Events[1].Payload).Stopped);
    }

    [Theory]
    [InlineData(InstanceStates.Exited, "exited with code 3")]
    [InlineData(InstanceStates.Unhealthy, "failed its health check")]
    [InlineData(InstanceStates.MemoryLimitExceeded, "exceeded its memory limit")]
    [InlineData(InstanceStates.Failed, "failed")]
    public void A_broken_instance_fails_the_rollout_and_the_old_release_keeps_serving(string state, string said)
    {
        var env = new Env();
        env.Serve(WebChecked, InstanceStates.Healthy);

        env.Deploy(WebChecked);
        env.Step(T0);
        env.Report(2, state, state == InstanceStates.Exited ? 3 : null);
        var failed = env.Step(T0);
        Assert.Equal([EventNames.DeploymentFailed, EventNames.InstanceStopRequested], Types(failed));
        Assert.Contains(said, ((DeploymentFailed)failed.Events[0].Payload).Reason);
        Assert.Empty(failed.Requests);
        Assert.Equal((RolloutStatuses.Failed, 1, 1), (env.State.RolloutStatus, env.State.ActiveDeployment, env.State.ActiveRelease));
        Assert.Single(env.Instances, i => i.Deployment == 1);
        Assert.True(env.Step(T0.AddMinutes(5)).IsEmpty); // no retry of the failed one
    }

    [Fact]
    public void A_rollout_not_ready_within_the_health_timeout_fails_naming_what_was_missing()
    {
        var env = new Env();
        env.Deploy(Web);
        env.Step(T0);
        env.Set(i => i == env.Instances[0], InstanceStates.Running);
        Assert.True(env.Step(T0.AddMinutes(1)).IsEmpty);
        var failed = env.Step(T0.AddMinutes(3));
        Assert.Equal(EventNames.DeploymentFailed, failed.Events[0].Type);
        Assert.Equal("not ready within 2m: 1 of 2 web ready", ((DeploymentFailed)failed.Events[0].Payload).Reason);
        Assert.Equal(2, failed.Events.Count(e => e.Type == EventNames.InstanceStopRequested));
    }

    [Fact]
    public void Instances_on_a_lost_node_are_replaced_at_once_and_on_a_draining_node_once_replacements_are_ready()
    {
        var env = new Env();
        env.Serve(Web, InstanceStates.Running);
        Assert.Equal([NodeA, NodeB], env.Instances.Select(i => i.NodeId).Order());

        env.Nodes[NodeB] = NodeUse.Gone;
        var lost = env.Step(T0);
        var stop = (InstanceStopRequested)Assert.Single(lost.Events).Payload;
        Assert.Equal(NodeB, stop.NodeId);
        Assert.Contains("gone", stop.Reason);
        Assert.Equal(1, Assert.Single(lost.Requests).Deployment); // same deployment, another node

        env.Nodes[NodeB] = NodeUse.Usable;
        env.Report(1, InstanceStates.Running);
        env.Nodes[NodeA] = NodeUse.Draining;
        var drain = env.Step(T0);
        Assert.Empty(drain.Events); // the draining ones stay until replacements are ready
        Assert.Equal(2, drain.Requests.Count); // both now run on A (the replacement went there while B was gone)
        env.Set(i => i.State == InstanceStates.Scheduled, InstanceStates.Running);
        var moved = env.Step(T0);
        Assert.Equal(2, moved.Events.Count);
        Assert.All(moved.Events, e => Assert.Equal(NodeA, ((InstanceStopRequested)e.Payload).NodeId));
        Assert.All(env.Instances, i => Assert.Equal(NodeB, i.NodeId));
    }

    [Fact]
    public void An_instance_its_agent_gave_up_on_in_a_serving_deployment_is_replaced()
    {
        var env = new Env();
        env.Serve(Web, InstanceStates.Running);
        var failedId = env.Instances[0].Id;
        env.Set(i => i.Id == failedId, InstanceStates.Failed);
        env.Instances[0] = env.Instances[0] with { Reason = "gave up after 10 short runs in a row; last: exited" };

        var plan = env.Step(T0.AddMinutes(5), T0);

        var stop = (InstanceStopRequested)Assert.Single(plan.Events).Payload;
        Assert.Equal(failedId, stop.InstanceId);
        Assert.Equal("it failed (gave up after 10 short runs in a row; last: exited); a replacement is scheduled", stop.Reason);
        var replacement = Assert.Single(plan.Requests);
        Assert.Equal((1, 1, "web"), (replacement.Deployment, replacement.Release, replacement.Process));
        Assert.Equal(RolloutStatuses.Completed, env.State.RolloutStatus); // no new deployment: the same one, whole again
        // Exited or out of memory is the agent's to restart: not replaced.
        env.Set(i => i.State == InstanceStates.Scheduled, InstanceStates.Exited, 1);
        Assert.True(env.Step(T0.AddMinutes(6), T0).IsEmpty);
    }

    [Fact]
    public void Scale_adds_and_removes_instances_of_the_serving_deployment_within_the_bounds()
    {
        var env = new Env();
        env.Serve(Web, InstanceStates.Running);

        foreach (var change in RolloutDecisions.Scale(env.State, "web", 4))
        {
            env.Apply(change.Events[0].Type, change.Events[0].Payload);
        }
        Assert.Equal(2, env.Step(T0).Requests.Count);
        env.Report(1, InstanceStates.Running);
        env.Apply(EventNames.EnvScaled, new EnvScaled("web", 2));
        var down = env.Step(T0);
        Assert.Equal(2, down.Events.Count(e => e.Type == EventNames.InstanceStopRequested));

        var error = Assert.Throws<DomainException>(() => RolloutDecisions.Scale(env.State, "web", 5));
        Assert.Equal("count", error.Field);
        Assert.Contains("from 2 to 4", error.Message);
        Assert.Equal("process", Assert.Throws<DomainException>(() => RolloutDecisions.Scale(env.State, "nope", 2)).Field);
    }

    [Fact]
    public void Rollback_copies_the_release_that_served_before_and_restart_redeploys_the_running_one()
    {
        var env = new Env();
        var org = new OrgState(Guid.NewGuid());
        Assert.Equal("nothing_to_restart", Assert.Throws<DomainException>(() => RolloutDecisions.Restart(env.State)).Code);
        env.Deploy(Web);
        env.Step(T0);
        env.Report(1, InstanceStates.Running);
        env.Step(T0);
        Assert.Equal("nothing_to_roll_back_to", Assert.Throws<DomainException>(() => RolloutDecisions.Rollback(env.State, org, null)).Code);
        env.Deploy(WebChecked);
        env.Step(T0);
        env.Report(2, InstanceStates.Healthy);
        env.Step(T0);

        var rollback = RolloutDecisions.Rollback(env.State, org, null).Single();
        var created = (ReleaseCreated)rollback.Events[0].Payload;
        var deployed = (ReleaseDeployed)rollback.Events[1].Payload;
        Assert.Equal((3, env.State.Releases[0].Manifest.GetRawText()), (created.Number, created.Manifest.GetRawText()));
        Assert.Equal((3, 3, DeploymentKinds.Rollback), (deployed.Number, deployed.Deployment, deployed.Kind));

        var restart = (ReleaseDeployed)RolloutDecisions.Restart(env.State).Single().Events.Single().Payload;
        Assert.Equal((2, 3, DeploymentKinds.Restart), (restart.Number, restart.Deployment, restart.Kind));
        Assert.Equal("release", Assert.Throws<DomainException>(() => RolloutDecisions.Rollback(env.State, org, 9)).Field);
    }

    [Fact]
    public void A_restart_replaces_every_instance_once()
    {
        var env = new Env();
        env.Serve(Web, InstanceStates.Running);
        var before = env.Instances.Select(i => i.Id).ToHashSet();

        foreach (var e in RolloutDecisions.Restart(env.State).Single().Events)
        {
            env.Apply(e.Type, e.Payload);
        }
        Assert.Equal(2, env.Step(T0).Requests.Count);
        env.Report(2, InstanceStates.Running);
        env.Step(T0);
        env.Step(T0.AddSeconds(10), T0);
        Assert.Equal(2, env.Instances.Count);
        Assert.DoesNotContain(env.Instances, i => before.Contains(i.Id));
        Assert.True(env.Step(T0.AddSeconds(20), T0).IsEmpty);
    }

    [Fact]
    public void A_newer_deploy_during_a_rollout_supersedes_it()
    {
        var env = new Env();
        env.Deploy(Web);
        env.Step(T0);
        env.Deploy(Web);
        var plan = env.Step(T0);
        Assert.Equal(2, plan.Events.Count(e => e.Type == EventNames.InstanceStopRequested));
        Assert.All(plan.Requests, r => Assert.Equal(2, r.Deployment));
    }

    [Fact]
    public void Events_from_before_deployments_were_numbered_count_them()
    {
        var env = new EnvState(Guid.NewGuid());
        var manifest = ManifestLoader.Load(Web).Manifest!;
        using var json = JsonDocument.Parse(ManifestJson.Serialize(manifest));
        env.Apply(EventNames.ReleaseCreated, EventJson.Serialize(new ReleaseCreated(1, "i@sha256:" + new string('a', 64), "sha256:" + new string('a', 64), null, json.RootElement.Clone(), 0, 1, 1)));
        env.Apply(EventNames.ReleaseDeployed, """{"number":1}""");
        env.Apply(EventNames.InstanceScheduled, EventJson.Serialize(new InstanceScheduled(Guid.NewGuid(), NodeA, "web", 1, "r")));
        env.Apply(EventNames.ReleaseDeployed, """{"number":1}""");
        Assert.Equal((2, DeploymentKinds.Deploy), (env.Deployment, env.DeploymentKind));
        Assert.Equal(1, env.Instances.Values.Single().Deployment);
    }
}
