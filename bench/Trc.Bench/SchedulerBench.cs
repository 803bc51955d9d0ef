using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Trc.Core.Scheduling;

namespace Trc.Bench;

/// <summary>
/// bench/run scheduler: <see cref="Placement.Place"/> on one thread for a 5,000-node fleet, 50,000 instances placed from
/// scratch and then 20% churn, against a naive first-fit on the same input and the same hard rules. An independent
/// replay counts rule violations (must be 0).
/// </summary>
public static class SchedulerBench
{
    private const int NodeCount = 5_000;
    private const int InstanceCount = 50_000;
    private const int Churn = 10_000;
    private const int Rounds = 7;
    private const int WarmUp = 4; // rounds run first and not counted: the JIT's tiers settle on the real input
    private const long Gi = 1L << 30;
    private const long Mi = 1L << 20;

    // Nomad's C1M (2016): 1,000,000 containers on 5,000 hosts in under 5 minutes, about 3,750 placements/s
    // across the cluster's scheduler workers.
    private const double NomadC1MPerSecond = 3_750;

    public static int Run()
    {
        var random = new Random(20_160_301);
        var nodes = Fleet(random);
        var requests = Requests(random, nodes, InstanceCount, 0, []);
        Console.WriteLine($"Fleet: {NodeCount:N0} nodes ({Describe(nodes)}), overcommit 4, {nodes.Count(n => !n.Ready)} not ready; "
            + $"{requests.Count:N0} instances of 128 MiB-8 GiB and 0.25-4 CPU in groups of 1-10 replicas, "
            + $"{requests.Count(r => r.PinnedNode is not null):N0} pinned to a node, {requests.Count(r => r.RequiredLabels is not null):N0} with required labels.");
        Console.WriteLine($"Reference: Nomad's C1M placed 1,000,000 containers on 5,000 hosts in under 5 minutes, {NomadC1MPerSecond:N0} placements/s across a cluster of schedulers; here: one thread.");
        Console.WriteLine();

        // Phase 1: everything from scratch.
        var (initial, initialSeconds, initialCpu) = Measure(() => Placement.Place(nodes, [], requests));
        var initialPlaced = Instances(initial, requests);
        var violations = Violations(nodes, [], requests, initial);

        // Phase 2: 20% churn. A fifth of the instances go away, 50 nodes go away too (their instances still count), and
        // 10,000 new ones come: half scale existing groups up, half are new groups.
        var removed = Sample(random, initialPlaced.Select(i => i.Id), Churn).ToHashSet();
        var current = initialPlaced.Where(i => !removed.Contains(i.Id)).ToList();
        var churnNodes = nodes.ToList();
        foreach (var lost in Sample(random, Enumerable.Range(0, NodeCount), 50))
        {
            churnNodes[lost] = churnNodes[lost] with { Ready = false };
        }
        var churnRequests = Requests(random, nodes, Churn, InstanceCount, requests);
        var (churn, churnSeconds, churnCpu) = Measure(() => Placement.Place(churnNodes, current, churnRequests));
        violations += Violations(churnNodes, current, churnRequests, churn);
        var afterChurn = current.Concat(Instances(churn, churnRequests)).ToList();

        // The baselines, on the same input and the same hard rules.
        var firstFit = FirstFit(nodes, [], requests, decreasing: false);
        var firstFitCurrent = Instances(firstFit, requests).Where(i => !removed.Contains(i.Id)).ToList();
        var firstFitChurn = FirstFit(churnNodes, firstFitCurrent, churnRequests, decreasing: false);
        var ffd = FirstFit(nodes, [], requests, decreasing: true);
        var ffdCurrent = Instances(ffd, requests).Where(i => !removed.Contains(i.Id)).ToList();
        var ffdChurn = FirstFit(churnNodes, ffdCurrent, churnRequests, decreasing: true);

        var used = Used(nodes, initialPlaced);
        var usedAfterChurn = Used(churnNodes, afterChurn);
        var ffUsed = Used(nodes, Instances(firstFit, requests));
        var ffUsedAfterChurn = Used(churnNodes, firstFitCurrent.Concat(Instances(firstFitChurn, churnRequests)).ToList());
        var ffdUsed = Used(nodes, Instances(ffd, requests));
        var ffdUsedAfterChurn = Used(churnNodes, ffdCurrent.Concat(Instances(ffdChurn, churnRequests)).ToList());

        var initialRate = requests.Count / initialSeconds;
        var churnRate = churnRequests.Count / churnSeconds;
        var overallRate = (requests.Count + churnRequests.Count) / (initialSeconds + churnSeconds);
        var overallCpuRate = (requests.Count + churnRequests.Count) / (initialCpu + churnCpu);
        Console.WriteLine($"Placement decisions per second, one thread, whole Place calls (validation, sort and index build included),");
        Console.WriteLine($"median of {Rounds} rounds after {WarmUp} not counted; per wall-clock second and per second of this thread's CPU time");
        Console.WriteLine($"(load average {LoadAverage()} on {Environment.ProcessorCount} cores: the wall clock includes waiting for one):");
        Console.WriteLine($"  {"",-48}{"wall ms",9}{"per s",12}{"CPU ms",9}{"per CPU s",12}{"vs C1M",9}");
        Phase("initial: 50,000 requests, empty fleet", requests.Count, initialSeconds, initialCpu);
        Phase($"churn: {churnRequests.Count:N0} requests, {current.Count:N0} running", churnRequests.Count, churnSeconds, churnCpu);
        Console.WriteLine($"  all decisions: {overallRate:N0}/s wall clock, {overallCpuRate:N0}/s CPU; C1M's {NomadC1MPerSecond:N0}/s x {overallRate / NomadC1MPerSecond:N0}");
        Console.WriteLine();
        Console.WriteLine("Nodes in use (memory of those nodes, share of it taken), same input and rules:");
        Console.WriteLine($"  {"",-38}{"after initial",-30}{"after churn",-30}unplaced");
        Row("trc (spread, best fit, largest idle)", used, usedAfterChurn, initial.Unplaced.Count + churn.Unplaced.Count);
        Row("naive first-fit (arrival order)", ffUsed, ffUsedAfterChurn, firstFit.Unplaced.Count + firstFitChurn.Unplaced.Count);
        Row("first-fit decreasing", ffdUsed, ffdUsedAfterChurn, ffd.Unplaced.Count + ffdChurn.Unplaced.Count);
        Console.WriteLine($"  trc / naive first-fit: {(double)used.Nodes / ffUsed.Nodes:F3} initial, {(double)usedAfterChurn.Nodes / ffUsedAfterChurn.Nodes:F3} after churn (lower is better)");
        foreach (var unplaced in initial.Unplaced.Concat(churn.Unplaced))
        {
            Console.WriteLine($"  trc left unplaced: {unplaced.Reason}");
        }
        Console.WriteLine();
        Console.WriteLine($"Violations found by an independent replay of both phases (memory, CPU, ready, pin, labels, spread at decision time, unplaced that fit): {violations}");

        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["decisions_per_s"] = Math.Round(overallRate),
            ["decisions_per_cpu_s"] = Math.Round(overallCpuRate),
            ["initial_decisions_per_s"] = Math.Round(initialRate),
            ["churn_decisions_per_s"] = Math.Round(churnRate),
            ["nodes_used"] = used.Nodes,
            ["first_fit_nodes_used"] = ffUsed.Nodes,
            ["nodes_used_after_churn"] = usedAfterChurn.Nodes,
            ["first_fit_nodes_used_after_churn"] = ffUsedAfterChurn.Nodes,
            ["ffd_nodes_used"] = ffdUsed.Nodes,
            ["unplaced"] = initial.Unplaced.Count + churn.Unplaced.Count,
            ["violations"] = violations,
            ["nomad_c1m_per_s"] = NomadC1MPerSecond,
        }));
        return violations == 0 ? 0 : 1;

        static void Phase(string name, int decisions, double seconds, double cpu) =>
            Console.WriteLine($"  {name,-48}{seconds * 1000,9:F1}{decisions / seconds,12:N0}{cpu * 1000,9:F1}{decisions / cpu,12:N0}{decisions / seconds / NomadC1MPerSecond,8:N0}x");

        static void Row(string name, Use initial, Use churn, int unplaced) =>
            Console.WriteLine($"  {name,-38}{$"{initial.Nodes:N0} ({initial.MemoryGi:N0} GiB, {initial.Share:P0})",-30}{$"{churn.Nodes:N0} ({churn.MemoryGi:N0} GiB, {churn.Share:P0})",-30}{unplaced:N0}");
    }

    /// <summary>The median wall-clock and thread CPU seconds of a Place call, after warm-up rounds; every round must give the same result.</summary>
    private static (PlacementResult Result, double Seconds, double CpuSeconds) Measure(Func<PlacementResult> place)
    {
        var times = new List<double>();
        var cpuTimes = new List<double>();
        PlacementResult? result = null;
        for (var round = 0; round < WarmUp + Rounds; round++)
        {
            var cpu = ThreadCpuSeconds();
            var clock = Stopwatch.StartNew();
            var placed = place();
            var elapsed = clock.Elapsed.TotalSeconds;
            cpu = ThreadCpuSeconds() - cpu;
            if (round >= WarmUp)
            {
                times.Add(elapsed);
                cpuTimes.Add(cpu);
            }
            if (result is not null && !(placed.Placed.SequenceEqual(result.Placed) && placed.Unplaced.SequenceEqual(result.Unplaced)))
            {
                throw new InvalidOperationException("the same input gave a different result");
            }
            result = placed;
        }
        return (result!, Stats.Median(times), Stats.Median(cpuTimes));
    }

    /// <summary>CPU time of this thread (Linux; NaN elsewhere): on a shared machine, wall-clock time includes waiting for a core.</summary>
    private static double ThreadCpuSeconds()
    {
        if (!OperatingSystem.IsLinux() || ClockGetTime(ClockThreadCpuTime, out var time) != 0)
        {
            return double.NaN;
        }
        return time.Seconds + time.Nanoseconds / 1e9;
    }

    private const int ClockThreadCpuTime = 3;

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "unknown";

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec time);

    private static List<PlacementNode> Fleet(Random random)
    {
        var nodes = new List<PlacementNode>(NodeCount);
        for (var i = 0; i < NodeCount; i++)
        {
            var (memory, cores) = random.Next(100) switch
            {
                < 40 => (32 * Gi, random.Next(2) == 0 ? 8 : 12),
                < 75 => (64 * Gi, random.Next(2) == 0 ? 16 : 24),
                _ => (128 * Gi, random.Next(2) == 0 ? 24 : 32),
            };
            var labels = new Dictionary<string, string> { ["zone"] = ((char)('a' + random.Next(3))).ToString() };
            if (random.Next(10) == 0)
            {
                labels["disk"] = "ssd";
            }
            // Allocatable: physical minus 1 GiB reserved and a 5% buffer, as the control plane computes it.
            nodes.Add(new PlacementNode(Id(random), $"node-{i:D4}", memory - Gi - memory / 20, cores * 4.0, random.Next(100) != 0, labels));
        }
        return nodes;
    }

    /// <summary><paramref name="count"/> requests in arrival order: groups of 1-10 replicas; with earlier requests, half scale existing groups up.</summary>
    private static List<PlacementRequest> Requests(Random random, List<PlacementNode> nodes, int count, int firstGroup, List<PlacementRequest> earlier)
    {
        long[] sizes = [128 * Mi, 256 * Mi, 512 * Mi, Gi, 2 * Gi, 4 * Gi, 8 * Gi];
        int[] weights = [10, 10, 15, 20, 20, 15, 10];
        var requests = new List<PlacementRequest>(count);
        var group = firstGroup;
        while (requests.Count < count)
        {
            PlacementRequest template;
            int replicas;
            if (earlier.Count > 0 && random.Next(2) == 0)
            {
                template = earlier[random.Next(earlier.Count)];
                replicas = random.Next(1, 4);
            }
            else
            {
                var memory = sizes[Weighted(random, weights)];
                var cpu = Math.Clamp(Math.Round(memory / (double)Gi / 2 * (random.Next(3) switch { 0 => 0.5, 1 => 1, _ => 2 }) * 4) / 4, 0.25, 4);
                var labels = random.Next(100) switch
                {
                    < 5 => new Dictionary<string, string> { ["disk"] = "ssd" },
                    < 8 => new Dictionary<string, string> { ["zone"] = "b" },
                    _ => null,
                };
                template = new PlacementRequest(Guid.Empty, $"env{group++}/web", memory, cpu, null, labels);
                replicas = random.Next(1, 11);
            }
            for (var r = 0; r < replicas && requests.Count < count; r++)
            {
                // Some single replicas without labels are pinned: a volume on one node (a database, say).
                var pinned = replicas == 1 && template.RequiredLabels is null && random.Next(20) == 0 ? (Guid?)nodes[random.Next(nodes.Count)].Id : null;
                requests.Add(template with { Id = Id(random), PinnedNode = pinned });
            }
        }
        return requests;
    }

    private static T[] Sample<T>(Random random, IEnumerable<T> items, int count)
    {
        var all = items.ToArray();
        random.Shuffle(all);
        return all[..count];
    }

    private static Guid Id(Random random)
    {
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        return new Guid(bytes);
    }

    private static int Weighted(Random random, int[] weights)
    {
        var roll = random.Next(weights.Sum());
        for (var i = 0; i < weights.Length; i++)
        {
            if ((roll -= weights[i]) < 0)
            {
                return i;
            }
        }
        return weights.Length - 1;
    }

    private static string Describe(List<PlacementNode> nodes) =>
        string.Join(", ", nodes.GroupBy(n => (n.AllocatableMemoryBytes + Gi) * 20 / 19 / Gi).OrderBy(g => g.Key).Select(g => $"{g.Count():N0} x {g.Key} GiB"));

    private static List<PlacedInstance> Instances(PlacementResult result, List<PlacementRequest> requests)
    {
        var byId = requests.ToDictionary(r => r.Id);
        return [.. result.Placed.Select(d => new PlacedInstance(d.RequestId, d.NodeId, byId[d.RequestId].Group, byId[d.RequestId].MemoryBytes, byId[d.RequestId].Cpu))];
    }

    private readonly record struct Use(int Nodes, double MemoryGi, double Share);

    private static Use Used(List<PlacementNode> nodes, List<PlacedInstance> instances)
    {
        var byNode = instances.GroupBy(i => i.NodeId).ToDictionary(g => g.Key, g => g.Sum(i => i.MemoryBytes));
        var usedNodes = nodes.Where(n => byNode.ContainsKey(n.Id)).ToList();
        var capacity = usedNodes.Sum(n => (double)n.AllocatableMemoryBytes);
        return new Use(usedNodes.Count, capacity / Gi, capacity == 0 ? 0 : byNode.Values.Sum() / capacity);
    }

    private static long Micro(double cpu) => (long)Math.Round(cpu * 1_000_000, MidpointRounding.AwayFromZero);

    /// <summary>
    /// The baseline: each request in turn (arrival order, or decreasing memory then CPU) on the first node in list order
    /// that is ready, is its pin, has its labels and has room; spread as trc's rule 4 demands (the first such node with
    /// the fewest replicas of the group). A linear scan per request.
    /// </summary>
    private static PlacementResult FirstFit(List<PlacementNode> nodes, List<PlacedInstance> current, List<PlacementRequest> requests, bool decreasing)
    {
        var state = new ReplayState(nodes, current);
        var order = decreasing ? requests.OrderByDescending(r => r.MemoryBytes).ThenByDescending(r => r.Cpu).ToList() : requests;
        var placed = new List<PlacementDecision>();
        var unplaced = new List<UnplacedRequest>();
        foreach (var request in order)
        {
            var counts = state.Replicas.GetValueOrDefault(request.Group);
            var best = -1;
            var bestCount = int.MaxValue;
            for (var n = 0; n < nodes.Count && bestCount > 0; n++)
            {
                if (state.Feasible(n, request))
                {
                    var count = counts?.GetValueOrDefault(n) ?? 0;
                    if (count < bestCount)
                    {
                        best = n;
                        bestCount = count;
                    }
                }
            }
            if (best < 0)
            {
                unplaced.Add(new UnplacedRequest(request.Id, "no node fits"));
                continue;
            }
            state.Add(best, request);
            placed.Add(new PlacementDecision(request.Id, nodes[best].Id));
        }
        return new PlacementResult(placed, unplaced);
    }

    /// <summary>
    /// Replays a result independently of trc's index: each request in the documented decision order (pinned first, then
    /// with required labels, then the rest; each by memory, CPU descending, group, id) checked against a linear scan of
    /// the fleet as the earlier decisions left it.
    /// </summary>
    private static int Violations(List<PlacementNode> nodes, List<PlacedInstance> current, List<PlacementRequest> requests, PlacementResult result)
    {
        var violations = 0;
        var state = new ReplayState(nodes, current);
        var nodeIndex = nodes.Select((n, i) => (n.Id, i)).ToDictionary(x => x.Id, x => x.i);
        var decided = result.Placed.Select(d => d.RequestId).Concat(result.Unplaced.Select(u => u.RequestId)).ToList();
        if (decided.Count != requests.Count || decided.Distinct().Count() != requests.Count)
        {
            violations++;
        }
        var placed = result.Placed.ToDictionary(d => d.RequestId, d => d.NodeId);
        var order = requests
            .OrderBy(r => r.PinnedNode.HasValue ? 0 : r.RequiredLabels is { Count: > 0 } ? 1 : 2).ThenByDescending(r => r.MemoryBytes).ThenByDescending(r => Micro(r.Cpu))
            .ThenBy(r => r.Group, StringComparer.Ordinal).ThenBy(r => r.Id);
        foreach (var request in order)
        {
            var counts = state.Replicas.GetValueOrDefault(request.Group);
            var feasible = 0;
            for (var n = 0; n < nodes.Count; n++)
            {
                feasible += state.Feasible(n, request) ? 1 : 0;
            }
            if (!placed.TryGetValue(request.Id, out var nodeId))
            {
                violations += feasible > 0 ? 1 : 0;
                continue;
            }
            if (!nodeIndex.TryGetValue(nodeId, out var chosen) || !state.Feasible(chosen, request))
            {
                violations++;
                continue;
            }
            // The fewest replicas among feasible nodes: zero if some feasible node holds none.
            var holders = counts?.Where(c => state.Feasible(c.Key, request)).ToList() ?? [];
            var fewest = feasible > holders.Count ? 0 : holders.Min(c => c.Value);
            if ((counts?.GetValueOrDefault(chosen) ?? 0) != fewest)
            {
                violations++;
            }
            state.Add(chosen, request);
        }
        // And the end state, summed afresh: no node that got something new is over its memory or CPU.
        var newly = result.Placed.Select(d => d.NodeId).ToHashSet();
        var all = current.Concat(Instances(result, requests)).Where(i => newly.Contains(i.NodeId)).GroupBy(i => i.NodeId);
        foreach (var node in all)
        {
            var n = nodes[nodeIndex[node.Key]];
            if (node.Sum(i => i.MemoryBytes) > n.AllocatableMemoryBytes || node.Sum(i => Micro(i.Cpu)) > Micro(n.CpuCapacity))
            {
                violations++;
            }
        }
        return violations;
    }

    /// <summary>Free memory and CPU per node and replicas per group, by plain arrays and dictionaries.</summary>
    private sealed class ReplayState
    {
        private readonly List<PlacementNode> _nodes;
        private readonly long[] _memory;
        private readonly long[] _cpu;

        public Dictionary<string, Dictionary<int, int>> Replicas { get; } = new(StringComparer.Ordinal);

        public ReplayState(List<PlacementNode> nodes, List<PlacedInstance> current)
        {
            _nodes = nodes;
            _memory = [.. nodes.Select(n => n.AllocatableMemoryBytes)];
            _cpu = [.. nodes.Select(n => Micro(n.CpuCapacity))];
            var index = nodes.Select((n, i) => (n.Id, i)).ToDictionary(x => x.Id, x => x.i);
            foreach (var instance in current)
            {
                var n = index[instance.NodeId];
                _memory[n] -= instance.MemoryBytes;
                _cpu[n] -= Micro(instance.Cpu);
                Count(instance.Group, n);
            }
        }

        public bool Feasible(int n, PlacementRequest request) =>
            _nodes[n].Ready
            && _memory[n] >= request.MemoryBytes
            && _cpu[n] >= Micro(request.Cpu)
            && (request.PinnedNode is not { } pin || pin == _nodes[n].Id)
            && (request.RequiredLabels is null || request.RequiredLabels.All(l => _nodes[n].Labels!.TryGetValue(l.Key, out var v) && v == l.Value));

        public void Add(int n, PlacementRequest request)
        {
            _memory[n] -= request.MemoryBytes;
            _cpu[n] -= Micro(request.Cpu);
            Count(request.Group, n);
        }

        private void Count(string group, int n)
        {
            if (!Replicas.TryGetValue(group, out var counts))
            {
                Replicas.Add(group, counts = []);
            }
            counts[n] = counts.GetValueOrDefault(n) + 1;
        }
    }
}
