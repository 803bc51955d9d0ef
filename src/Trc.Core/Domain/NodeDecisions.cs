using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Trc.Core.Api;

namespace Trc.Core.Domain;

/// <summary>
/// The cluster overlay's ULA /48 (DESIGN section 9): node k (from 1) gets the /64 whose fourth
/// group is k, like <c>fd74:7263:0:1::/64</c>.
/// </summary>
public sealed record OverlayNetwork
{
    private readonly byte[] _base;

    private OverlayNetwork(byte[] baseBytes, string text)
    {
        _base = baseBytes;
        Text = text;
    }

    /// <summary>The default, <c>fd74:7263::/48</c> ("trc" in ASCII after the ULA prefix).</summary>
    public static OverlayNetwork Default { get; } = Parse("fd74:7263::/48");

    /// <summary>The prefix as written, like <c>fd74:7263::/48</c>.</summary>
    public string Text { get; }

    /// <summary>Most nodes one /48 holds.</summary>
    public const int MaxNodes = 65535;

    /// <summary>Parses a ULA /48; null with a message when it is not one.</summary>
    public static OverlayNetwork? TryParse(string text, out string error)
    {
        error = "";
        // A zone index (fd74:7263::%eth0/48) parses, and would be dropped without a word.
        if (!IPNetwork.TryParse(text, out var network) || network.BaseAddress.AddressFamily != AddressFamily.InterNetworkV6
            || !text.Contains('/', StringComparison.Ordinal) || text.Contains('%', StringComparison.Ordinal))
        {
            error = $"\"{Printable(text)}\" is not an IPv6 prefix like fd74:7263::/48";
            return null;
        }
        var bytes = network.BaseAddress.GetAddressBytes();
        if (!IPAddress.TryParse(text.AsSpan(0, text.IndexOf('/', StringComparison.Ordinal)), out var written) || !written.Equals(network.BaseAddress))
        {
            error = $"\"{Printable(text)}\" has bits set after its prefix length; write the prefix itself, like {network}";
            return null;
        }
        if (network.PrefixLength != 48)
        {
            error = $"{network} is a /{network.PrefixLength}; the overlay is a /48 (each node gets a /64 of it)";
            return null;
        }
        if ((bytes[0] & 0xFE) != 0xFC)
        {
            error = $"{network} is not a unique local (fc00::/7) prefix; the overlay is private";
            return null;
        }
        return new OverlayNetwork(bytes, network.ToString());
    }

    /// <summary>Parses a ULA /48 or throws <see cref="ArgumentException"/>.</summary>
    public static OverlayNetwork Parse(string text) => TryParse(text, out var error) ?? throw new ArgumentException(error, nameof(text));

    /// <summary>The /64 of node number <paramref name="index"/> (1 to <see cref="MaxNodes"/>).</summary>
    public string NodePrefix(int index)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(index, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, MaxNodes);
        var bytes = (byte[])_base.Clone();
        bytes[6] = (byte)(index >> 8);
        bytes[7] = (byte)index;
        return new IPAddress(bytes) + "/64";
    }

    private static string Printable(string s) => Toml.TomlKeys.Printable(s, 64);
}

/// <summary>What an agent says about its node when it registers.</summary>
/// <param name="Name">The node's name (a lower-case DNS label).</param>
/// <param name="MemoryBytes">Memory offered to instances.</param>
/// <param name="Cpus">CPU cores.</param>
/// <param name="Driver"><c>qemu</c>, <c>firecracker</c> or <c>fake</c>.</param>
/// <param name="Acceleration"><c>kvm</c>, <c>tcg</c> or <c>none</c>.</param>
/// <param name="Region">A region label, or null.</param>
/// <param name="AgentVersion">The agent's version, or null.</param>
public sealed record NodeRegistration(string Name, long MemoryBytes, int Cpus, string Driver, string Acceleration, string? Region, string? AgentVersion);

/// <summary>The rules of node registration and instance state reports, as pure functions.</summary>
public static class NodeDecisions
{
    private static readonly Regex Label = new("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>Runtime drivers an agent may report.</summary>
    public static IReadOnlyList<string> Drivers { get; } = ["qemu", "firecracker", "fake"];

    /// <summary>Accelerations an agent may report.</summary>
    public static IReadOnlyList<string> Accelerations { get; } = ["kvm", "tcg", "none"];

    /// <summary>Most memory a node may offer (1 PiB).</summary>
    public const long MaxMemoryBytes = 1L << 50;

    /// <summary>Most CPU cores a node may report.</summary>
    public const int MaxCpus = 4096;

    /// <summary>Longest reason an agent may give, in characters.</summary>
    public const int MaxReasonLength = 1024;

    /// <summary>Checks a registration; throws naming the field.</summary>
    public static void CheckRegistration(NodeRegistration r)
    {
        if (string.IsNullOrEmpty(r.Name) || !Label.IsMatch(r.Name))
        {
            throw DomainException.Invalid("invalid_node_name", "name", $"\"{Shorten(r.Name)}\" is not a node name: use a DNS label (1-63 lower-case letters, digits and '-', not starting or ending with '-')");
        }
        if (r.MemoryBytes is < 1 or > MaxMemoryBytes)
        {
            throw DomainException.Invalid("invalid_memory", "memory_bytes", $"memory_bytes must be from 1 to {MaxMemoryBytes}");
        }
        if (r.Cpus is < 1 or > MaxCpus)
        {
            throw DomainException.Invalid("invalid_cpus", "cpus", $"cpus must be from 1 to {MaxCpus}");
        }
        if (!Drivers.Contains(r.Driver ?? ""))
        {
            throw DomainException.Invalid("invalid_driver", "driver", $"\"{Shorten(r.Driver)}\" is not a driver: use {string.Join(", ", Drivers)}");
        }
        if (!Accelerations.Contains(r.Acceleration ?? ""))
        {
            throw DomainException.Invalid("invalid_acceleration", "acceleration", $"\"{Shorten(r.Acceleration)}\" is not an acceleration: use {string.Join(", ", Accelerations)}");
        }
        if (r.Region is not null && !Label.IsMatch(r.Region))
        {
            throw DomainException.Invalid("invalid_region", "region", $"\"{Shorten(r.Region)}\" is not a region label: use a DNS label, like eu-west");
        }
        if (r.AgentVersion is not null && (r.AgentVersion.Length is 0 or > 64 || r.AgentVersion.Any(c => c is < (char)0x21 or > (char)0x7E)))
        {
            throw DomainException.Invalid("invalid_agent_version", "agent_version", "agent_version is 1-64 printable ASCII characters without spaces");
        }
    }

    /// <summary>
    /// Registers a node. The first registration of a name creates the node with the next /64 of the
    /// overlay (appended together with the overlay aggregate at its version, so two nodes registering
    /// at once cannot get the same one); a later one records what changed (<c>node.updated</c>), or
    /// nothing when nothing did. The prefix never changes.
    /// </summary>
    public static IReadOnlyList<Change> Register(NodeState node, OverlayState overlay, NodeRegistration r, OverlayNetwork network)
    {
        CheckRegistration(r);
        var key = node.Id.ToString("D");
        if (node.Current is not { } current)
        {
            var index = overlay.LastIndex + 1;
            if (index > OverlayNetwork.MaxNodes)
            {
                throw DomainException.Conflict("overlay_full", $"the overlay {network.Text} has no free /64 left ({OverlayNetwork.MaxNodes} nodes)");
            }
            var prefix = network.NodePrefix(index);
            return
            [
                node.Change(null, new DomainEvent(EventNames.NodeRegistered, new NodeRegistered(r.Name, prefix, r.MemoryBytes, r.Cpus, r.Driver, r.Acceleration, r.Region, r.AgentVersion), key)),
                overlay.Change(null, new DomainEvent(EventNames.OverlayPrefixAllocated, new OverlayPrefixAllocated(node.Id, r.Name, index, prefix))),
            ];
        }
        var update = new NodeUpdated(r.Name, current.Prefix, r.MemoryBytes, r.Cpus, r.Driver, r.Acceleration, r.Region, r.AgentVersion);
        return update.AsNode() == current ? [] : [node.Change(null, new DomainEvent(EventNames.NodeUpdated, update, key))];
    }

    /// <summary>
    /// Records an instance's state as its agent reports it; nothing when it equals the last report.
    /// <c>scheduled</c> is the control plane's own state and cannot be reported. A report from
    /// <c>running</c> on without an address keeps the last one.
    /// </summary>
    /// <param name="instance">The instance's aggregate.</param>
    /// <param name="nodeId">The node it is scheduled on (checked by the caller).</param>
    /// <param name="tenantId">Its env's org.</param>
    /// <param name="state">The new state.</param>
    /// <param name="address">Its IPv6 address, if reported.</param>
    /// <param name="exitCode">The exit code, if it exited.</param>
    /// <param name="reason">Why, for <c>failed</c> and as detail elsewhere.</param>
    /// <param name="restarts">How often the agent restarted it.</param>
    public static IReadOnlyList<Change> ReportState(InstanceState instance, Guid nodeId, Guid? tenantId, string state, string? address, int? exitCode, string? reason, int restarts)
    {
        if (state == InstanceStates.Scheduled || !InstanceStates.All.Contains(state ?? ""))
        {
            throw DomainException.Invalid("invalid_state", "state",
                $"\"{Shorten(state)}\" is not a state an agent reports: use {string.Join(", ", InstanceStates.All.Where(s => s != InstanceStates.Scheduled))}");
        }
        if (address is not null)
        {
            if (address.Length > 64 || !IPAddress.TryParse(address, out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6 || ip.ScopeId != 0 || address.Contains('/', StringComparison.Ordinal))
            {
                throw DomainException.Invalid("invalid_address", "address", $"\"{Shorten(address)}\" is not an IPv6 address");
            }
            address = ip.ToString();
        }
        if (reason is not null && (reason.Length > MaxReasonLength || reason.Any(char.IsControl) || HasLoneSurrogate(reason)))
        {
            throw DomainException.Invalid("invalid_reason", "reason", $"reason is one line of at most {MaxReasonLength} characters, without control characters");
        }
        if (restarts < 0)
        {
            throw DomainException.Invalid("invalid_restarts", "restarts", "restarts cannot be negative");
        }
        var last = instance.Last;
        if (address is null && last?.Address is { } kept && state is InstanceStates.Running or InstanceStates.Healthy or InstanceStates.Unhealthy)
        {
            address = kept;
        }
        var next = new InstanceStateChanged(nodeId, state!, address, exitCode, reason, restarts);
        // Stopped is final: a second word of it (the agent's own, after the control plane took a
        // heartbeat that left the instance out as its end) records nothing.
        if (next == last || (last?.State == InstanceStates.Stopped && state == InstanceStates.Stopped))
        {
            return [];
        }
        return [instance.Change(tenantId, new DomainEvent(EventNames.InstanceStateChanged, next, nodeId.ToString("D")))];
    }

    /// <summary>
    /// The operator sets a node's admin state (<see cref="NodeAdminStates"/>); nothing when it is
    /// in that state already.
    /// </summary>
    public static IReadOnlyList<Change> SetAdminState(NodeState node, string state, string reason)
    {
        if (node.Current is null)
        {
            throw DomainException.NotFound("node");
        }
        if (!NodeAdminStates.All.Contains(state ?? ""))
        {
            throw DomainException.Invalid("invalid_admin_state", "state", $"\"{Shorten(state)}\" is not a node state an operator sets: use {string.Join(", ", NodeAdminStates.All)}");
        }
        if (node.AdminState == state)
        {
            return [];
        }
        return [node.Change(null, new DomainEvent(EventNames.NodeAdminStateSet, new NodeAdminStateSet(state!, reason), node.Id.ToString("D")))];
    }

    /// <summary>The leader declares a node lost (nothing when it is already).</summary>
    public static IReadOnlyList<Change> MarkLost(NodeState node, DateTimeOffset? lastSeen, string reason) =>
        node.Current is null || node.Lost ? [] : [node.Change(null, new DomainEvent(EventNames.NodeLost, new NodeLost(lastSeen, reason), node.Id.ToString("D")))];

    /// <summary>The leader heard from a lost node again (nothing when it is not lost).</summary>
    public static IReadOnlyList<Change> MarkRecovered(NodeState node, string reason) =>
        !node.Lost ? [] : [node.Change(null, new DomainEvent(EventNames.NodeRecovered, new NodeRecovered(reason), node.Id.ToString("D")))];

    /// <summary>Whether a string holds a UTF-16 surrogate without its pair (not encodable as UTF-8).</summary>
    public static bool HasLoneSurrogate(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
                {
                    return true;
                }
                i++;
            }
            else if (char.IsLowSurrogate(s[i]))
            {
                return true;
            }
        }
        return false;
    }

    private static string Shorten(string? s) => s is null ? "" : Toml.TomlKeys.Printable(s, 64);
}
