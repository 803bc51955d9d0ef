using Trc.Core.Domain;
using Trc.Core.Manifest;

namespace Trc.Core.Scheduling;

/// <summary>A node as placement sees it.</summary>
/// <param name="Id">The node's id.</param>
/// <param name="Name">Its name (ties are broken by name, then id, so plans are deterministic).</param>
/// <param name="FreeMemoryBytes">Memory it offers minus the caps of the instances scheduled on it and not stop-requested.</param>
/// <param name="Ready">Whether it was heard from within its lease.</param>
public sealed record NodeCapacity(Guid Id, string Name, long FreeMemoryBytes, bool Ready);

/// <summary>What a scheduling pass decided for one env.</summary>
/// <param name="Events">Events for the env aggregate (instances scheduled and stop-requested), in order.</param>
/// <param name="Waiting">Why instances the env needs are not scheduled yet, one per process (for logs).</param>
public sealed record SchedulePlan(IReadOnlyList<DomainEvent> Events, IReadOnlyList<WaitingProcess> Waiting)
{
    /// <summary>Whether the plan changes nothing.</summary>
    public bool IsEmpty => Events.Count == 0;
}

/// <summary>A process whose instances wait, and why.</summary>
/// <param name="Process">The process type.</param>
/// <param name="Reason">Why, for people: how many wait and for what.</param>
public sealed record WaitingProcess(string Process, string Reason);

/// <summary>
/// Single-node scheduling (issue 7), as a pure function: it keeps <c>max(scaling.min, 1)</c>
/// instances of each process of the deployed release scheduled and not stop-requested, each on the
/// ready node with the most free memory that fits it, and stop-requests every instance of another
/// release. There is no health gate and no spreading yet: the real scheduler (placement across
/// nodes, rollouts) replaces this with the same inputs and outputs.
/// </summary>
public static class ReleasePlacement
{
    /// <summary>The plan for an env as its aggregate stands (its deployed release's manifest decides the processes).</summary>
    public static SchedulePlan Plan(EnvState env, IReadOnlyList<NodeCapacity> nodes, Func<Guid> newId)
    {
        var processes = env.Deployed is { } deployed ? ManifestJson.Read(deployed.Manifest).Processes : [];
        return Plan(env.DeployedRelease, processes, env.Instances.Values, nodes, newId);
    }

    /// <summary>The plan for an env.</summary>
    /// <param name="deployedRelease">The env's deployed release (0: none; then every instance is stop-requested).</param>
    /// <param name="processes">That release's processes.</param>
    /// <param name="instances">Every instance the env has scheduled (stop-requested ones included).</param>
    /// <param name="nodes">Every node; only ready ones get instances.</param>
    /// <param name="newId">Makes the id of each new instance.</param>
    public static SchedulePlan Plan(int deployedRelease, IReadOnlyList<ProcessSpec> processes, IEnumerable<ScheduledInstance> instances, IReadOnlyList<NodeCapacity> nodes, Func<Guid> newId)
    {
        var events = new List<DomainEvent>();
        var waiting = new List<WaitingProcess>();
        var live = instances.Where(i => !i.StopRequested).OrderBy(i => i.Release).ThenBy(i => i.Process, StringComparer.Ordinal).ThenBy(i => i.Id).ToList();
        var known = processes.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);

        foreach (var old in live.Where(i => i.Release != deployedRelease))
        {
            var reason = deployedRelease == 0 ? $"release {old.Release} is no longer deployed" : $"release {old.Release} replaced by {deployedRelease}";
            events.Add(Stop(old, reason));
        }
        foreach (var orphan in live.Where(i => i.Release == deployedRelease && !known.Contains(i.Process)))
        {
            events.Add(Stop(orphan, $"release {deployedRelease} has no process {orphan.Process}"));
        }

        var free = nodes.ToDictionary(n => n.Id, n => n.FreeMemoryBytes);
        foreach (var process in processes)
        {
            var want = Math.Max(process.Scaling.Min, 1);
            var have = live.Where(i => i.Release == deployedRelease && i.Process == process.Name).ToList();
            foreach (var extra in have.Skip(want))
            {
                events.Add(Stop(extra, $"release {deployedRelease} runs {want} instance{(want == 1 ? "" : "s")} of {process.Name}"));
            }
            for (var n = have.Count; n < want; n++)
            {
                var node = nodes
                    .Where(x => x.Ready && free[x.Id] >= process.MemoryBytes)
                    .OrderByDescending(x => free[x.Id]).ThenBy(x => x.Name, StringComparer.Ordinal).ThenBy(x => x.Id)
                    .FirstOrDefault();
                if (node is null)
                {
                    var ready = nodes.Count(x => x.Ready);
                    var count = $"{want - n} of {want} instance{(want == 1 ? "" : "s")} of {process.Name} (release {deployedRelease})";
                    waiting.Add(new WaitingProcess(process.Name, ready == 0
                        ? $"{count} wait for a node: no node is ready"
                        : $"{count} wait for a node: no ready node has {ByteSize.Format(process.MemoryBytes)} of memory free"));
                    break;
                }
                free[node.Id] -= process.MemoryBytes;
                var id = newId();
                events.Add(new DomainEvent(EventNames.InstanceScheduled,
                    new InstanceScheduled(id, node.Id, process.Name, deployedRelease, $"release {deployedRelease}: {process.Name} {n + 1} of {want}"),
                    node.Id.ToString("D")));
            }
        }
        return new SchedulePlan(events, waiting);
    }

    private static DomainEvent Stop(ScheduledInstance instance, string reason) =>
        new(EventNames.InstanceStopRequested, new InstanceStopRequested(instance.Id, instance.NodeId, reason), instance.NodeId.ToString("D"));
}
