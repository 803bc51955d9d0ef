using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Core.Manifest;
using Trc.Core.Scheduling;

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
/// <param name="AdminState">The operator's state (active, draining, disabled).</param>
/// <param name="Lost">Whether the leader declared it lost.</param>
/// <param name="StatusReason">Why its status last changed.</param>
public sealed record NodeRow(Guid Id, string Name, string Prefix, long MemoryBytes, int Cpus, string Driver, string Acceleration, string? Region, string? AgentVersion, DateTimeOffset RegisteredAt, int Instances, long UsedMemoryBytes,
    string AdminState = NodeAdminStates.Active, bool Lost = false, string? StatusReason = null);

/// <summary>A live instance as the scheduler plans with it.</summary>
/// <param name="EnvId">Its env.</param>
/// <param name="Status">Where it runs and its last state.</param>
/// <param name="MemoryBytes">Its memory cap.</param>
/// <param name="Cpu">Its CPU request.</param>
public sealed record SchedulingInstance(Guid EnvId, InstanceStatus Status, long MemoryBytes, double Cpu);

/// <summary>When an env's latest deployment started and switched traffic.</summary>
/// <param name="Deployment">Its number.</param>
/// <param name="StartedAt">When it started.</param>
/// <param name="SwitchedAt">When traffic switched to it, if it did.</param>
public sealed record DeploymentTimes(int Deployment, DateTimeOffset StartedAt, DateTimeOffset? SwitchedAt);

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
        (SELECT coalesce(sum(i.memory_bytes), 0) FROM cp_instances i WHERE i.node_id = n.id AND i.stop_requested = 0),
        n.admin_state, n.lost, n.status_reason
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
        Convert.ToInt32(r.GetValue(10), CultureInfo.InvariantCulture), Convert.ToInt64(r.GetValue(11), CultureInfo.InvariantCulture),
        r.GetString(12), Convert.ToInt64(r.GetValue(13), CultureInfo.InvariantCulture) != 0, r.IsDBNull(14) ? null : r.GetString(14));

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

    /// <summary>
    /// A node's instances that were asked to stop but still read as live (starting, running,
    /// healthy or unhealthy): the node either is stopping them now or no longer runs them.
    /// </summary>
    public Task<List<InstanceRow>> StoppingOnNodeAsync(Guid nodeId, CancellationToken ct) =>
        QueryAsync(
            $"SELECT {InstanceColumns} FROM cp_instances i JOIN cp_envs e ON e.id = i.env_id JOIN cp_orgs o ON o.id = e.org_id "
            + "WHERE i.node_id = @n AND i.stop_requested = 1 AND i.state IN ('starting', 'running', 'healthy', 'unhealthy')",
            ReadInstance, ct, ("@n", (object?)nodeId.ToString("D")));

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
            SELECT i.id, i.process, i.release, i.node_id, coalesce(n.name, ''), i.state, i.address, i.exit_code, i.reason, i.restarts, i.stop_requested, i.scheduled_at, i.updated_at, i.deployment, i.stop_reason
            FROM cp_instances i LEFT JOIN cp_nodes n ON n.id = i.node_id
            WHERE i.env_id = @e AND NOT (i.stop_requested = 1 AND i.state IN ('stopped', 'scheduled', 'failed', 'exited', 'memory_limit_exceeded'))
            ORDER BY i.process, i.release DESC, i.scheduled_at, i.id
            """,
            r => new InstanceView(
                Guid.Parse(r.GetString(0)), r.GetString(1), Convert.ToInt32(r.GetValue(2), CultureInfo.InvariantCulture), Guid.Parse(r.GetString(3)), r.GetString(4),
                r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : Convert.ToInt32(r.GetValue(7), CultureInfo.InvariantCulture),
                r.IsDBNull(8) ? null : r.GetString(8), Convert.ToInt32(r.GetValue(9), CultureInfo.InvariantCulture),
                Convert.ToInt64(r.GetValue(10), CultureInfo.InvariantCulture) != 0, Time(r.GetString(11)), Time(r.GetString(12)),
                Convert.ToInt32(r.GetValue(13), CultureInfo.InvariantCulture), r.IsDBNull(14) ? null : r.GetString(14)),
            ct, ("@e", envId.ToString("D")));

    /// <summary>
    /// Envs the scheduler plans: those with a deployment, and those with live instances. Each with
    /// its latest deployment's number and times (null when it has none).
    /// </summary>
    public Task<List<(Guid Env, DeploymentTimes? Times)>> SchedulingEnvsAsync(CancellationToken ct) =>
        QueryAsync(
            """
            SELECT e.id, d.number, d.started_at, d.switched_at FROM cp_envs e LEFT JOIN cp_deployments d ON d.env_id = e.id AND d.number = e.deployment
            WHERE e.deployment > 0 OR EXISTS (SELECT 1 FROM cp_instances i WHERE i.env_id = e.id AND i.stop_requested = 0)
            ORDER BY e.id
            """,
            r => (Guid.Parse(r.GetString(0)), r.IsDBNull(1) ? null
                : new DeploymentTimes(Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture), Time(r.GetString(2)), r.IsDBNull(3) ? null : Time(r.GetString(3)))),
            ct);

    /// <summary>Every instance not asked to stop, with its last state, memory and CPU.</summary>
    public Task<List<SchedulingInstance>> SchedulingInstancesAsync(CancellationToken ct) =>
        QueryAsync(
            "SELECT env_id, id, node_id, process, release, deployment, state, restarts, exit_code, reason, memory_bytes, cpu FROM cp_instances WHERE stop_requested = 0",
            r => new SchedulingInstance(Guid.Parse(r.GetString(0)),
                new InstanceStatus(Guid.Parse(r.GetString(1)), Guid.Parse(r.GetString(2)), r.GetString(3), Convert.ToInt32(r.GetValue(4), CultureInfo.InvariantCulture),
                    Convert.ToInt32(r.GetValue(5), CultureInfo.InvariantCulture), r.GetString(6), Convert.ToInt32(r.GetValue(7), CultureInfo.InvariantCulture),
                    r.IsDBNull(8) ? null : Convert.ToInt32(r.GetValue(8), CultureInfo.InvariantCulture), r.IsDBNull(9) ? null : r.GetString(9)),
                Convert.ToInt64(r.GetValue(10), CultureInfo.InvariantCulture), Convert.ToDouble(r.GetValue(11), CultureInfo.InvariantCulture)),
            ct);

    private const string DeploymentColumns = "number, release, kind, reason, status, failure_reason, started_at, switched_at, finished_at";

    /// <summary>An env's deployments, newest first (at most <paramref name="limit"/>).</summary>
    public Task<List<DeploymentView>> DeploymentsAsync(Guid envId, int limit, CancellationToken ct) =>
        QueryAsync($"SELECT {DeploymentColumns} FROM cp_deployments WHERE env_id = @e ORDER BY number DESC LIMIT {limit.ToString(CultureInfo.InvariantCulture)}", ReadDeployment, ct, ("@e", envId.ToString("D")));

    /// <summary>One deployment, or null.</summary>
    public async Task<DeploymentView?> DeploymentAsync(Guid envId, int number, CancellationToken ct) =>
        (await QueryAsync($"SELECT {DeploymentColumns} FROM cp_deployments WHERE env_id = @e AND number = @n", ReadDeployment, ct, ("@e", envId.ToString("D")), ("@n", number)).ConfigureAwait(false)).FirstOrDefault();

    private static DeploymentView ReadDeployment(DbDataReader r) => new(
        Convert.ToInt32(r.GetValue(0), CultureInfo.InvariantCulture), Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture), r.GetString(2), r.GetString(3), r.GetString(4),
        r.IsDBNull(5) ? null : r.GetString(5), Time(r.GetString(6)), r.IsDBNull(7) ? null : Time(r.GetString(7)), r.IsDBNull(8) ? null : Time(r.GetString(8)));

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

    /// <summary>An env's org, app and env names, or null.</summary>
    public async Task<(string Org, string App, string Env)?> EnvNamesAsync(Guid envId, CancellationToken ct)
    {
        var rows = await QueryAsync("SELECT o.name, e.app, e.name FROM cp_envs e JOIN cp_orgs o ON o.id = e.org_id WHERE e.id = @e",
            r => (r.GetString(0), r.GetString(1), r.GetString(2)), ct, ("@e", envId.ToString("D"))).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }
}
