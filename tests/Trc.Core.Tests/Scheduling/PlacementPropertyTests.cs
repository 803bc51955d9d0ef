using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Trc.Core.Scheduling;

namespace Trc.Core.Tests.Scheduling;

/// <summary>
/// Random fleets checked against an independent replay of the rules: every decision, in the order made, against a linear
/// scan of the fleet as the earlier decisions left it.
/// </summary>
public sealed class PlacementPropertyTests
{
    private static readonly Config Thorough = Config.QuickThrowOnFailure.WithMaxTest(1500);

    private const long Mi = 1L << 20;
    private const long Gi = 1L << 30;

    private static readonly Dictionary<string, string>?[] NodeLabels =
    [
        null,
        [],
        new() { ["zone"] = "a" },
        new() { ["zone"] = "b" },
        new() { ["zone"] = "a", ["disk"] = "ssd" },
        new() { ["disk"] = "ssd" },
    ];

    private static readonly Dictionary<string, string>?[] RequiredLabels =
    [
        new() { ["zone"] = "a" },
        new() { ["disk"] = "ssd" },
        new() { ["zone"] = "a", ["disk"] = "ssd" },
        new() { ["zone"] = "c" },
        [],
    ];

    private static readonly Gen<long> NodeMemory = Gen.Frequency(
        (6, Gen.Elements(0, 512 * Mi, Gi, 2 * Gi, 3 * Gi, 4 * Gi, 8 * Gi)),
        (1, Gen.Choose(0, 8192).Select(m => m * Mi + 7)));

    private static readonly Gen<double> NodeCpu = Gen.Elements(0, 0.3, 0.5, 1, 2, 4, 8, 16);

    private static readonly Gen<long> InstanceMemory = Gen.Frequency(
        (6, Gen.Elements(0, 128 * Mi, 256 * Mi, 512 * Mi, 768 * Mi, Gi, 2 * Gi, 4 * Gi)),
        (1, Gen.Choose(0, 4096).Select(m => m * Mi + 3)));

    private static readonly Gen<double> InstanceCpu = Gen.Elements(0, 0.1, 0.2, 0.25, 0.3, 0.5, 1, 2);

    private static readonly Gen<string> Groups = Gen.Elements("g0", "g1", "g2", "g3", "g4", "g5", "env/web", "env/worker");

    private static readonly Gen<PlacementNode> Nodes =
        from name in Gen.Elements("a", "b", "c", "d", "node-1", "node-2", "node-10")
        from memory in NodeMemory
        from cpu in NodeCpu
        from ready in Gen.Frequency((4, Gen.Constant(true)), (1, Gen.Constant(false)))
        from labels in Gen.Elements(NodeLabels)
        select new PlacementNode(Guid.Empty, name, memory, cpu, ready, labels);

    private static readonly Gen<Scenario> Scenarios =
        from nodeCount in Gen.Choose(0, 40)
        from nodeDrafts in Gen.ArrayOf(Nodes, nodeCount)
        from nodeIds in Gen.ArrayOf(Gen.Choose(0, int.MaxValue), nodeCount)
        from currentCount in Gen.Choose(0, 60)
        from current in Gen.ArrayOf(
            from node in Gen.Frequency((12, Gen.Choose(0, Math.Max(nodeCount - 1, 0))), (1, Gen.Constant(-1)))
            from g in Groups
            from memory in InstanceMemory
            from cpu in InstanceCpu
            select (node, g, memory, cpu), currentCount)
        from requestCount in Gen.Choose(0, 60)
        from requests in Gen.ArrayOf(
            from g in Groups
            from memory in InstanceMemory
            from cpu in InstanceCpu
            from pin in Gen.Frequency((10, Gen.Constant(-2)), (2, Gen.Choose(0, Math.Max(nodeCount - 1, 0))), (1, Gen.Constant(-1)))
            from labels in Gen.Frequency((5, Gen.Constant<Dictionary<string, string>?>(null)), (1, Gen.Elements(RequiredLabels)))
            select (g, memory, cpu, pin, labels), requestCount)
        from seed in Gen.Choose(0, int.MaxValue)
        select Build(nodeDrafts, nodeIds, current, requests, seed);

    [Fact]
    public void No_decision_breaks_a_rule_and_nothing_is_left_unplaced_that_fit_somewhere()
    {
        var property = Prop.ForAll(Scenarios.ToArbitrary(), scenario =>
        {
            var result = Placement.Place(scenario.Nodes, scenario.Current, scenario.Requests);
            var violations = Replay(scenario, result);
            return (violations.Count == 0).ToProperty().Label(string.Join("\n", violations));
        });
        Check.One(Thorough, property);
    }

    [Fact]
    public void Looking_at_every_node_in_one_pass_gives_what_the_index_gives()
    {
        // With a scan limit of 1 nearly every decision that skips a node falls back to the pass over all nodes.
        var property = Prop.ForAll(Scenarios.ToArbitrary(), scenario =>
        {
            var indexed = Placement.Place(scenario.Nodes, scenario.Current, scenario.Requests);
            var passes = Placement.Place(scenario.Nodes, scenario.Current, scenario.Requests, scanLimit: 1);
            var violations = Replay(scenario, passes);
            return (violations.Count == 0 && indexed.Placed.SequenceEqual(passes.Placed) && indexed.Unplaced.SequenceEqual(passes.Unplaced))
                .ToProperty().Label(string.Join("\n", violations));
        });
        Check.One(Thorough, property);
    }

    [Fact]
    public void Shuffling_the_input_lists_changes_nothing()
    {
        var property = Prop.ForAll(Scenarios.ToArbitrary(), scenario =>
        {
            var result = Placement.Place(scenario.Nodes, scenario.Current, scenario.Requests);
            var random = new Random(scenario.Seed);
            var shuffled = Placement.Place(Shuffle(scenario.Nodes, random), Shuffle(scenario.Current, random), Shuffle(scenario.Requests, random));
            return (result.Placed.SequenceEqual(shuffled.Placed) && result.Unplaced.SequenceEqual(shuffled.Unplaced)).ToProperty();
        });
        Check.One(Thorough, property);
    }

    [Fact]
    public void Many_replicas_of_few_groups_on_a_small_fleet_still_spread_evenly()
    {
        // Most decisions here go through the fallback for groups that are on every feasible node already.
        var crowded =
            from nodeCount in Gen.Choose(1, 6)
            from nodeDrafts in Gen.ArrayOf(Nodes, nodeCount)
            from nodeIds in Gen.ArrayOf(Gen.Choose(0, int.MaxValue), nodeCount)
            from requests in Gen.ArrayOf(
                from g in Gen.Elements("web", "worker")
                from memory in Gen.Elements(0, 64 * Mi, 128 * Mi, 256 * Mi)
                from cpu in Gen.Elements(0, 0.1, 0.25)
                select (g, memory, cpu, -2, (Dictionary<string, string>?)null), 40)
            from seed in Gen.Choose(0, int.MaxValue)
            select Build(nodeDrafts.Select(n => n with { Ready = true }).ToArray(), nodeIds, [], requests, seed);
        var property = Prop.ForAll(crowded.ToArbitrary(), scenario =>
        {
            var violations = Replay(scenario, Placement.Place(scenario.Nodes, scenario.Current, scenario.Requests))
                .Concat(Replay(scenario, Placement.Place(scenario.Nodes, scenario.Current, scenario.Requests, scanLimit: 1))).ToList();
            return (violations.Count == 0).ToProperty().Label(string.Join("\n", violations));
        });
        Check.One(Thorough, property);
    }

    private sealed record Scenario(PlacementNode[] Nodes, PlacedInstance[] Current, PlacementRequest[] Requests, int Seed)
    {
        public override string ToString()
        {
            var text = new StringBuilder();
            foreach (var n in Nodes)
            {
                text.AppendLine($"node {n.Name} {n.Id} mem={n.AllocatableMemoryBytes} cpu={n.CpuCapacity} ready={n.Ready} labels={Labels(n.Labels)}");
            }
            foreach (var i in Current)
            {
                text.AppendLine($"current {i.Id} on {i.NodeId} {i.Group} mem={i.MemoryBytes} cpu={i.Cpu}");
            }
            foreach (var r in Requests)
            {
                text.AppendLine($"request {r.Id} {r.Group} mem={r.MemoryBytes} cpu={r.Cpu} pin={r.PinnedNode} labels={Labels(r.RequiredLabels)}");
            }
            return text.ToString();
        }

        private static string Labels(IReadOnlyDictionary<string, string>? labels) =>
            labels is null ? "-" : string.Join(",", labels.Select(l => $"{l.Key}={l.Value}"));
    }

    private static Scenario Build(
        PlacementNode[] drafts,
        int[] nodeIds,
        (int Node, string Group, long Memory, double Cpu)[] current,
        (string Group, long Memory, double Cpu, int Pin, Dictionary<string, string>? Labels)[] requests,
        int seed)
    {
        var nodes = drafts.Select((n, i) => n with { Id = IdOf(1, i, nodeIds[i]) }).ToArray();
        var stranger = IdOf(9, 0, 12345);
        Guid NodeAt(int i) => i < 0 || nodes.Length == 0 ? stranger : nodes[i].Id;
        return new Scenario(
            nodes,
            [.. current.Select((c, i) => new PlacedInstance(IdOf(2, i, i * 7919), NodeAt(c.Node), c.Group, c.Memory, c.Cpu))],
            [.. requests.Select((r, i) => new PlacementRequest(IdOf(3, i, (i * 104729) ^ seed), r.Group, r.Memory, r.Cpu, r.Pin == -2 ? null : NodeAt(r.Pin), r.Labels))],
            seed);
    }

    /// <summary>Unique per (kind, index), with a random-looking high part so that id order is not index order.</summary>
    private static Guid IdOf(int kind, int index, int noise) => new(noise, (short)kind, (short)index, 0, 0, 0, 0, 0, 0, 0, 0);

    private static T[] Shuffle<T>(T[] items, Random random)
    {
        var copy = items.ToArray();
        random.Shuffle(copy);
        return copy;
    }

    private static long Micro(double cpu) => (long)Math.Round(cpu * 1_000_000, MidpointRounding.AwayFromZero);

    /// <summary>
    /// Replays the result against the rules of <see cref="Placement"/> with a plain linear scan: decision order, memory,
    /// CPU, readiness, pins, labels, spread and packing at each decision's moment, and that every unplaced request fit
    /// nowhere at its own. Returns what is wrong.
    /// </summary>
    private static List<string> Replay(Scenario scenario, PlacementResult result)
    {
        var violations = new List<string>();
        var nodes = scenario.Nodes.OrderBy(n => n.Name, StringComparer.Ordinal).ThenBy(n => n.Id).ToList();
        var freeMemory = nodes.ToDictionary(n => n.Id, n => n.AllocatableMemoryBytes);
        var freeCpu = nodes.ToDictionary(n => n.Id, n => Micro(n.CpuCapacity));
        var instances = nodes.ToDictionary(n => n.Id, _ => 0);
        var replicas = new Dictionary<(Guid, string), int>();
        foreach (var i in scenario.Current.Where(i => freeMemory.ContainsKey(i.NodeId)))
        {
            freeMemory[i.NodeId] -= i.MemoryBytes;
            freeCpu[i.NodeId] -= Micro(i.Cpu);
            instances[i.NodeId]++;
            replicas[(i.NodeId, i.Group)] = replicas.GetValueOrDefault((i.NodeId, i.Group)) + 1;
        }

        var decided = result.Placed.Select(p => p.RequestId).Concat(result.Unplaced.Select(u => u.RequestId)).ToList();
        if (decided.Count != scenario.Requests.Length || !decided.ToHashSet().SetEquals(scenario.Requests.Select(r => r.Id)))
        {
            violations.Add($"{decided.Count} decisions for {scenario.Requests.Length} requests, or not one each");
            return violations;
        }

        var order = scenario.Requests
            .OrderBy(r => r.PinnedNode.HasValue ? 0 : r.RequiredLabels is { Count: > 0 } ? 1 : 2)
            .ThenByDescending(r => r.MemoryBytes)
            .ThenByDescending(r => Micro(r.Cpu))
            .ThenBy(r => r.Group, StringComparer.Ordinal)
            .ThenBy(r => r.Id);
        int placedAt = 0, unplacedAt = 0;
        foreach (var request in order)
        {
            bool Feasible(PlacementNode n) =>
                n.Ready
                && (request.PinnedNode is not { } pin || pin == n.Id)
                && (request.RequiredLabels ?? new Dictionary<string, string>()).All(l => n.Labels is { } labels && labels.Any(nl => nl.Key == l.Key && nl.Value == l.Value))
                && freeMemory[n.Id] >= request.MemoryBytes
                && freeCpu[n.Id] >= Micro(request.Cpu);

            var feasible = nodes.Where(Feasible).ToList();
            if (placedAt < result.Placed.Count && result.Placed[placedAt].RequestId == request.Id)
            {
                var nodeId = result.Placed[placedAt++].NodeId;
                var node = nodes.FirstOrDefault(n => n.Id == nodeId);
                if (node is null || !Feasible(node))
                {
                    violations.Add($"{request.Id} went to {nodeId}, which is unknown, not ready, not its pin, lacks its labels or lacks room");
                    return violations;
                }
                int Replicas(PlacementNode n) => replicas.GetValueOrDefault((n.Id, request.Group));
                var fewest = feasible.Min(Replicas);
                if (Replicas(node) != fewest)
                {
                    violations.Add($"{request.Id} ({request.Group}) went to {node.Name}, which has {Replicas(node)} replicas, while a feasible node had {fewest}");
                }
                var preferred = feasible.Where(n => Replicas(n) == fewest)
                    .OrderBy(n => instances[n.Id] == 0)
                    .ThenBy(n => instances[n.Id] == 0 ? -freeMemory[n.Id] : freeMemory[n.Id])
                    .ThenBy(n => instances[n.Id] == 0 ? -freeCpu[n.Id] : freeCpu[n.Id])
                    .First();
                if (preferred.Id != node.Id)
                {
                    violations.Add($"{request.Id} went to {node.Name} {node.Id}, the packing rule says {preferred.Name} {preferred.Id}");
                }
                freeMemory[node.Id] -= request.MemoryBytes;
                freeCpu[node.Id] -= Micro(request.Cpu);
                instances[node.Id]++;
                replicas[(node.Id, request.Group)] = Replicas(node) + 1;
            }
            else if (unplacedAt < result.Unplaced.Count && result.Unplaced[unplacedAt].RequestId == request.Id)
            {
                var reason = result.Unplaced[unplacedAt++].Reason;
                if (feasible.Count > 0)
                {
                    violations.Add($"{request.Id} was left unplaced ({reason}) but fit {feasible[0].Name} {feasible[0].Id}");
                }
                if (string.IsNullOrWhiteSpace(reason) || (request.PinnedNode is { } pin && !reason.Contains(pin.ToString(), StringComparison.Ordinal)))
                {
                    violations.Add($"{request.Id}: reason '{reason}' is empty or does not name its pinned node");
                }
            }
            else
            {
                violations.Add($"{request.Id} was not decided in its turn");
                return violations;
            }
        }
        return violations;
    }
}
