using System.Collections.Concurrent;
using Trc.Core.Api;
using Trc.EventStore;

namespace Trc.ControlPlane.Nodes;

/// <summary>
/// When this server replica last heard from each node (a registration or a heartbeat), kept in
/// memory only: a heartbeat appends no event. A node heard from within the lease is <c>ready</c>,
/// else <c>silent</c>. With several replicas behind a load balancer each knows only the heartbeats
/// it received; liveness shared between replicas (and <c>lost</c> nodes) comes with the full
/// scheduler (issue 8).
/// </summary>
public sealed class NodeLiveness(TimeSpan lease, TimeProvider time)
{
    private readonly ConcurrentDictionary<Guid, DateTimeOffset> _lastSeen = new();

    /// <summary>How long a node stays ready after it was last heard from.</summary>
    public TimeSpan Lease { get; } = lease;

    /// <summary>Pulsed when a node becomes ready (first heard from, or back from silence).</summary>
    public AsyncSignal BecameReady { get; } = new();

    /// <summary>Notes that the node was heard from now.</summary>
    public void Heard(Guid node)
    {
        var now = time.GetUtcNow();
        var was = _lastSeen.TryGetValue(node, out var last) ? last : (DateTimeOffset?)null;
        _lastSeen[node] = now;
        if (was is null || now - was.Value >= Lease)
        {
            BecameReady.Pulse();
        }
    }

    /// <summary>When the node was last heard from by this replica, or null.</summary>
    public DateTimeOffset? LastSeen(Guid node) => _lastSeen.TryGetValue(node, out var at) ? at : null;

    /// <summary>Whether the node was heard from within the lease.</summary>
    public bool IsReady(Guid node) => LastSeen(node) is { } at && time.GetUtcNow() - at < Lease;

    /// <summary><c>ready</c> or <c>silent</c>.</summary>
    public string Status(Guid node) => IsReady(node) ? NodeStatuses.Ready : NodeStatuses.Silent;
}

/// <summary>Node statuses as <see cref="NodeView.Status"/> reports them.</summary>
public static class NodeStatuses
{
    /// <summary>Heard from within the lease.</summary>
    public const string Ready = "ready";

    /// <summary>Not heard from within the lease (by this replica).</summary>
    public const string Silent = "silent";
}
