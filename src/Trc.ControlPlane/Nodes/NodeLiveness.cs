using System.Data.Common;
using System.Globalization;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.EventStore;
using Trc.EventStore.Projections;

namespace Trc.ControlPlane.Nodes;

/// <summary>
/// Node leases, shared by every server replica: a registration or heartbeat, whichever replica
/// takes it, renews the node's row in <c>cp_node_leases</c> (not an event: heartbeats would flood
/// the log). A node heard from within the lease is <c>ready</c>; past it, <c>silent</c> until the
/// scheduler's leader declares it <c>lost</c> (an event) and reschedules its instances. Times are
/// the writing replica's clock, so replicas need synchronized clocks (NTP), as leases anywhere do.
/// </summary>
public sealed class NodeLiveness(ISqlDatabase database, TimeSpan lease, TimeProvider time)
{
    /// <summary>How long a node stays ready after it was last heard from.</summary>
    public TimeSpan Lease { get; } = lease;

    /// <summary>Pulsed when this replica hears from a node that was not ready (first heard from, or back from silence).</summary>
    public AsyncSignal BecameReady { get; } = new();

    /// <summary>Creates the table if missing.</summary>
    public async Task InitializeAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var command = Command(connection, "CREATE TABLE IF NOT EXISTS cp_node_leases (node_id text PRIMARY KEY, seen_us bigint NOT NULL)");
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Renews the node's lease: it was heard from now.</summary>
    public async Task HeardAsync(Guid node, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        DateTimeOffset? was = null;
        await using (var read = Command(connection, "SELECT seen_us FROM cp_node_leases WHERE node_id = @n", ("@n", node.ToString("D"))))
        {
            if (await read.ExecuteScalarAsync(ct).ConfigureAwait(false) is { } value and not DBNull)
            {
                was = FromMicros(Convert.ToInt64(value, CultureInfo.InvariantCulture));
            }
        }
        await using (var write = Command(connection,
            "INSERT INTO cp_node_leases (node_id, seen_us) VALUES (@n, @s) ON CONFLICT (node_id) DO UPDATE SET seen_us = excluded.seen_us WHERE cp_node_leases.seen_us < excluded.seen_us",
            ("@n", node.ToString("D")), ("@s", Micros(now))))
        {
            await write.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        if (was is null || now - was.Value >= Lease)
        {
            BecameReady.Pulse();
        }
    }

    /// <summary>When every node was last heard from (by any replica).</summary>
    public async Task<Dictionary<Guid, DateTimeOffset>> LastSeenAsync(CancellationToken ct)
    {
        var seen = new Dictionary<Guid, DateTimeOffset>();
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var command = Command(connection, "SELECT node_id, seen_us FROM cp_node_leases");
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            if (Guid.TryParse(reader.GetString(0), out var id))
            {
                seen[id] = FromMicros(Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture));
            }
        }
        return seen;
    }

    /// <summary>Whether a node last heard from at <paramref name="lastSeen"/> is within its lease now.</summary>
    public bool IsFresh(DateTimeOffset? lastSeen) => lastSeen is { } at && time.GetUtcNow() - at < Lease;

    /// <summary>
    /// A node's status for people: <c>disabled</c> and <c>draining</c> (the operator's) come first,
    /// then <c>lost</c> (the leader's), then <c>ready</c> or <c>silent</c> by the lease.
    /// </summary>
    public string Status(string adminState, bool lost, DateTimeOffset? lastSeen) =>
        adminState == NodeAdminStates.Disabled ? NodeStatuses.Disabled
        : adminState == NodeAdminStates.Draining ? NodeStatuses.Draining
        : lost ? NodeStatuses.Lost
        : IsFresh(lastSeen) ? NodeStatuses.Ready
        : NodeStatuses.Silent;

    private static DbCommand Command(DbConnection connection, string sql, params (string Name, object? Value)[] parameters) =>
        SqlCommands.Create(connection, null, sql, parameters);

    private static long Micros(DateTimeOffset t) => (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    private static DateTimeOffset FromMicros(long us) => DateTimeOffset.UnixEpoch.AddTicks(us * 10);
}

/// <summary>Node statuses as <see cref="NodeView.Status"/> reports them.</summary>
public static class NodeStatuses
{
    /// <summary>Heard from within the lease, active.</summary>
    public const string Ready = "ready";

    /// <summary>Not heard from within the lease; not declared lost yet.</summary>
    public const string Silent = "silent";

    /// <summary>Declared lost by the scheduler's leader: its instances were rescheduled.</summary>
    public const string Lost = "lost";

    /// <summary>Draining (operator): no new instances; its instances move away.</summary>
    public const string Draining = "draining";

    /// <summary>Disabled (operator): no instances; its instances were rescheduled.</summary>
    public const string Disabled = "disabled";
}
