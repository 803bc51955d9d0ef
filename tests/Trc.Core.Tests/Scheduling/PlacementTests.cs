using Trc.Core.Scheduling;

namespace Trc.Core.Tests.Scheduling;

public sealed class PlacementTests
{
    private const long Mi = 1L << 20;
    private const long Gi = 1L << 30;

    private static readonly Guid NodeA = new("00000000-0000-0000-0000-00000000000a");
    private static readonly Guid NodeB = new("00000000-0000-0000-0000-00000000000b");
    private static readonly Guid NodeC = new("00000000-0000-0000-0000-00000000000c");
    private static readonly Guid NodeD = new("00000000-0000-0000-0000-00000000000d");

    private static Guid Id(int n) => new($"10000000-0000-0000-0000-{n:D12}");

    private static PlacementNode Node(Guid id, string name, long memory, double cpu = 16, bool ready = true, Dictionary<string, string>? labels = null) =>
        new(id, name, memory, cpu, ready, labels);

    private static PlacementRequest Request(int n, string group, long memory, double cpu = 0.5, Guid? pinned = null, Dictionary<string, string>? labels = null) =>
        new(Id(n), group, memory, cpu, pinned, labels);

    private static Guid NodeOf(PlacementResult result, int request) => Assert.Single(result.Placed, d => d.RequestId == Id(request)).NodeId;

    [Fact]
    public void Replicas_of_a_group_spread_over_three_nodes_before_any_node_gets_a_second()
    {
        var nodes = new[] { Node(NodeA, "a", 8 * Gi), Node(NodeB, "b", 8 * Gi), Node(NodeC, "c", 8 * Gi) };
        var result = Placement.Place(nodes, [], [.. Enumerable.Range(1, 4).Select(n => Request(n, "env/web", 512 * Mi))]);

        Assert.Empty(result.Unplaced);
        Assert.Equal(3, result.Placed.Take(3).Select(d => d.NodeId).Distinct().Count());
        // The fourth is a second replica somewhere: every node has one.
        Assert.Contains(result.Placed[3].NodeId, new[] { NodeA, NodeB, NodeC });
    }

    [Fact]
    public void Spread_counts_the_replicas_already_running()
    {
        // A is the tightest fit, but it runs a web replica already; B runs something else.
        var nodes = new[] { Node(NodeA, "a", 4 * Gi), Node(NodeB, "b", 8 * Gi) };
        var current = new[] { new PlacedInstance(Id(100), NodeA, "env/web", Gi, 1), new PlacedInstance(Id(101), NodeB, "env/worker", Gi, 1) };
        var result = Placement.Place(nodes, current, [Request(1, "env/web", Gi), Request(2, "env/worker", Gi)]);

        Assert.Equal(NodeB, NodeOf(result, 1));
        Assert.Equal(NodeA, NodeOf(result, 2));
    }

    [Fact]
    public void Best_fit_puts_an_instance_on_the_node_in_use_with_the_least_free_memory_that_still_fits()
    {
        var nodes = new[] { Node(NodeA, "a", 16 * Gi), Node(NodeB, "b", 16 * Gi), Node(NodeC, "c", 16 * Gi) };
        // Free: A 6 GiB, B 2 GiB, C 1 GiB.
        var current = new[]
        {
            new PlacedInstance(Id(100), NodeA, "x", 10 * Gi, 1),
            new PlacedInstance(Id(101), NodeB, "y", 14 * Gi, 1),
            new PlacedInstance(Id(102), NodeC, "z", 15 * Gi, 1),
        };
        var result = Placement.Place(nodes, current, [Request(1, "env/web", 2 * Gi), Request(2, "env/worker", 4 * Gi)]);

        // Decided biggest first: 4 GiB only fits A (leaving 2). Then 2 GiB: A and B both have exactly 2 free, and A
        // less CPU (14.5 against 15), so A again; C, the least free, is too small.
        Assert.Equal([Id(2), Id(1)], result.Placed.Select(d => d.RequestId));
        Assert.Equal(NodeA, NodeOf(result, 2));
        Assert.Equal(NodeA, NodeOf(result, 1));
    }

    [Fact]
    public void Best_fit_packs_a_batch_onto_as_few_nodes_as_it_can()
    {
        var nodes = Enumerable.Range(0, 10).Select(i => Node(Id(1000 + i), $"n{i}", 8 * Gi)).ToArray();
        // 16 distinct groups of 1 GiB and 8 of 512 MiB: 20 GiB, so three 8 GiB nodes.
        var requests = Enumerable.Range(1, 16).Select(n => Request(n, $"g{n}", Gi))
            .Concat(Enumerable.Range(17, 8).Select(n => Request(n, $"g{n}", 512 * Mi))).ToArray();
        var result = Placement.Place(nodes, [], requests);

        Assert.Empty(result.Unplaced);
        Assert.Equal(3, result.Placed.Select(d => d.NodeId).Distinct().Count());
    }

    [Fact]
    public void An_idle_node_is_opened_only_when_no_node_in_use_fits_and_then_the_largest()
    {
        var nodes = new[] { Node(NodeA, "a", 32 * Gi), Node(NodeB, "b", 128 * Gi), Node(NodeC, "c", 64 * Gi), Node(NodeD, "d", 8 * Gi) };
        var current = new[] { new PlacedInstance(Id(100), NodeD, "x", 6 * Gi, 1) };
        var result = Placement.Place(nodes, current, [Request(1, "g1", 2 * Gi), Request(2, "g2", 4 * Gi)]);

        // 4 GiB does not fit D's 2 GiB free: the largest idle node, B. Then 2 GiB fits D exactly.
        Assert.Equal(NodeB, NodeOf(result, 2));
        Assert.Equal(NodeD, NodeOf(result, 1));
    }

    [Fact]
    public void A_request_pinned_to_a_lost_node_stays_unplaced_and_the_reason_names_the_node()
    {
        var nodes = new[] { Node(NodeA, "lost-one", 8 * Gi, ready: false), Node(NodeB, "b", 8 * Gi) };
        var result = Placement.Place(nodes, [], [Request(1, "env/db", Gi, pinned: NodeA)]);

        Assert.Empty(result.Placed);
        var unplaced = Assert.Single(result.Unplaced);
        Assert.Equal(Id(1), unplaced.RequestId);
        Assert.Equal($"pinned to node lost-one ({NodeA}), which is not ready", unplaced.Reason);
    }

    [Fact]
    public void A_request_pinned_to_a_node_the_fleet_does_not_have_stays_unplaced()
    {
        var result = Placement.Place([Node(NodeB, "b", 8 * Gi)], [], [Request(1, "env/db", Gi, pinned: NodeA)]);
        Assert.Equal($"pinned to node {NodeA}, which is not in the fleet", Assert.Single(result.Unplaced).Reason);
    }

    [Fact]
    public void A_request_pinned_to_a_full_node_says_what_the_node_has_free()
    {
        var nodes = new[] { Node(NodeA, "a", 2 * Gi, cpu: 4), Node(NodeB, "b", 64 * Gi) };
        var current = new[] { new PlacedInstance(Id(100), NodeA, "x", 1536 * Mi, 1) };
        var result = Placement.Place(nodes, current, [Request(1, "env/db", Gi, cpu: 1, pinned: NodeA)]);
        Assert.Equal($"pinned to node a ({NodeA}), which has 512 MiB of memory and 3 CPU free, not 1 GiB of memory and 1 CPU", Assert.Single(result.Unplaced).Reason);
    }

    [Fact]
    public void Pinned_requests_are_decided_first_and_go_to_their_node_whatever_the_spread()
    {
        // The big unpinned request would take A (best fit) and leave no room for the pinned one.
        var nodes = new[] { Node(NodeA, "a", 4 * Gi), Node(NodeB, "b", 8 * Gi) };
        var current = new[] { new PlacedInstance(Id(100), NodeA, "env/db", Gi, 1), new PlacedInstance(Id(101), NodeB, "other", Gi, 1) };
        var result = Placement.Place(nodes, current, [Request(1, "env/web", 3 * Gi), Request(2, "env/db", 2 * Gi, pinned: NodeA)]);

        Assert.Equal([Id(2), Id(1)], result.Placed.Select(d => d.RequestId));
        Assert.Equal(NodeA, NodeOf(result, 2));
        Assert.Equal(NodeB, NodeOf(result, 1));
    }

    [Fact]
    public void Requests_with_required_labels_are_decided_before_others_so_these_do_not_take_the_few_nodes_they_can_use()
    {
        // Biggest first alone would put the unlabelled 6 GiB on the ssd node (the better fit) and strand the small ssd one.
        var nodes = new[] { Node(NodeA, "a", 8 * Gi, labels: new() { ["disk"] = "ssd" }), Node(NodeB, "b", 16 * Gi) };
        var current = new[] { new PlacedInstance(Id(100), NodeA, "x", Gi, 1), new PlacedInstance(Id(101), NodeB, "y", Gi, 1) };
        var result = Placement.Place(nodes, current, [Request(1, "web", 6 * Gi), Request(2, "db", 2 * Gi, labels: new() { ["disk"] = "ssd" })]);

        Assert.Empty(result.Unplaced);
        Assert.Equal([Id(2), Id(1)], result.Placed.Select(d => d.RequestId));
        Assert.Equal(NodeA, NodeOf(result, 2));
        Assert.Equal(NodeB, NodeOf(result, 1));
    }

    [Fact]
    public void Overcommitted_cpu_is_filled_to_exactly_its_capacity()
    {
        // 4 cores at an overcommit of 4: the caller passes 16.
        var nodes = new[] { Node(NodeA, "a", 64 * Gi, cpu: 4 * 4) };
        var result = Placement.Place(nodes, [], [.. Enumerable.Range(1, 17).Select(n => Request(n, $"g{n:D2}", 256 * Mi, cpu: 1))]);

        Assert.Equal(16, result.Placed.Count);
        var unplaced = Assert.Single(result.Unplaced);
        Assert.Equal(Id(17), unplaced.RequestId);
        Assert.Equal("no ready node has 256 MiB of memory and 1 CPU free (1 ready node)", unplaced.Reason);
    }

    [Fact]
    public void Cpu_fractions_add_up_exactly()
    {
        // 0.1 + 0.2 is 0.30000000000000004 in doubles; placement counts millionths, so both fit 0.3.
        var result = Placement.Place([Node(NodeA, "a", 8 * Gi, cpu: 0.3)], [new PlacedInstance(Id(100), NodeA, "x", Mi, 0.1)], [Request(1, "g", Mi, cpu: 0.2)]);
        Assert.Single(result.Placed);
    }

    [Fact]
    public void An_exact_fit_is_placed_and_one_byte_more_is_not()
    {
        var nodes = new[] { Node(NodeA, "a", 3 * Gi, cpu: 2) };
        var current = new[] { new PlacedInstance(Id(100), NodeA, "x", 2 * Gi, 1.5) };

        var exact = Placement.Place(nodes, current, [Request(1, "g", Gi, cpu: 0.5)]);
        Assert.Equal(NodeA, NodeOf(exact, 1));

        var byteMore = Placement.Place(nodes, current, [Request(1, "g", Gi + 1, cpu: 0.5)]);
        Assert.Equal("no ready node has 1 GiB (1073741825 bytes) of memory and 0.5 CPU free (1 ready node)", Assert.Single(byteMore.Unplaced).Reason);

        var cpuMore = Placement.Place(nodes, current, [Request(1, "g", Gi, cpu: 0.500001)]);
        Assert.Single(cpuMore.Unplaced);
    }

    [Fact]
    public void Whatever_fits_is_placed_even_behind_a_request_that_does_not()
    {
        var result = Placement.Place([Node(NodeA, "a", 4 * Gi)], [], [Request(1, "big", 16 * Gi), Request(2, "small", Gi), Request(3, "small", Gi)]);

        Assert.Equal([Id(2), Id(3)], result.Placed.Select(d => d.RequestId).Order());
        Assert.Equal("no ready node has 16 GiB of memory and 0.5 CPU free (1 ready node)", Assert.Single(result.Unplaced).Reason);
    }

    [Fact]
    public void When_every_node_holds_a_replica_the_next_goes_where_there_are_fewest()
    {
        var nodes = new[] { Node(NodeA, "a", 8 * Gi), Node(NodeB, "b", 8 * Gi) };
        var current = new[]
        {
            new PlacedInstance(Id(100), NodeA, "web", Gi, 0.5),
            new PlacedInstance(Id(101), NodeA, "web", Gi, 0.5),
            new PlacedInstance(Id(102), NodeB, "web", 4 * Gi, 0.5),
        };
        // B has less memory free (the best fit) but A has two replicas to B's one.
        var result = Placement.Place(nodes, current, [Request(1, "web", Gi)]);
        Assert.Equal(NodeB, NodeOf(result, 1));
    }

    [Fact]
    public void Only_ready_nodes_get_new_instances_but_instances_on_other_nodes_still_count()
    {
        var nodes = new[] { Node(NodeA, "a", 64 * Gi, ready: false), Node(NodeB, "b", 2 * Gi) };
        var current = new[] { new PlacedInstance(Id(100), NodeA, "web", Gi, 1), new PlacedInstance(Id(101), NodeB, "x", Gi, 1) };
        var result = Placement.Place(nodes, current, [Request(1, "web", Gi), Request(2, "web", Gi)]);

        Assert.Equal(NodeB, NodeOf(result, 1));
        Assert.Equal("no ready node has 1 GiB of memory and 0.5 CPU free (1 ready node)", Assert.Single(result.Unplaced).Reason);
    }

    [Fact]
    public void A_node_already_over_its_capacity_takes_nothing_more()
    {
        // Its allocatable memory shrank below what runs there (a bigger reservation, say).
        var nodes = new[] { Node(NodeA, "a", Gi) };
        var current = new[] { new PlacedInstance(Id(100), NodeA, "x", 2 * Gi, 1) };
        var result = Placement.Place(nodes, current, [Request(1, "g", 0, cpu: 0)]);
        Assert.Single(result.Unplaced);
    }

    [Fact]
    public void An_instance_on_a_node_not_in_the_fleet_counts_toward_nothing()
    {
        var nodes = new[] { Node(NodeA, "a", 2 * Gi) };
        var current = new[] { new PlacedInstance(Id(100), NodeB, "web", 64 * Gi, 64) };
        var result = Placement.Place(nodes, current, [Request(1, "web", 2 * Gi)]);
        Assert.Equal(NodeA, NodeOf(result, 1));
    }

    [Fact]
    public void Required_labels_must_all_match()
    {
        var nodes = new[]
        {
            Node(NodeA, "a", 8 * Gi, labels: new() { ["zone"] = "a" }),
            Node(NodeB, "b", 8 * Gi, labels: new() { ["zone"] = "b", ["disk"] = "ssd" }),
            Node(NodeC, "c", 8 * Gi, labels: new() { ["zone"] = "a", ["disk"] = "ssd" }),
        };
        var result = Placement.Place(nodes, [],
        [
            Request(1, "db", Gi, labels: new() { ["zone"] = "a", ["disk"] = "ssd" }),
            Request(2, "db", Gi, labels: new() { ["zone"] = "a", ["disk"] = "ssd" }),
            Request(3, "x", Gi, labels: new() { ["zone"] = "c" }),
            Request(4, "y", 16 * Gi, labels: new() { ["disk"] = "ssd" }),
        ]);

        // Both on C: spread yields to the labels, since C is the only node that has them.
        Assert.Equal(NodeC, NodeOf(result, 1));
        Assert.Equal(NodeC, NodeOf(result, 2));
        Assert.Equal(
            [
                (Id(4), "no ready node with the labels disk=ssd has 16 GiB of memory and 0.5 CPU free (2 of 3 ready nodes have them)"),
                (Id(3), "no ready node has the labels zone=c (3 ready nodes)"),
            ],
            result.Unplaced.Select(u => (u.RequestId, u.Reason)));
    }

    [Fact]
    public void Labels_are_compared_ordinally_whatever_the_node_dictionary_compares()
    {
        var labels = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["Zone"] = "a" };
        var result = Placement.Place([Node(NodeA, "a", 8 * Gi, labels: labels)], [], [Request(1, "g", Gi, labels: new() { ["zone"] = "a" })]);
        Assert.Single(result.Unplaced);
    }

    [Fact]
    public void An_empty_fleet_places_nothing_because_no_node_is_ready()
    {
        var result = Placement.Place([], [], [Request(1, "web", Gi), Request(2, "worker", 0, cpu: 0)]);
        Assert.Empty(result.Placed);
        Assert.All(result.Unplaced, u => Assert.Equal("no node is ready", u.Reason));

        var drained = Placement.Place([Node(NodeA, "a", 8 * Gi, ready: false)], [], [Request(1, "web", Gi)]);
        Assert.Equal("no node is ready", Assert.Single(drained.Unplaced).Reason);
    }

    [Fact]
    public void No_requests_give_an_empty_result()
    {
        var result = Placement.Place([Node(NodeA, "a", 8 * Gi)], [], []);
        Assert.Empty(result.Placed);
        Assert.Empty(result.Unplaced);
    }

    [Fact]
    public void Decisions_are_listed_in_the_order_they_were_made_biggest_first()
    {
        var nodes = new[] { Node(NodeA, "a", 64 * Gi) };
        var result = Placement.Place(nodes, [],
        [
            Request(1, "b", Gi, cpu: 1),
            Request(2, "a", Gi, cpu: 1),
            Request(3, "a", 2 * Gi, cpu: 0.5),
            Request(4, "a", Gi, cpu: 2),
            Request(5, "a", Gi, cpu: 1),
        ]);
        Assert.Equal([Id(3), Id(4), Id(2), Id(5), Id(1)], result.Placed.Select(d => d.RequestId));
    }

    public static TheoryData<string, Action> BadInput() => new()
    {
        { "nodes[1].AllocatableMemoryBytes", () => Placement.Place([Node(NodeA, "a", Gi), Node(NodeB, "b", -1)], [], []) },
        { "nodes[0].CpuCapacity", () => Placement.Place([Node(NodeA, "a", Gi, cpu: double.NaN)], [], []) },
        { "nodes[0].CpuCapacity", () => Placement.Place([Node(NodeA, "a", Gi, cpu: -0.5)], [], []) },
        { "nodes[0].CpuCapacity", () => Placement.Place([Node(NodeA, "a", Gi, cpu: double.PositiveInfinity)], [], []) },
        { "nodes[1].Id", () => Placement.Place([Node(NodeA, "a", Gi), Node(NodeA, "b", Gi)], [], []) },
        { "nodes[0].Name", () => Placement.Place([Node(NodeA, null!, Gi)], [], []) },
        { "nodes[0]", () => Placement.Place([null!], [], []) },
        { "current[0].MemoryBytes", () => Placement.Place([Node(NodeA, "a", Gi)], [new PlacedInstance(Id(1), NodeA, "g", -5, 1)], []) },
        { "current[0].Cpu", () => Placement.Place([Node(NodeA, "a", Gi)], [new PlacedInstance(Id(1), NodeA, "g", 5, double.NaN)], []) },
        { "current[1].Id", () => Placement.Place([Node(NodeA, "a", Gi)], [new PlacedInstance(Id(1), NodeA, "g", 5, 1), new PlacedInstance(Id(1), NodeA, "g", 5, 1)], []) },
        { "current[0].Group", () => Placement.Place([Node(NodeA, "a", Gi)], [new PlacedInstance(Id(1), NodeA, null!, 5, 1)], []) },
        { "requests[0].MemoryBytes", () => Placement.Place([], [], [Request(1, "g", -1)]) },
        { "requests[1].Cpu", () => Placement.Place([], [], [Request(1, "g", 1), Request(2, "g", 1, cpu: double.NaN)]) },
        { "requests[0].Cpu", () => Placement.Place([], [], [Request(1, "g", 1, cpu: -1)]) },
        { "requests[0].Cpu", () => Placement.Place([], [], [Request(1, "g", 1, cpu: 2e6)]) },
        { "requests[2].Id", () => Placement.Place([], [], [Request(1, "g", 1), Request(2, "g", 1), Request(1, "h", 1)]) },
        { "requests[0].Group", () => Placement.Place([], [], [Request(1, null!, 1)]) },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public void Bad_input_is_refused_naming_the_field(string field, Action place)
    {
        var error = Assert.ThrowsAny<ArgumentException>(place);
        Assert.IsNotType<ArgumentNullException>(error);
        Assert.StartsWith(field + " ", error.Message);
    }

    [Fact]
    public void Null_lists_are_refused()
    {
        Assert.Throws<ArgumentNullException>("nodes", () => Placement.Place(null!, [], []));
        Assert.Throws<ArgumentNullException>("current", () => Placement.Place([], null!, []));
        Assert.Throws<ArgumentNullException>("requests", () => Placement.Place([], [], null!));
    }
}
