using System.Globalization;

namespace Trc.Core.Scheduling;

/// <summary>A node as fleet placement sees it.</summary>
/// <param name="Id">The node's id.</param>
/// <param name="Name">Its name. Nodes are considered in name order (ordinal), then id, so every tie is broken the same way.</param>
/// <param name="AllocatableMemoryBytes">Memory instances may use: physical minus reserved minus buffer (the caller subtracts).</param>
/// <param name="CpuCapacity">CPUs instances may use: cores times the CPU overcommit (the caller multiplies).</param>
/// <param name="Ready">
/// Whether it accepts new instances (status ready; draining, disabled and lost nodes pass false).
/// Instances already on a node that is not ready still count toward its use.
/// </param>
/// <param name="Labels">Its labels, which <see cref="PlacementRequest.RequiredLabels"/> must match (keys and values compared ordinally).</param>
public sealed record PlacementNode(Guid Id, string Name, long AllocatableMemoryBytes, double CpuCapacity, bool Ready, IReadOnlyDictionary<string, string>? Labels = null);

/// <summary>An instance already placed: it counts toward its node's memory and CPU and toward its group's spread.</summary>
/// <param name="Id">The instance's id.</param>
/// <param name="NodeId">Its node. An instance on a node that is not in the fleet (a node removed since) counts toward nothing.</param>
/// <param name="Group">Its spread key (the scheduler uses "envId/process").</param>
/// <param name="MemoryBytes">The memory it is given.</param>
/// <param name="Cpu">The CPUs it is given.</param>
public sealed record PlacedInstance(Guid Id, Guid NodeId, string Group, long MemoryBytes, double Cpu);

/// <summary>A new instance to place.</summary>
/// <param name="Id">The new instance's id.</param>
/// <param name="Group">Its spread key (the scheduler uses "envId/process"): replicas of one group go to different nodes while they can.</param>
/// <param name="MemoryBytes">The memory it needs.</param>
/// <param name="Cpu">The CPUs it needs.</param>
/// <param name="PinnedNode">The node it must go on (its local volume is there), or it stays unplaced.</param>
/// <param name="RequiredLabels">Node labels that must all be present with these values (ordinal).</param>
public sealed record PlacementRequest(Guid Id, string Group, long MemoryBytes, double Cpu, Guid? PinnedNode = null, IReadOnlyDictionary<string, string>? RequiredLabels = null);

/// <summary>Where a request goes.</summary>
/// <param name="RequestId">The request's id.</param>
/// <param name="NodeId">The node chosen for it.</param>
public sealed record PlacementDecision(Guid RequestId, Guid NodeId);

/// <summary>A request no node could take when it was decided.</summary>
/// <param name="RequestId">The request's id.</param>
/// <param name="Reason">Why, for people: "no ready node has 512 MiB of memory and 0.5 CPU free (3 ready nodes)".</param>
public sealed record UnplacedRequest(Guid RequestId, string Reason);

/// <summary>The outcome of one placement pass: every request is in exactly one of the two lists.</summary>
/// <param name="Placed">The decisions, in the order they were made.</param>
/// <param name="Unplaced">The requests that fit nowhere, in the order they were decided.</param>
public sealed record PlacementResult(IReadOnlyList<PlacementDecision> Placed, IReadOnlyList<UnplacedRequest> Unplaced);

/// <summary>
/// Fleet placement as a pure function: which node each new instance goes on, given every node and
/// every instance already placed.
/// </summary>
/// <remarks>
/// <para>Hard rules, each decision against the fleet as the decisions before it left it:</para>
/// <list type="number">
/// <item>A node's instances (current and placed) never use more memory than <see cref="PlacementNode.AllocatableMemoryBytes"/>
/// nor more CPU than <see cref="PlacementNode.CpuCapacity"/>. CPU is counted in millionths of a CPU, each value rounded to
/// the nearest, so that sums such as 0.1 + 0.2 are exact.</item>
/// <item>Only ready nodes get new instances; a pinned request goes only to its node; a node must carry every required label.</item>
/// <item>Spread: a request goes to a feasible node with the fewest replicas of its group, so no node gets a second replica
/// while a feasible node with none exists.</item>
/// <item>Whatever fits is placed: a request is unplaced only if no node could take it when it was decided.</item>
/// </list>
/// <para>
/// Packing, among the feasible nodes with the fewest replicas: a node that already runs instances beats an idle one; among
/// those, the least free memory that still fits (best fit), then the least free CPU, then name and id; among idle nodes,
/// the one with the most memory, then the most CPU, then name and id. Best fit keeps the large holes for large instances;
/// opening the largest idle node when one has to be opened keeps the number of nodes in use low on a fleet of mixed sizes
/// (plain best fit would fill every small node first).
/// </para>
/// <para>
/// Order: the most constrained first: requests pinned to a node (they have no other choice), then requests with required
/// labels (before others fill the few nodes they can use), then the rest; each best-fit-decreasing: memory descending, CPU
/// descending, group, id. The input order of all three lists does not matter: the same fleet and requests always give the
/// same result.
/// </para>
/// <para>
/// Cost: ordered indexes of free capacity (one per label set asked for), from which nodes too full for the smallest request
/// of the pass drop out, so a decision usually costs a few O(log n) steps, not a scan of the fleet. A decision that has to
/// skip many index entries (nodes holding its group, or short of CPU) falls back to one tight pass over the nodes, and a
/// group with replicas on every feasible node costs a pass over the nodes holding it: O(n) in those cases, never worse.
/// </para>
/// </remarks>
public static class Placement
{
    /// <summary>The largest CPU figure accepted anywhere (a node's capacity or an instance's share).</summary>
    public const double MaxCpu = 1_000_000;

    /// <summary>Places <paramref name="requests"/> on <paramref name="nodes"/>, around the <paramref name="current"/> instances.</summary>
    /// <exception cref="ArgumentException">A negative memory figure, a CPU figure that is negative, NaN, infinite or above
    /// <see cref="MaxCpu"/>, a duplicate node, instance or request id, or a null entry; the message names the field.</exception>
    public static PlacementResult Place(IReadOnlyList<PlacementNode> nodes, IReadOnlyList<PlacedInstance> current, IReadOnlyList<PlacementRequest> requests) =>
        Place(nodes, current, requests, scanLimit: 64);

    /// <summary><see cref="Place(IReadOnlyList{PlacementNode}, IReadOnlyList{PlacedInstance}, IReadOnlyList{PlacementRequest})"/>,
    /// with the number of index entries a decision may skip before it looks at every node in one pass instead (the result
    /// is the same for any limit; tests set it low to exercise both paths).</summary>
    internal static PlacementResult Place(IReadOnlyList<PlacementNode> nodes, IReadOnlyList<PlacedInstance> current, IReadOnlyList<PlacementRequest> requests, int scanLimit)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(requests);
        var fleet = new PlacementFleet(nodes, current, scanLimit);
        var order = Prepare(requests, fleet);
        var placed = new List<PlacementDecision>(order.Length);
        var unplaced = new List<UnplacedRequest>();
        foreach (var request in order)
        {
            var node = fleet.Choose(request);
            if (node >= 0)
            {
                fleet.Commit(request, node);
                placed.Add(new PlacementDecision(request.Request.Id, fleet.NodeId(node)));
            }
            else
            {
                unplaced.Add(new UnplacedRequest(request.Request.Id, fleet.WhyNot(request)));
            }
        }
        return new PlacementResult(placed, unplaced);
    }

    /// <summary>Validates the requests and puts them in decision order.</summary>
    private static PreparedRequest[] Prepare(IReadOnlyList<PlacementRequest> requests, PlacementFleet fleet)
    {
        var prepared = new PreparedRequest[requests.Count];
        var seen = new Dictionary<Guid, int>(requests.Count);
        for (var i = 0; i < requests.Count; i++)
        {
            var r = requests[i] ?? throw new ArgumentException($"requests[{i}] is null", nameof(requests));
            if (r.Group is null)
            {
                throw new ArgumentException($"requests[{i}].Group is null", nameof(requests));
            }
            if (!seen.TryAdd(r.Id, i))
            {
                throw new ArgumentException($"requests[{i}].Id duplicates requests[{seen[r.Id]}].Id ({r.Id})", nameof(requests));
            }
            var memory = Memory(r.MemoryBytes, nameof(requests), i, nameof(r.MemoryBytes));
            var cpu = Cpu(r.Cpu, nameof(requests), i, nameof(r.Cpu));
            var rank = r.PinnedNode is not null ? 0 : r.RequiredLabels is { Count: > 0 } ? 1 : 2;
            prepared[i] = new PreparedRequest(r, memory, cpu, fleet.GroupId(r.Group), rank);
        }
        Array.Sort(prepared, DecisionOrder.Instance);
        if (prepared.Length > 0)
        {
            fleet.Expect(prepared.Min(p => p.Memory), prepared.Min(p => p.Cpu));
        }
        return prepared;
    }

    /// <summary>A memory figure, checked; the message names the field as <c>list[index].field</c>.</summary>
    internal static long Memory(long bytes, string list, int index, string field) =>
        bytes >= 0 ? bytes : throw new ArgumentException($"{list}[{index}].{field} is negative ({bytes})", list);

    /// <summary>A CPU figure in millionths of a CPU, checked; the message names the field as <c>list[index].field</c>.</summary>
    internal static long Cpu(double cpu, string list, int index, string field) =>
        cpu is >= 0 and <= MaxCpu
            ? Micro(cpu)
            : throw new ArgumentException($"{list}[{index}].{field} must be a number from 0 to {MaxCpu.ToString(CultureInfo.InvariantCulture)} (got {cpu.ToString(CultureInfo.InvariantCulture)})", list);

    internal static long Micro(double cpu) => (long)Math.Round(cpu * 1_000_000, MidpointRounding.AwayFromZero);

    /// <summary>"512 MiB", "1.5 GiB"; a figure the two decimals would round is followed by its exact bytes.</summary>
    internal static string FormatMemory(long bytes)
    {
        if (bytes < 1024)
        {
            return bytes.ToString(CultureInfo.InvariantCulture) + " bytes";
        }
        string[] units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        var unit = Math.Min((63 - long.LeadingZeroCount(bytes)) / 10, units.Length);
        var scale = Math.Pow(1024, unit);
        var shown = Math.Round(bytes / scale, 2);
        var text = shown.ToString("0.##", CultureInfo.InvariantCulture) + " " + units[unit - 1];
        return shown * scale == bytes ? text : $"{text} ({bytes.ToString(CultureInfo.InvariantCulture)} bytes)";
    }

    internal static string FormatCpu(long micro) =>
        (micro / 1_000_000.0).ToString("0.######", CultureInfo.InvariantCulture);

    /// <summary>
    /// The most constrained first (pinned, then with required labels, then the rest), each by memory, CPU descending,
    /// then group and id: best-fit-decreasing, deterministic.
    /// </summary>
    private sealed class DecisionOrder : IComparer<PreparedRequest>
    {
        public static readonly DecisionOrder Instance = new();

        public int Compare(PreparedRequest x, PreparedRequest y)
        {
            var c = x.Rank.CompareTo(y.Rank);
            if (c != 0)
            {
                return c;
            }
            c = y.Memory.CompareTo(x.Memory);
            if (c != 0)
            {
                return c;
            }
            c = y.Cpu.CompareTo(x.Cpu);
            if (c != 0)
            {
                return c;
            }
            c = string.CompareOrdinal(x.Request.Group, y.Request.Group);
            return c != 0 ? c : x.Request.Id.CompareTo(y.Request.Id);
        }
    }
}

/// <summary>A validated request: memory in bytes, CPU in millionths, its group's number, its place in the decision order (0 pinned, 1 labelled, 2 other).</summary>
internal readonly record struct PreparedRequest(PlacementRequest Request, long Memory, long Cpu, int Group, int Rank);
