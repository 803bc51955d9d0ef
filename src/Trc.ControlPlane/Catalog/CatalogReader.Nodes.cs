using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Core.Manifest;

namespace Trc.ControlPlane.Catalog;

/// <summary>A node as the catalog holds it, with what is scheduled on it.</summary>
/// <param name="Id">The node's id.</param>
/// <param name="Name">Its name.</param>
/// <param name="Prefix">Its /64.</param>
/// <param name="MemoryBytes">Memory it offers.</param>
/// <param name="Cpus">CPU cores.</param>
/// <param name="Driver">Runtime driver.</param>
/// <param name="Acceleration">kvm, tcg or none.</param>
/// <param name="Region">Region label.</param>
/// <param name="AgentVersion">The agent's version.</param>
/// <param name="RegisteredAt">First registration.</param>
/// <param name="Instances">Instances scheduled on it and not stop-requested.</param>
/// <param name="UsedMemoryBytes">The memory caps of those instances, summed.</param>
public sealed record NodeRow(Guid Id, string Name, string Prefix, long MemoryBytes, int Cpus, string Driver, string Acceleration, string? Region, string? AgentVersion, DateTimeOffset RegisteredAt, int Instances, long UsedMemoryBytes);

/// <summary>An instance with the names that tag its logs.</summary>
/// <param name="Id">The instance.</param>
/// <param name="EnvId">Its env.</param>
/// <param name="OrgId">Its org.</param>
/// <param name="NodeId">The node it is scheduled on.</param>
/// <param name="Process">Its process type.</param>
/// <param name="Release">Its release.</param>
/// <param name="StopRequested">Whether a stop was requested.</param>
/// <param name="State">The last reported state.</param>
/// <param name="Org">Org name.</param>
/// <param name="App">App name.</param>
/// <param name="Env">Env name.</param>
public sealed record InstanceRow(Guid Id, Guid EnvId, Guid OrgId, Guid NodeId, string Process, int Release, bool StopRequested, string State, string Org, string App, string Env);

// Reads of nodes and instances.
public sealed partial class CatalogReader
{
    private const string NodeColumns = """
        n.id, n.name, n.prefix, n.memory_bytes, n.cpus, n.driver, n.acceleration, n.region, n.agent_version, n.registered_at,
        (SELECT count(*) FROM cp_instances i WHERE i.node_id = n.id AND i.stop_requested = 0),
        (SELECT coalesce(sum(i.memory_bytes), 0) FROM cp_instances i WHERE i.node_id = n.id AND i.stop_requested = 0)
        """;

    /// <summary>Every node, by name.</summary>
    public Task<List<NodeRow>> NodesAsync(CancellationToken ct) =>
        QueryAsync($"SELECT {NodeColumns} FROM cp_nodes n ORDER BY n.name", ReadNode, ct);

    /// <summary>One node.</summary>
    public async Task<NodeRow?> NodeAsync(Guid id, CancellationToken ct) =>
        (await QueryAsync($"SELECT {NodeColumns} FROM cp_nodes n WHERE n.id = @id", ReadNode, ct, ("@id", id.ToString("D")))).FirstOrDefault();

    private static NodeRow ReadNode(DbDataReader r) => new(
        Guid.Parse(r.GetString(0)), r.GetString(1), r.GetString(2), r.GetInt64(3), Convert.ToInt32(r.GetValue(4), CultureInfo.InvariantCulture),
        r.GetString(5), r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7), r.IsDBNull(8) ? null : r.GetString(8), Time(r.GetString(9)),
        Convert.ToInt32(r.GetValue(10), CultureInfo.InvariantCulture), Convert.ToInt64(r.GetValue(11), CultureInfo.InvariantCulture));

    private const string InstanceColumns = "i.id, i.env_id, i.org_id, i.node_id, i.process, i.release, i.stop_requested, i.state, o.name, e.app, e.name";

    /// <summary>The instances with these ids (those that exist).</summary>
    public async Task<Dictionary<Guid, InstanceRow>> InstancesAsync(IReadOnlyCollection<Guid> ids, CancellationToken ct)
    {
        if (ids.Count == 0)
        {
            return [];
        }
        var names = ids.Select((_, i) => "@i" + i.ToString(CultureInfo.InvariantCulture)).ToList();
        var rows = await QueryAsync(
            $"SELECT {InstanceColumns} FROM cp_instances i JOIN cp_envs e ON e.id = i.env_id JOIN cp_orgs o ON o.id = e.org_id WHERE i.id IN ({string.Join(", ", names)})",
            ReadInstance, ct, ids.Select((id, i) => (names[i], (object?)id.ToString("D"))).ToArray()).ConfigureAwait(false);
        return rows.ToDictionary(r => r.Id);
    }

    private static InstanceRow ReadInstance(DbDataReader r) => new(
        Guid.Parse(r.GetString(0)), Guid.Parse(r.GetString(1)), Guid.TryParse(r.GetString(2), out var org) ? org : Guid.Empty, Guid.Parse(r.GetString(3)),
        r.GetString(4), Convert.ToInt32(r.GetValue(5), CultureInfo.InvariantCulture), Convert.ToInt64(r.GetValue(6), CultureInfo.InvariantCulture) != 0,
        r.GetString(7), r.GetString(8), r.GetString(9), r.GetString(10));

    /// <summary>
    /// What a node runs: its instances that were not asked to stop, each with everything the agent
    /// needs from the instance's release (oldest first).
    /// </summary>
    public async Task<List<InstanceSpecView>> NodeInstancesAsync(Guid nodeId, string? region, CancellationToken ct)
    {
        var manifests = new Dictionary<(string, int), AppManifest>();
        return await QueryAsync(
            """
            SELECT i.id, o.name, e.app, e.name, i.env_id, i.process, i.release, r.image, r.image_digest, r.resolved_digests, r.manifest, r.secrets_version
            FROM cp_instances i JOIN cp_envs e ON e.id = i.env_id JOIN cp_orgs o ON o.id = e.org_id
                 JOIN cp_releases r ON r.env_id = i.env_id AND r.number = i.release
            WHERE i.node_id = @n AND i.stop_requested = 0
            ORDER BY i.scheduled_at, i.id
            """,
            r =>
            {
                var envId = r.GetString(4);
                var release = Convert.ToInt32(r.GetValue(6), CultureInfo.InvariantCulture);
                if (!manifests.TryGetValue((envId, release), out var manifest))
                {
                    using var json = JsonDocument.Parse(r.GetString(10));
                    manifests[(envId, release)] = manifest = ManifestJson.Read(json.RootElement);
                }
                var process = manifest.FindProcess(r.GetString(5)) ?? throw new InvalidOperationException($"release {release} of env {envId} has no process {r.GetString(5)}");
                var health = process.Healthcheck is { } h
                    ? new HealthcheckView(h.Kind == HealthcheckKind.Http ? "http" : "tcp", h.Port, h.Path, (int)h.Interval.TotalMilliseconds, (int)h.Timeout.TotalMilliseconds)
                    : null;
                var volumes = manifest.Volumes.Where(v => v.Process == process.Name)
                    .Select(v => new VolumeView(v.Name, v.SizeBytes, v.Process, v.BackupEnabled, v.MountPath)).ToList();
                return new InstanceSpecView(
                    Guid.Parse(r.GetString(0)), r.GetString(1), r.GetString(2), r.GetString(3), Guid.Parse(envId), process.Name, release,
                    r.GetString(7), r.GetString(8), r.IsDBNull(9) ? null : JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(9)),
                    process.Command, process.Ports, process.Cpu, process.MemoryBytes, process.User, health,
                    Convert.ToInt32(r.GetValue(11), CultureInfo.InvariantCulture), volumes, region);
            },
            ct, ("@n", nodeId.ToString("D"))).ConfigureAwait(false);
    }

    /// <summary>
    /// An env's instances as users see them: every one except those asked to stop that have
    /// reached an end (stopped, exited, failed, or never started).
    /// </summary>
    public Task<List<InstanceView>> EnvInstancesAsync(Guid envId, CancellationToken ct) =>
        QueryAsync(
            """
            SELECT i.id, i.process, i.release, i.node_id, coalesce(n.name, ''), i.state, i.address, i.exit_code, i.reason, i.restarts, i.stop_requested, i.scheduled_at, i.updated_at
            FROM cp_instances i LEFT JOIN cp_nodes n ON n.id = i.node_id
            WHERE i.env_id = @e AND NOT (i.stop_requested = 1 AND i.state IN ('stopped', 'scheduled', 'failed', 'exited', 'memory_limit_exceeded'))
            ORDER BY i.process, i.release DESC, i.scheduled_at, i.id
            """,
            r => new InstanceView(
                Guid.Parse(r.GetString(0)), r.GetString(1), Convert.ToInt32(r.GetValue(2), CultureInfo.InvariantCulture), Guid.Parse(r.GetString(3)), r.GetString(4),
                r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : Convert.ToInt32(r.GetValue(7), CultureInfo.InvariantCulture),
                r.IsDBNull(8) ? null : r.GetString(8), Convert.ToInt32(r.GetValue(9), CultureInfo.InvariantCulture),
                Convert.ToInt64(r.GetValue(10), CultureInfo.InvariantCulture) != 0, Time(r.GetString(11)), Time(r.GetString(12))),
            ct, ("@e", envId.ToString("D")));

    /// <summary>Envs with a deployed release: (env, release number).</summary>
    public Task<List<(Guid Env, int Release)>> DeployedEnvsAsync(CancellationToken ct) =>
        QueryAsync("SELECT id, deployed_release FROM cp_envs WHERE deployed_release > 0 ORDER BY id",
            r => (Guid.Parse(r.GetString(0)), Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture)), ct);

    /// <summary>A release's normalized manifest, or null.</summary>
    public async Task<AppManifest?> ReleaseManifestAsync(Guid envId, int number, CancellationToken ct)
    {
        var text = (await QueryAsync("SELECT manifest FROM cp_releases WHERE env_id = @e AND number = @n", r => r.GetString(0), ct,
            ("@e", envId.ToString("D")), ("@n", number)).ConfigureAwait(false)).FirstOrDefault();
        if (text is null)
        {
            return null;
        }
        using var json = JsonDocument.Parse(text);
        return ManifestJson.Read(json.RootElement);
    }

    /// <summary>Every instance not asked to stop, by env.</summary>
    public async Task<Dictionary<Guid, List<ScheduledInstance>>> LiveInstancesAsync(CancellationToken ct)
    {
        var rows = await QueryAsync("SELECT env_id, id, node_id, process, release FROM cp_instances WHERE stop_requested = 0",
            r => (Env: Guid.Parse(r.GetString(0)), Instance: new ScheduledInstance(Guid.Parse(r.GetString(1)), Guid.Parse(r.GetString(2)), r.GetString(3), Convert.ToInt32(r.GetValue(4), CultureInfo.InvariantCulture), false)),
            ct).ConfigureAwait(false);
        return rows.GroupBy(r => r.Env).ToDictionary(g => g.Key, g => g.Select(x => x.Instance).ToList());
    }

    /// <summary>An env's org, app and env names, or null.</summary>
    public async Task<(string Org, string App, string Env)?> EnvNamesAsync(Guid envId, CancellationToken ct)
    {
        var rows = await QueryAsync("SELECT o.name, e.app, e.name FROM cp_envs e JOIN cp_orgs o ON o.id = e.org_id WHERE e.id = @e",
            r => (r.GetString(0), r.GetString(1), r.GetString(2)), ct, ("@e", envId.ToString("D"))).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }
}
