namespace Trc.Core.Scheduling;

/// <summary>
/// The mutable state of one <see cref="Placement"/> pass: each node's free memory and CPU, the replicas of each
/// group per node, and ordered indexes of free capacity over the ready nodes (one for the whole fleet, one per label set
/// that a request asked for).
/// </summary>
internal sealed class PlacementFleet
{
    private readonly PlacementNode[] _nodes; // in name, id order: a node's number is its place in this order
    private readonly Dictionary<Guid, int> _byId;
    private readonly long[] _freeMemory;
    private readonly long[] _freeCpu; // millionths of a CPU
    private readonly int[] _instances;
    private readonly List<NodeIndex>?[] _memberships; // the indexes each ready node is in
    private readonly NodeIndex _ready;
    private readonly Dictionary<string, NodeIndex> _byLabels = new(StringComparer.Ordinal);
    private Dictionary<(string Key, string Value), HashSet<int>>? _withLabel;

    private readonly Dictionary<string, int> _groupIds = new(StringComparer.Ordinal);
    private readonly List<Holders> _holders = []; // per group, the nodes holding at least one replica
    private readonly Dictionary<long, int> _slots = []; // (group, node) -> its place in the group's holders

    // Every request of this pass needs at least this much: a node with less free cannot matter and leaves the indexes.
    private long _leastMemory = long.MinValue;
    private long _leastCpu = long.MinValue;

    // Index entries a decision may skip before it looks at every node in one pass instead.
    private readonly int _scanLimit;

    // Free figures saturate here, so that current instances far beyond a node's size cannot overflow.
    private const long Floor = long.MinValue / 2;

    /// <param name="nodes">The fleet.</param>
    /// <param name="current">The instances already placed.</param>
    /// <param name="scanLimit">Index entries a decision may skip before one pass over the nodes (small in tests, to exercise that path).</param>
    public PlacementFleet(IReadOnlyList<PlacementNode> nodes, IReadOnlyList<PlacedInstance> current, int scanLimit)
    {
        _scanLimit = scanLimit;
        _nodes = new PlacementNode[nodes.Count];
        _byId = new Dictionary<Guid, int>(nodes.Count);
        var given = new Dictionary<Guid, int>(nodes.Count);
        for (var i = 0; i < nodes.Count; i++)
        {
            var node = nodes[i] ?? throw new ArgumentException($"nodes[{i}] is null", nameof(nodes));
            if (node.Name is null)
            {
                throw new ArgumentException($"nodes[{i}].Name is null", nameof(nodes));
            }
            if (!given.TryAdd(node.Id, i))
            {
                throw new ArgumentException($"nodes[{i}].Id duplicates nodes[{given[node.Id]}].Id ({node.Id})", nameof(nodes));
            }
            Placement.Memory(node.AllocatableMemoryBytes, nameof(nodes), i, nameof(node.AllocatableMemoryBytes));
            Placement.Cpu(node.CpuCapacity, nameof(nodes), i, nameof(node.CpuCapacity));
            _nodes[i] = node;
        }
        Array.Sort(_nodes, static (a, b) =>
        {
            var c = string.CompareOrdinal(a.Name, b.Name);
            return c != 0 ? c : a.Id.CompareTo(b.Id);
        });

        _freeMemory = new long[_nodes.Length];
        _freeCpu = new long[_nodes.Length];
        _instances = new int[_nodes.Length];
        _memberships = new List<NodeIndex>[_nodes.Length];
        for (var n = 0; n < _nodes.Length; n++)
        {
            _byId.Add(_nodes[n].Id, n);
            _freeMemory[n] = _nodes[n].AllocatableMemoryBytes;
            _freeCpu[n] = Placement.Micro(_nodes[n].CpuCapacity);
        }

        var instanceIds = new Dictionary<Guid, int>(current.Count);
        for (var i = 0; i < current.Count; i++)
        {
            var instance = current[i] ?? throw new ArgumentException($"current[{i}] is null", nameof(current));
            if (instance.Group is null)
            {
                throw new ArgumentException($"current[{i}].Group is null", nameof(current));
            }
            if (!instanceIds.TryAdd(instance.Id, i))
            {
                throw new ArgumentException($"current[{i}].Id duplicates current[{instanceIds[instance.Id]}].Id ({instance.Id})", nameof(current));
            }
            var memory = Placement.Memory(instance.MemoryBytes, nameof(current), i, nameof(instance.MemoryBytes));
            var cpu = Placement.Cpu(instance.Cpu, nameof(current), i, nameof(instance.Cpu));
            if (_byId.TryGetValue(instance.NodeId, out var n))
            {
                _freeMemory[n] = Subtract(_freeMemory[n], memory);
                _freeCpu[n] = Subtract(_freeCpu[n], cpu);
                _instances[n]++;
                AddReplica(GroupId(instance.Group), n);
            }
        }

        var member = new bool[_nodes.Length];
        var ready = new List<int>();
        for (var n = 0; n < _nodes.Length; n++)
        {
            if (_nodes[n].Ready)
            {
                member[n] = true;
                ready.Add(n);
            }
        }
        _ready = NewIndex(member, ready, isReady: true);
    }

    /// <summary>How many nodes are ready.</summary>
    public int ReadyCount => _ready.Count;

    /// <summary>The id of node number <paramref name="node"/>.</summary>
    public Guid NodeId(int node) => _nodes[node].Id;

    /// <summary>The number of a group (spread key), made on first sight.</summary>
    public int GroupId(string group)
    {
        if (!_groupIds.TryGetValue(group, out var id))
        {
            id = _groupIds.Count;
            _groupIds.Add(group, id);
            _holders.Add(new Holders());
        }
        return id;
    }

    /// <summary>
    /// Drops from the indexes, now and as they fill, every node with less free than the smallest request of the pass needs
    /// (full nodes would otherwise be skipped again and again). Call once, before the first <see cref="Choose"/>.
    /// </summary>
    public void Expect(long leastMemory, long leastCpu)
    {
        _leastMemory = leastMemory;
        _leastCpu = leastCpu;
        foreach (var index in _byLabels.Values.Append(_ready))
        {
            index.Used.RemoveWhere(f => !Useful(f));
            index.Idle.RemoveWhere(f => !Useful(f));
        }
    }

    /// <summary>The node that takes <paramref name="request"/> by the rules of <see cref="Placement"/>, or -1.</summary>
    public int Choose(in PreparedRequest request)
    {
        var r = request.Request;
        if (r.PinnedNode is { } pinned)
        {
            return _byId.TryGetValue(pinned, out var n) && _nodes[n].Ready && HasLabels(n, r.RequiredLabels) && Fits(n, request.Memory, request.Cpu) ? n : -1;
        }
        var index = IndexFor(r.RequiredLabels);
        var holders = _holders[request.Group];

        var node = holders.CoverAll(index) ? -1 : BestWithout(request, index, holders);
        return node >= 0 ? node : BestWith(request, index, holders);
    }

    /// <summary>The preferred feasible node holding no replica of the group, or -1.</summary>
    private int BestWithout(in PreparedRequest request, NodeIndex index, Holders holders)
    {
        // A node already in use, best fit first. The index starts at the first node with enough memory; the nodes it
        // skips lack CPU or hold a replica. When that is too many, one pass over the arrays is cheaper.
        var scanned = 0;
        var from = new Free(request.Memory, request.Cpu, int.MinValue);
        foreach (var free in index.Used.GetViewBetween(from, Free.Top))
        {
            if (free.Cpu >= request.Cpu && !holders.Holds(free.Node, request.Group, _slots))
            {
                return free.Node;
            }
            if (++scanned == _scanLimit)
            {
                return BestWithoutByPass(request, index, holders);
            }
        }
        // An idle node (it holds no replica of anything), largest first.
        foreach (var free in index.Idle)
        {
            if (free.Memory < request.Memory)
            {
                break;
            }
            if (free.Cpu >= request.Cpu)
            {
                return free.Node;
            }
            if (++scanned == _scanLimit)
            {
                return BestWithoutByPass(request, index, holders);
            }
        }
        return -1;
    }

    /// <summary><see cref="BestWithout"/> by one pass over the index's nodes.</summary>
    private int BestWithoutByPass(in PreparedRequest request, NodeIndex index, Holders holders)
    {
        int used = -1, idle = -1;
        foreach (var n in index.Nodes)
        {
            var memory = _freeMemory[n];
            var cpu = _freeCpu[n];
            if (memory < request.Memory || cpu < request.Cpu || holders.Holds(n, request.Group, _slots))
            {
                continue;
            }
            if (_instances[n] > 0)
            {
                // Nodes come in name order, so the first of equals stays.
                if (used < 0 || memory < _freeMemory[used] || (memory == _freeMemory[used] && cpu < _freeCpu[used]))
                {
                    used = n;
                }
            }
            else if (idle < 0 || memory > _freeMemory[idle] || (memory == _freeMemory[idle] && cpu > _freeCpu[idle]))
            {
                idle = n;
            }
        }
        return used >= 0 ? used : idle;
    }

    /// <summary>The preferred feasible node among those holding replicas of the group: the fewest, then best fit; or -1.</summary>
    private int BestWith(in PreparedRequest request, NodeIndex index, Holders holders)
    {
        // A group can have thousands of replicas (more than there are nodes), so this loop stays tight.
        var best = -1;
        var bestReplicas = int.MaxValue;
        long bestMemory = 0, bestCpu = 0;
        var member = index.Member;
        for (var i = 0; i < holders.Count; i++)
        {
            var replicas = holders.Counts[i];
            if (replicas > bestReplicas)
            {
                continue;
            }
            var n = holders.Nodes[i];
            var memory = _freeMemory[n];
            var cpu = _freeCpu[n];
            if (!member[n] || memory < request.Memory || cpu < request.Cpu)
            {
                continue;
            }
            if (replicas < bestReplicas || memory < bestMemory || (memory == bestMemory && (cpu < bestCpu || (cpu == bestCpu && n < best))))
            {
                best = n;
                bestReplicas = replicas;
                bestMemory = memory;
                bestCpu = cpu;
            }
        }
        return best;
    }

    /// <summary>Puts <paramref name="request"/> on node <paramref name="node"/>.</summary>
    public void Commit(in PreparedRequest request, int node)
    {
        var before = Key(node);
        var wasIdle = _instances[node] == 0;
        _freeMemory[node] -= request.Memory;
        _freeCpu[node] -= request.Cpu;
        _instances[node]++;
        AddReplica(request.Group, node);
        var after = Key(node);
        if (_memberships[node] is { } indexes)
        {
            foreach (var index in indexes)
            {
                if (wasIdle)
                {
                    index.Idle.Remove(before);
                }
                else
                {
                    index.Used.Remove(before);
                }
                if (Useful(after))
                {
                    index.Used.Add(after);
                }
            }
        }
    }

    /// <summary>Why no node could take <paramref name="request"/> (called right after <see cref="Choose"/> found none).</summary>
    public string WhyNot(in PreparedRequest request)
    {
        var r = request.Request;
        var need = $"{Placement.FormatMemory(request.Memory)} of memory and {Placement.FormatCpu(request.Cpu)} CPU";
        if (r.PinnedNode is { } pinned)
        {
            if (!_byId.TryGetValue(pinned, out var n))
            {
                return $"pinned to node {pinned}, which is not in the fleet";
            }
            var name = $"{_nodes[n].Name} ({_nodes[n].Id})";
            if (!_nodes[n].Ready)
            {
                return $"pinned to node {name}, which is not ready";
            }
            if (!HasLabels(n, r.RequiredLabels))
            {
                return $"pinned to node {name}, which lacks the labels {FormatLabels(r.RequiredLabels!)}";
            }
            return $"pinned to node {name}, which has {Placement.FormatMemory(Math.Max(_freeMemory[n], 0))} of memory and {Placement.FormatCpu(Math.Max(_freeCpu[n], 0))} CPU free, not {need}";
        }
        var readyNodes = $"{ReadyCount} ready node{(ReadyCount == 1 ? "" : "s")}";
        if (ReadyCount == 0)
        {
            return "no node is ready";
        }
        if (r.RequiredLabels is { Count: > 0 } labels)
        {
            var index = IndexFor(labels);
            var text = FormatLabels(labels);
            return index.Count == 0
                ? $"no ready node has the labels {text} ({readyNodes})"
                : $"no ready node with the labels {text} has {need} free ({index.Count} of {readyNodes} have them)";
        }
        return $"no ready node has {need} free ({readyNodes})";
    }

    private static long Subtract(long free, long amount) => free >= Floor + amount ? free - amount : Floor;

    private bool Fits(int node, long memory, long cpu) => _freeMemory[node] >= memory && _freeCpu[node] >= cpu;

    private Free Key(int node) => new(_freeMemory[node], _freeCpu[node], node);

    private bool Useful(Free free) => free.Memory >= _leastMemory && free.Cpu >= _leastCpu;

    private static long Slot(int group, int node) => ((long)group << 32) | (uint)node;

    private void AddReplica(int group, int node)
    {
        var holders = _holders[group];
        if (_slots.TryGetValue(Slot(group, node), out var slot))
        {
            holders.Counts[slot]++;
            return;
        }
        _slots.Add(Slot(group, node), holders.Count);
        holders.Add(node, _nodes.Length);
        if (_nodes[node].Ready)
        {
            holders.Ready++;
        }
    }

    private NodeIndex NewIndex(bool[] member, List<int> nodes, bool isReady)
    {
        var index = new NodeIndex(member, [.. nodes], isReady);
        foreach (var n in nodes)
        {
            if (Useful(Key(n)))
            {
                (_instances[n] == 0 ? index.Idle : index.Used).Add(Key(n));
            }
            (_memberships[n] ??= []).Add(index);
        }
        return index;
    }

    /// <summary>The index of the ready nodes carrying all of <paramref name="labels"/>, made on first use.</summary>
    private NodeIndex IndexFor(IReadOnlyDictionary<string, string>? labels)
    {
        if (labels is not { Count: > 0 })
        {
            return _ready;
        }
        var pairs = labels.OrderBy(l => l.Key, StringComparer.Ordinal).ToList();
        var key = string.Concat(pairs.Select(p => $"{p.Key.Length}:{p.Key}{p.Value?.Length ?? -1}:{p.Value}"));
        if (_byLabels.TryGetValue(key, out var index))
        {
            return index;
        }
        var member = new bool[_nodes.Length];
        var nodes = new List<int>();
        var sets = pairs.Select(p => WithLabel().GetValueOrDefault((p.Key, p.Value))).ToList();
        if (sets.All(s => s is not null))
        {
            var smallest = sets.MinBy(s => s!.Count)!;
            foreach (var n in smallest.Order())
            {
                if (sets.All(s => s!.Contains(n)))
                {
                    member[n] = true;
                    nodes.Add(n);
                }
            }
        }
        index = NewIndex(member, nodes, isReady: false);
        _byLabels.Add(key, index);
        return index;
    }

    private bool HasLabels(int node, IReadOnlyDictionary<string, string>? labels)
    {
        if (labels is not { Count: > 0 })
        {
            return true;
        }
        foreach (var (key, value) in labels)
        {
            if (!WithLabel().TryGetValue((key, value), out var nodes) || !nodes.Contains(node))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Ready nodes by label, ordinal (not whatever comparer a node's dictionary has).</summary>
    private Dictionary<(string Key, string Value), HashSet<int>> WithLabel()
    {
        if (_withLabel is null)
        {
            _withLabel = [];
            for (var n = 0; n < _nodes.Length; n++)
            {
                if (_nodes[n].Ready && _nodes[n].Labels is { } labels)
                {
                    foreach (var (key, value) in labels)
                    {
                        if (!_withLabel.TryGetValue((key, value), out var nodes))
                        {
                            _withLabel.Add((key, value), nodes = []);
                        }
                        nodes.Add(n);
                    }
                }
            }
        }
        return _withLabel;
    }

    private static string FormatLabels(IReadOnlyDictionary<string, string> labels) =>
        string.Join(", ", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));

    /// <summary>A node's free capacity as an index key; the node number makes keys unique and breaks ties by name, id.</summary>
    private readonly record struct Free(long Memory, long Cpu, int Node)
    {
        public static readonly Free Top = new(long.MaxValue, long.MaxValue, int.MaxValue);
    }

    /// <summary>Least free memory first, then least free CPU, then node order: best fit.</summary>
    private sealed class UsedOrder : IComparer<Free>
    {
        public static readonly UsedOrder Instance = new();

        public int Compare(Free x, Free y)
        {
            var c = x.Memory.CompareTo(y.Memory);
            if (c != 0)
            {
                return c;
            }
            c = x.Cpu.CompareTo(y.Cpu);
            return c != 0 ? c : x.Node.CompareTo(y.Node);
        }
    }

    /// <summary>Most free memory first, then most free CPU, then node order: the largest idle node.</summary>
    private sealed class IdleOrder : IComparer<Free>
    {
        public static readonly IdleOrder Instance = new();

        public int Compare(Free x, Free y)
        {
            var c = y.Memory.CompareTo(x.Memory);
            if (c != 0)
            {
                return c;
            }
            c = y.Cpu.CompareTo(x.Cpu);
            return c != 0 ? c : x.Node.CompareTo(y.Node);
        }
    }

    /// <summary>The nodes holding replicas of one group, with how many each (a list, since most groups are small).</summary>
    private sealed class Holders
    {
        // From this many holders on, a flag per node answers "does it hold one" without a dictionary lookup.
        private const int FlagsFrom = 32;

        private bool[]? _held;

        public List<int> Nodes { get; } = [];

        public List<int> Counts { get; } = [];

        /// <summary>How many of them are ready.</summary>
        public int Ready { get; set; }

        public int Count => Nodes.Count;

        public void Add(int node, int fleetSize)
        {
            Nodes.Add(node);
            Counts.Add(1);
            if (_held is not null)
            {
                _held[node] = true;
            }
            else if (Count >= FlagsFrom)
            {
                _held = new bool[fleetSize];
                foreach (var n in Nodes)
                {
                    _held[n] = true;
                }
            }
        }

        /// <summary>Whether <paramref name="node"/> holds a replica of this group (number <paramref name="group"/>).</summary>
        public bool Holds(int node, int group, Dictionary<long, int> slots) =>
            Count != 0 && (_held is { } held ? held[node] : slots.ContainsKey(Slot(group, node)));

        /// <summary>Whether every node of <paramref name="index"/> holds a replica, so none has zero (a group with more replicas than nodes).</summary>
        public bool CoverAll(NodeIndex index)
        {
            if (Count < index.Count)
            {
                return false;
            }
            if (index.IsReady)
            {
                return Ready == index.Count;
            }
            var members = 0;
            foreach (var n in Nodes)
            {
                members += index.Member[n] ? 1 : 0;
            }
            return members == index.Count;
        }
    }

    /// <summary>Ready nodes of one label set (or all of them), split into nodes in use and idle nodes, each ordered for its pick.</summary>
    private sealed class NodeIndex(bool[] member, int[] nodes, bool isReady)
    {
        /// <summary>Its nodes, in name order.</summary>
        public int[] Nodes { get; } = nodes;

        /// <summary>How many nodes it has.</summary>
        public int Count => Nodes.Length;

        /// <summary>Whether this is the index of every ready node (no labels required).</summary>
        public bool IsReady { get; } = isReady;

        public bool[] Member { get; } = member;

        public SortedSet<Free> Used { get; } = new(UsedOrder.Instance);

        public SortedSet<Free> Idle { get; } = new(IdleOrder.Instance);
    }
}
