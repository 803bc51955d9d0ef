using System.Globalization;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Core.Manifest;

namespace Trc.Core.Scheduling;

/// <summary>What the scheduler may do with a node's instances.</summary>
public enum NodeUse
{
    /// <summary>Ready and active: it keeps its instances and takes new ones.</summary>
    Usable,

    /// <summary>Up but draining, or silent within its lease: it keeps its instances and takes no new ones.</summary>
    Keep,

    /// <summary>Draining: its instances move away once their replacements are ready.</summary>
    Draining,

    /// <summary>Lost, disabled or unknown: its instances are rescheduled at once.</summary>
    Gone,
}

/// <summary>An instance as the rollout planner sees it: where it runs and what its agent last said.</summary>
/// <param name="Id">The instance.</param>
/// <param name="NodeId">Its node.</param>
/// <param name="Process">Its process type.</param>
/// <param name="Release">Its release.</param>
/// <param name="Deployment">Its deployment.</param>
/// <param name="State">The last reported state (<see cref="InstanceStates"/>).</param>
/// <param name="Restarts">How often its agent restarted it.</param>
/// <param name="ExitCode">Its last exit code, if it exited.</param>
/// <param name="Reason">Its last reason, if any.</param>
public sealed record InstanceStatus(Guid Id, Guid NodeId, string Process, int Release, int Deployment, string State, int Restarts, int? ExitCode = null, string? Reason = null);

/// <summary>An instance the planner wants placed.</summary>
/// <param name="Process">Its process type.</param>
/// <param name="Release">Its release.</param>
/// <param name="Deployment">Its deployment.</param>
/// <param name="MemoryBytes">Its memory cap.</param>
/// <param name="Cpu">Its CPU request.</param>
/// <param name="PinnedNode">The node it must run on (its volume's), if any.</param>
/// <param name="Reason">Why it is wanted, for the event.</param>
public sealed record InstanceRequest(string Process, int Release, int Deployment, long MemoryBytes, double Cpu, Guid? PinnedNode, string Reason);

/// <summary>How long rollouts may take and drain.</summary>
/// <param name="HealthTimeout">How long a deployment's instances have to pass their health gate.</param>
/// <param name="Drain">How long the instances before a deployment keep their connections after the switch, before they are asked to stop.</param>
public sealed record RolloutTimings(TimeSpan HealthTimeout, TimeSpan Drain)
{
    /// <summary>The defaults: 5 minutes to become healthy, 5 seconds of drain.</summary>
    public static RolloutTimings Default { get; } = new(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(5));
}

/// <summary>Everything the planner needs about one env.</summary>
/// <param name="Env">The env's aggregate.</param>
/// <param name="Instances">Its instances that were not asked to stop, with their last states.</param>
/// <param name="Nodes">What may be done with each node (unknown nodes are <see cref="NodeUse.Gone"/>).</param>
/// <param name="Now">The time of the decision.</param>
/// <param name="StartedAt">When the latest deployment started (null: unknown yet; no timeout is decided).</param>
/// <param name="SwitchedAt">When traffic switched to it (null: not yet, or unknown).</param>
/// <param name="Timings">Health timeout and drain.</param>
public sealed record RolloutInput(
    EnvState Env,
    IReadOnlyList<InstanceStatus> Instances,
    IReadOnlyDictionary<Guid, NodeUse> Nodes,
    DateTimeOffset Now,
    DateTimeOffset? StartedAt,
    DateTimeOffset? SwitchedAt,
    RolloutTimings Timings);

/// <summary>What the planner decided for one env.</summary>
/// <param name="Events">Events for the env aggregate: stop requests, traffic switches, deployments completed or failed.</param>
/// <param name="Requests">Instances to place (the caller places them on nodes and records them).</param>
public sealed record RolloutPlan(IReadOnlyList<DomainEvent> Events, IReadOnlyList<InstanceRequest> Requests)
{
    /// <summary>Whether the plan changes nothing.</summary>
    public bool IsEmpty => Events.Count == 0 && Requests.Count == 0;
}

/// <summary>
/// Rollouts and rescheduling as a pure function of one env (DESIGN section 7). Blue/green: the
/// latest deployment's instances start next to the serving ones; once every one of them is ready
/// (<c>healthy</c>, or <c>running</c> for a process without a health check) traffic switches to
/// them; after the drain time the ones before are asked to stop. An instance of the rollout that
/// exits, fails, runs out of memory, turns unhealthy or was restarted after it ran, or a rollout not
/// ready within the health timeout, fails it: its instances are asked to stop and the deployment before keeps serving.
/// Instances on gone nodes (lost, disabled) are rescheduled at once; on draining nodes once their
/// replacements are ready. The counts are <c>trc scale</c>'s, else <c>max(scaling.min, 1)</c>.
/// </summary>
public static class Rollouts
{
    private static readonly string[] Broken = [InstanceStates.Exited, InstanceStates.Failed, InstanceStates.MemoryLimitExceeded, InstanceStates.Unhealthy];

    /// <summary>Plans one env.</summary>
    public static RolloutPlan Plan(RolloutInput input)
    {
        var env = input.Env;
        var events = new List<DomainEvent>();
        var requests = new List<InstanceRequest>();
        var live = input.Instances.OrderBy(i => i.Deployment).ThenBy(i => i.Process, StringComparer.Ordinal).ThenBy(i => i.Id).ToList();
        NodeUse Use(Guid node) => input.Nodes.TryGetValue(node, out var use) ? use : NodeUse.Gone;

        // Instances on gone nodes: asked to stop now (their node is told when it comes back).
        foreach (var gone in live.Where(i => Use(i.NodeId) == NodeUse.Gone).ToList())
        {
            events.Add(Stop(gone, "its node is gone (lost or disabled); rescheduled elsewhere"));
            live.Remove(gone);
        }

        if (env.Deployment == 0 || env.Release(env.DeployedRelease) is not { } target)
        {
            foreach (var i in live)
            {
                events.Add(Stop(i, "the env has no deployment"));
            }
            return new RolloutPlan(events, requests);
        }

        var status = env.RolloutStatus;
        var targetProcesses = Processes(target);

        // A rollout in progress: fail it on a broken instance or at the timeout.
        if (status == RolloutStatuses.Rolling)
        {
            var mine = live.Where(i => i.Deployment == env.Deployment).ToList();
            var failure = Failure(mine, targetProcesses, env, input);
            if (failure is not null)
            {
                events.Add(new DomainEvent(EventNames.DeploymentFailed, new DeploymentFailed(env.Deployment, env.DeployedRelease, failure)));
                foreach (var i in mine)
                {
                    events.Add(Stop(i, $"rollout of deployment {env.Deployment} failed"));
                }
                live.RemoveAll(i => i.Deployment == env.Deployment);
                status = RolloutStatuses.Failed;
            }
        }

        // An instance its agent gave up on (failed: it could not start, or kept exiting) in a
        // deployment that serves or served: asked to stop and replaced, as one on a lost node is
        // (a rolling deployment's own failures fail its rollout above instead). The agent's restart
        // backoff before it gives up paces the replacements of an app that never runs.
        foreach (var dead in live.Where(i => i.State == InstanceStates.Failed && !(status == RolloutStatuses.Rolling && i.Deployment == env.Deployment)).ToList())
        {
            events.Add(Stop(dead, $"it failed ({dead.Reason ?? "no reason given"}); a replacement is scheduled"));
            live.Remove(dead);
        }

        // Which deployments keep instances, and which of them get new ones.
        var keep = new List<(int Deployment, int Release, IReadOnlyList<ProcessSpec> Processes)>();
        switch (status)
        {
            case RolloutStatuses.Failed:
                if (env.ActiveDeployment > 0 && env.Release(env.ActiveRelease) is { } active)
                {
                    keep.Add((env.ActiveDeployment, env.ActiveRelease, Processes(active)));
                }
                break;
            case RolloutStatuses.Rolling:
                if (env.ActiveDeployment > 0 && env.Release(env.ActiveRelease) is { } serving)
                {
                    keep.Add((env.ActiveDeployment, env.ActiveRelease, Processes(serving)));
                }
                keep.Add((env.Deployment, env.DeployedRelease, targetProcesses));
                break;
            default:
                keep.Add((env.Deployment, env.DeployedRelease, targetProcesses));
                break;
        }

        var draining = status == RolloutStatuses.Draining;
        foreach (var i in live.Where(i => !keep.Any(k => k.Deployment == i.Deployment)))
        {
            if (draining)
            {
                continue; // the deployments before drain until the switch is old enough
            }
            events.Add(Stop(i, i.Deployment < env.Deployment
                ? $"deployment {env.Deployment} (release {env.DeployedRelease}) replaced it"
                : $"deployment {i.Deployment} is not wanted any more"));
        }

        foreach (var (deployment, release, processes) in keep)
        {
            var ofDeployment = live.Where(i => i.Deployment == deployment).ToList();
            foreach (var orphan in ofDeployment.Where(i => processes.All(p => p.Name != i.Process)))
            {
                events.Add(Stop(orphan, $"release {release} has no process {orphan.Process}"));
            }
            foreach (var process in processes)
            {
                Converge(env, input, deployment, release, process, ofDeployment.Where(i => i.Process == process.Name).ToList(), events, requests, Use);
            }
        }

        // The gate: every process of the rollout ready on nodes that keep it.
        if (status == RolloutStatuses.Rolling && targetProcesses.All(p =>
                live.Count(i => i.Deployment == env.Deployment && i.Process == p.Name && Use(i.NodeId) != NodeUse.Draining && Ready(i, p)) >= Wanted(env, p)))
        {
            var ready = live.Count(i => i.Deployment == env.Deployment);
            events.Add(new DomainEvent(EventNames.TrafficSwitched, new TrafficSwitched(env.Deployment, env.DeployedRelease,
                $"{Count(ready, "instance")} of release {env.DeployedRelease} ready")));
        }

        // After the switch and the drain time, the deployments before are asked to stop.
        var old = live.Where(i => i.Deployment != env.Deployment).ToList();
        if (draining && (old.Count == 0 || (input.SwitchedAt is { } switchedAt && input.Now - switchedAt >= input.Timings.Drain)))
        {
            foreach (var i in old)
            {
                events.Add(Stop(i, $"deployment {env.Deployment} (release {env.DeployedRelease}) serves; drained for {Seconds(input.Timings.Drain)}"));
            }
            events.Add(new DomainEvent(EventNames.DeploymentCompleted, new DeploymentCompleted(env.Deployment, env.DeployedRelease, old.Count)));
        }
        return new RolloutPlan(events, requests);
    }

    /// <summary>Instances of one process of one deployment: replace what is gone, add what is missing, stop extras.</summary>
    private static void Converge(EnvState env, RolloutInput input, int deployment, int release, ProcessSpec process, List<InstanceStatus> have,
        List<DomainEvent> events, List<InstanceRequest> requests, Func<Guid, NodeUse> use)
    {
        var want = Wanted(env, process);
        var staying = have.Where(i => use(i.NodeId) != NodeUse.Draining).ToList();
        var leaving = have.Where(i => use(i.NodeId) == NodeUse.Draining).ToList();
        // Extras: the least ready and newest go first.
        foreach (var extra in staying.OrderBy(i => Ready(i, process) ? 0 : 1).ThenBy(i => i.Id).Skip(want).ToList())
        {
            events.Add(Stop(extra, $"{process.Name} runs {Count(want, "instance")}"));
            staying.Remove(extra);
        }
        var pinned = Pin(env, process);
        for (var n = staying.Count; n < want; n++)
        {
            var why = leaving.Count > n - staying.Count
                ? $"deployment {deployment}: {process.Name} replaces an instance on a draining node"
                : $"deployment {deployment} (release {release}): {process.Name} {n + 1} of {want}";
            requests.Add(new InstanceRequest(process.Name, release, deployment, process.MemoryBytes, (double)process.Cpu, pinned, why));
        }
        if (leaving.Count > 0 && staying.Count(i => Ready(i, process)) >= want)
        {
            foreach (var i in leaving)
            {
                events.Add(Stop(i, "its node drains; a replacement is ready"));
            }
        }
    }

    /// <summary>Why a rollout fails now, or null.</summary>
    private static string? Failure(List<InstanceStatus> mine, IReadOnlyList<ProcessSpec> processes, EnvState env, RolloutInput input)
    {
        foreach (var i in mine)
        {
            if (Broken.Contains(i.State))
            {
                var what = i.State switch
                {
                    InstanceStates.Exited => $"exited{(i.ExitCode is { } code ? " with code " + code.ToString(CultureInfo.InvariantCulture) : "")}",
                    InstanceStates.MemoryLimitExceeded => "exceeded its memory limit",
                    InstanceStates.Unhealthy => "failed its health check",
                    _ => "failed",
                };
                return $"instance {i.Id:D} of {i.Process} {what}{(i.Reason is { Length: > 0 } r ? ": " + r : "")}";
            }
            // The app ran and was restarted (its exit may have come and gone between two passes). An
            // instance still starting after a restart is the agent retrying its preparation (an image
            // pull, say): its own give-up (failed, with the reason) or the timeout ends that.
            if (i.Restarts > 0 && i.State != InstanceStates.Starting && i.State != InstanceStates.Scheduled)
            {
                return $"instance {i.Id:D} of {i.Process} restarted {Count(i.Restarts, "time")} during the rollout";
            }
        }
        if (input.StartedAt is { } started && input.Now - started > input.Timings.HealthTimeout)
        {
            var notReady = processes
                .Select(p => (p, Ready: mine.Count(i => i.Process == p.Name && Ready(i, p)), Want: Wanted(env, p)))
                .Where(x => x.Ready < x.Want)
                .Select(x => $"{x.Ready} of {x.Want} {x.p.Name} ready");
            return $"not ready within {Seconds(input.Timings.HealthTimeout)}: {string.Join(", ", notReady)}";
        }
        return null;
    }

    /// <summary>How many instances a process runs: its <c>trc scale</c> count, else <c>max(scaling.min, 1)</c>, within the manifest's bounds.</summary>
    public static int Wanted(EnvState env, ProcessSpec process) =>
        env.Scale.TryGetValue(process.Name, out var scale)
            ? Math.Clamp(scale, process.Scaling.Min, Math.Max(process.Scaling.Max, process.Scaling.Min))
            : Math.Max(process.Scaling.Min, 1);

    /// <summary>Whether an instance may take connections: healthy, or running when its process has no health check.</summary>
    public static bool Ready(InstanceStatus i, ProcessSpec process) =>
        i.State == InstanceStates.Healthy || (i.State == InstanceStates.Running && process.Healthcheck is null);

    /// <summary>The node a process's volume lives on (where its last instance was placed), if it has a volume.</summary>
    private static Guid? Pin(EnvState env, ProcessSpec process)
    {
        if (!env.Volumes.Values.Any(v => v.Process == process.Name))
        {
            return null;
        }
        return env.LastInstanceOf(process.Name)?.NodeId;
    }

    private static IReadOnlyList<ProcessSpec> Processes(ReleaseCreated release) => ManifestJson.Read(release.Manifest).Processes;

    private static DomainEvent Stop(InstanceStatus instance, string reason) =>
        new(EventNames.InstanceStopRequested, new InstanceStopRequested(instance.Id, instance.NodeId, reason), instance.NodeId.ToString("D"));

    private static string Count(int n, string what) => $"{n} {what}{(n == 1 ? "" : "s")}";

    private static string Seconds(TimeSpan t) => Duration.Format(t);
}
