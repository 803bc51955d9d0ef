using System.Globalization;
using System.Text.Json;
using Trc.Core.Domain;
using Trc.EventStore;
using Trc.EventStore.Projections;

namespace Trc.ControlPlane.Catalog;

/// <summary>
/// The catalog: orgs, tokens, apps, envs, releases, routes, volumes and IPv4 addresses as tables,
/// kept from the log. Every read of the API comes from here; commands wait for it to pass their
/// events before answering (read-your-writes). It can be rebuilt from the first event.
/// The SQL is the subset both Postgres and SQLite accept: ids and times are text, flags integers.
/// </summary>
public sealed class CatalogProjection : IProjection
{
    /// <summary>The projection's name (its checkpoint and lease key).</summary>
    public const string ProjectionName = "catalog";

    /// <inheritdoc />
    public string Name => ProjectionName;

    /// <inheritdoc />
    public IReadOnlyCollection<string>? EventTypes { get; } =
    [
        EventNames.OrgCreated, EventNames.OrgQuotasSet, EventNames.OrgUsageChanged,
        EventNames.TokenCreated, EventNames.TokenRevoked,
        EventNames.AppCreated, EventNames.EnvCreated,
        EventNames.ReleaseCreated, EventNames.ReleaseDeployed,
        EventNames.RouteAdded, EventNames.RouteRemoved, EventNames.RouteChanged,
        EventNames.EnvIpv4Enabled, EventNames.EnvIpv4Disabled,
        EventNames.SecretsSet, EventNames.VolumeDeclared, EventNames.VolumeRemoved, EventNames.VolumeChanged,
        EventNames.NodeRegistered, EventNames.NodeUpdated,
        EventNames.InstanceScheduled, EventNames.InstanceStopRequested, EventNames.InstanceStateChanged,
        EventNames.TrafficSwitched, EventNames.DeploymentCompleted, EventNames.DeploymentFailed, EventNames.EnvScaled,
        EventNames.NodeLost, EventNames.NodeRecovered, EventNames.NodeAdminStateSet,
    ];

    private static readonly string[] Tables = ["cp_orgs", "cp_tokens", "cp_apps", "cp_envs", "cp_releases", "cp_routes", "cp_volumes", "cp_ipv4", "cp_nodes", "cp_instances", "cp_deployments", "cp_scale"];

    /// <inheritdoc />
    public async Task InitializeAsync(ProjectionContext context, CancellationToken cancellationToken)
    {
        // Tables only, each with its indexes inline (as keys): CREATE TABLE IF NOT EXISTS is
        // allowed to the application role on an existing table, CREATE INDEX is not (it needs
        // the table's owner), and servers run as that role (docs/runbooks/control-plane.md).
        foreach (var ddl in new[]
        {
            "CREATE TABLE IF NOT EXISTS cp_orgs (id text PRIMARY KEY, name text NOT NULL UNIQUE, memory_quota bigint NOT NULL, instances_quota integer NOT NULL, routes_quota integer NOT NULL, ipv4_quota integer NOT NULL, memory_used bigint NOT NULL, instances_used integer NOT NULL, routes_used integer NOT NULL, ipv4_used integer NOT NULL, created_at text NOT NULL)",
            "CREATE TABLE IF NOT EXISTS cp_tokens (id text PRIMARY KEY, org_id text, name text NOT NULL, role text NOT NULL, secret_hash text NOT NULL, revoked integer NOT NULL, created_at text NOT NULL, UNIQUE (org_id, id))",
            "CREATE TABLE IF NOT EXISTS cp_apps (id text PRIMARY KEY, org_id text NOT NULL, name text NOT NULL, created_at text NOT NULL, UNIQUE (org_id, name))",
            "CREATE TABLE IF NOT EXISTS cp_envs (id text PRIMARY KEY, org_id text NOT NULL, app_id text NOT NULL, app text NOT NULL, name text NOT NULL, deployed_release integer NOT NULL, deployment integer NOT NULL DEFAULT 0, active_deployment integer NOT NULL DEFAULT 0, active_release integer NOT NULL DEFAULT 0, secrets_version integer NOT NULL, secret_names text NOT NULL, secret_bundle_id text, ipv4_address text, ipv4_ports text, created_at text NOT NULL, UNIQUE (app_id, name))",
            "CREATE TABLE IF NOT EXISTS cp_releases (env_id text NOT NULL, number integer NOT NULL, image text NOT NULL, image_digest text NOT NULL, resolved_digests text, manifest text NOT NULL, secrets_version integer NOT NULL, memory_bytes bigint NOT NULL, instances integer NOT NULL, created_at text NOT NULL, created_by text, PRIMARY KEY (env_id, number))",
            "CREATE TABLE IF NOT EXISTS cp_routes (env_id text NOT NULL, org_id text NOT NULL, hostname text NOT NULL, listen_port integer NOT NULL, protocol text NOT NULL, process text NOT NULL, backend_port integer NOT NULL, proxy_protocol text NOT NULL, backend_expects integer NOT NULL, ipv4_required integer NOT NULL, created_at text NOT NULL, PRIMARY KEY (env_id, hostname, listen_port))",
            "CREATE TABLE IF NOT EXISTS cp_volumes (env_id text NOT NULL, name text NOT NULL, size_bytes bigint NOT NULL, process text NOT NULL, backup_enabled integer NOT NULL, PRIMARY KEY (env_id, name))",
            "CREATE TABLE IF NOT EXISTS cp_ipv4 (address text PRIMARY KEY, env_id text NOT NULL, org_id text NOT NULL)",
            "CREATE TABLE IF NOT EXISTS cp_nodes (id text PRIMARY KEY, name text NOT NULL UNIQUE, prefix text NOT NULL, memory_bytes bigint NOT NULL, cpus integer NOT NULL, driver text NOT NULL, acceleration text NOT NULL, region text, agent_version text, admin_state text NOT NULL DEFAULT 'active', lost integer NOT NULL DEFAULT 0, status_reason text, registered_at text NOT NULL, updated_at text NOT NULL)",
            // memory_bytes: the process's cap in the instance's release, so a node's free memory is one SUM.
            "CREATE TABLE IF NOT EXISTS cp_instances (id text PRIMARY KEY, env_id text NOT NULL, org_id text NOT NULL, node_id text NOT NULL, process text NOT NULL, release integer NOT NULL, deployment integer NOT NULL DEFAULT 0, memory_bytes bigint NOT NULL, cpu double precision NOT NULL DEFAULT 0, health_check integer NOT NULL DEFAULT 0, state text NOT NULL, address text, exit_code integer, reason text, restarts integer NOT NULL, stop_requested integer NOT NULL, stop_reason text, scheduled_at text NOT NULL, updated_at text NOT NULL, UNIQUE (node_id, id), UNIQUE (env_id, id))",
            // One row per deployment (rollout) of an env: status rolling, draining, completed, failed, superseded or replaced.
            "CREATE TABLE IF NOT EXISTS cp_deployments (env_id text NOT NULL, number integer NOT NULL, release integer NOT NULL, kind text NOT NULL, reason text NOT NULL, status text NOT NULL, failure_reason text, started_at text NOT NULL, switched_at text, finished_at text, created_by text, PRIMARY KEY (env_id, number))",
            "CREATE TABLE IF NOT EXISTS cp_scale (env_id text NOT NULL, process text NOT NULL, count integer NOT NULL, PRIMARY KEY (env_id, process))",
        })
        {
            await context.ExecuteAsync(ddl, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async Task ResetAsync(ProjectionContext context, CancellationToken cancellationToken)
    {
        foreach (var table in Tables)
        {
            await context.ExecuteAsync($"DELETE FROM {table}", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public Task ApplyAsync(ProjectionContext c, StoredEvent e, CancellationToken ct)
    {
        var id = e.AggregateId.ToString("D");
        var at = e.OccurredAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);
        switch (e.EventType)
        {
            case EventNames.OrgCreated:
                var org = Read<OrgCreated>(e);
                return c.ExecuteAsync(
                    "INSERT INTO cp_orgs (id, name, memory_quota, instances_quota, routes_quota, ipv4_quota, memory_used, instances_used, routes_used, ipv4_used, created_at) VALUES (@id, @n, @mq, @iq, @rq, @4q, 0, 0, 0, 0, @at)",
                    ct, ("@id", id), ("@n", org.Name), ("@mq", org.Quotas.MemoryBytes), ("@iq", org.Quotas.Instances), ("@rq", org.Quotas.Routes), ("@4q", org.Quotas.Ipv4Addresses), ("@at", at));
            case EventNames.OrgQuotasSet:
                var quotas = Read<OrgQuotasSet>(e).Quotas;
                return c.ExecuteAsync("UPDATE cp_orgs SET memory_quota = @mq, instances_quota = @iq, routes_quota = @rq, ipv4_quota = @4q WHERE id = @id",
                    ct, ("@id", id), ("@mq", quotas.MemoryBytes), ("@iq", quotas.Instances), ("@rq", quotas.Routes), ("@4q", quotas.Ipv4Addresses));
            case EventNames.OrgUsageChanged:
                var usage = Read<OrgUsageChanged>(e).Usage;
                return c.ExecuteAsync("UPDATE cp_orgs SET memory_used = @m, instances_used = @i, routes_used = @r, ipv4_used = @4 WHERE id = @id",
                    ct, ("@id", id), ("@m", usage.MemoryBytes), ("@i", usage.Instances), ("@r", usage.Routes), ("@4", usage.Ipv4Addresses));
            case EventNames.TokenCreated:
                var token = Read<TokenCreated>(e);
                return c.ExecuteAsync("INSERT INTO cp_tokens (id, org_id, name, role, secret_hash, revoked, created_at) VALUES (@id, @o, @n, @r, @h, 0, @at)",
                    ct, ("@id", id), ("@o", token.OrgId?.ToString("D")), ("@n", token.Name), ("@r", token.Role), ("@h", token.SecretHash), ("@at", at));
            case EventNames.TokenRevoked:
                return c.ExecuteAsync("UPDATE cp_tokens SET revoked = 1 WHERE id = @id", ct, ("@id", id));
            case EventNames.AppCreated:
                var app = Read<AppCreated>(e);
                return c.ExecuteAsync("INSERT INTO cp_apps (id, org_id, name, created_at) VALUES (@id, @o, @n, @at)",
                    ct, ("@id", id), ("@o", app.OrgId.ToString("D")), ("@n", app.Name), ("@at", at));
            case EventNames.EnvCreated:
                var env = Read<EnvCreated>(e);
                return c.ExecuteAsync(
                    "INSERT INTO cp_envs (id, org_id, app_id, app, name, deployed_release, secrets_version, secret_names, created_at) VALUES (@id, @o, @a, @an, @n, 0, 0, '[]', @at)",
                    ct, ("@id", id), ("@o", env.OrgId.ToString("D")), ("@a", env.AppId.ToString("D")), ("@an", env.App), ("@n", env.Name), ("@at", at));
            case EventNames.ReleaseCreated:
                var release = Read<ReleaseCreated>(e);
                return c.ExecuteAsync(
                    "INSERT INTO cp_releases (env_id, number, image, image_digest, resolved_digests, manifest, secrets_version, memory_bytes, instances, created_at, created_by) VALUES (@id, @num, @img, @dig, @res, @man, @sv, @mem, @ins, @at, @by)",
                    ct, ("@id", id), ("@num", release.Number), ("@img", release.Image), ("@dig", release.ImageDigest),
                    ("@res", release.ResolvedDigests is null ? null : JsonSerializer.Serialize(release.ResolvedDigests)), ("@man", release.Manifest.GetRawText()),
                    ("@sv", release.SecretsVersion), ("@mem", release.MemoryBytes), ("@ins", release.Instances), ("@at", at), ("@by", e.ActorId?.ToString("D")));
            case EventNames.ReleaseDeployed:
                return DeployAsync(c, e, id, Read<ReleaseDeployed>(e), at, ct);
            case EventNames.TrafficSwitched:
                return SwitchAsync(c, id, Read<TrafficSwitched>(e), at, ct);
            case EventNames.DeploymentCompleted:
                return c.ExecuteAsync("UPDATE cp_deployments SET status = 'completed', finished_at = @at WHERE env_id = @id AND number = @d",
                    ct, ("@id", id), ("@d", Read<DeploymentCompleted>(e).Deployment), ("@at", at));
            case EventNames.DeploymentFailed:
                var failed = Read<DeploymentFailed>(e);
                return c.ExecuteAsync("UPDATE cp_deployments SET status = 'failed', failure_reason = @r, finished_at = @at WHERE env_id = @id AND number = @d",
                    ct, ("@id", id), ("@d", failed.Deployment), ("@r", failed.Reason), ("@at", at));
            case EventNames.EnvScaled:
                return ScaleAsync(c, id, Read<EnvScaled>(e), ct);
            case EventNames.NodeLost:
                return c.ExecuteAsync("UPDATE cp_nodes SET lost = 1, status_reason = @r, updated_at = @at WHERE id = @id", ct, ("@id", id), ("@r", Read<NodeLost>(e).Reason), ("@at", at));
            case EventNames.NodeRecovered:
                return c.ExecuteAsync("UPDATE cp_nodes SET lost = 0, status_reason = @r, updated_at = @at WHERE id = @id", ct, ("@id", id), ("@r", Read<NodeRecovered>(e).Reason), ("@at", at));
            case EventNames.NodeAdminStateSet:
                var admin = Read<NodeAdminStateSet>(e);
                return c.ExecuteAsync("UPDATE cp_nodes SET admin_state = @s, status_reason = @r, updated_at = @at WHERE id = @id", ct, ("@id", id), ("@s", admin.State), ("@r", admin.Reason), ("@at", at));
            case EventNames.RouteAdded:
                var route = Read<RouteAdded>(e);
                return c.ExecuteAsync(
                    "INSERT INTO cp_routes (env_id, org_id, hostname, listen_port, protocol, process, backend_port, proxy_protocol, backend_expects, ipv4_required, created_at) VALUES (@id, @o, @h, @p, @pr, @proc, @bp, @pp, @be, @v4, @at)",
                    ct, ("@id", id), ("@o", e.TenantId?.ToString("D")), ("@h", route.Hostname), ("@p", route.ListenPort), ("@pr", route.Protocol), ("@proc", route.Process),
                    ("@bp", route.BackendPort), ("@pp", route.ProxyProtocol), ("@be", route.BackendExpectsProxyProtocol ? 1 : 0), ("@v4", route.Ipv4Required ? 1 : 0), ("@at", at));
            case EventNames.RouteChanged:
                // Changed in place: the route keeps its created_at.
                var changed = Read<RouteChanged>(e);
                return c.ExecuteAsync(
                    "UPDATE cp_routes SET protocol = @pr, process = @proc, backend_port = @bp, proxy_protocol = @pp, backend_expects = @be, ipv4_required = @v4 WHERE env_id = @id AND hostname = @h AND listen_port = @p",
                    ct, ("@id", id), ("@h", changed.Hostname), ("@p", changed.ListenPort), ("@pr", changed.Protocol), ("@proc", changed.Process),
                    ("@bp", changed.BackendPort), ("@pp", changed.ProxyProtocol), ("@be", changed.BackendExpectsProxyProtocol ? 1 : 0), ("@v4", changed.Ipv4Required ? 1 : 0));
            case EventNames.RouteRemoved:
                var removed = Read<RouteRemoved>(e);
                return c.ExecuteAsync("DELETE FROM cp_routes WHERE env_id = @id AND hostname = @h AND listen_port = @p", ct, ("@id", id), ("@h", removed.Hostname), ("@p", removed.ListenPort));
            case EventNames.EnvIpv4Enabled:
                return EnableIpv4Async(c, e, id, Read<EnvIpv4Enabled>(e), ct);
            case EventNames.EnvIpv4Disabled:
                return DisableIpv4Async(c, id, Read<EnvIpv4Disabled>(e), ct);
            case EventNames.SecretsSet:
                var secrets = Read<SecretsSet>(e);
                return c.ExecuteAsync("UPDATE cp_envs SET secrets_version = @v, secret_names = @n, secret_bundle_id = @b WHERE id = @id",
                    ct, ("@id", id), ("@v", secrets.Version), ("@n", JsonSerializer.Serialize(secrets.Names)), ("@b", secrets.BundleId.ToString("D")));
            case EventNames.VolumeDeclared:
                var volume = Read<VolumeDeclared>(e);
                return c.ExecuteAsync("INSERT INTO cp_volumes (env_id, name, size_bytes, process, backup_enabled) VALUES (@id, @n, @s, @p, @b)",
                    ct, ("@id", id), ("@n", volume.Name), ("@s", volume.SizeBytes), ("@p", volume.Process), ("@b", volume.BackupEnabled ? 1 : 0));
            case EventNames.VolumeChanged:
                var volumeChanged = Read<VolumeChanged>(e);
                return c.ExecuteAsync("UPDATE cp_volumes SET size_bytes = @s, process = @p, backup_enabled = @b WHERE env_id = @id AND name = @n",
                    ct, ("@id", id), ("@n", volumeChanged.Name), ("@s", volumeChanged.SizeBytes), ("@p", volumeChanged.Process), ("@b", volumeChanged.BackupEnabled ? 1 : 0));
            case EventNames.VolumeRemoved:
                return c.ExecuteAsync("DELETE FROM cp_volumes WHERE env_id = @id AND name = @n", ct, ("@id", id), ("@n", Read<VolumeRemoved>(e).Name));
            case EventNames.NodeRegistered:
                var node = Read<NodeRegistered>(e);
                return c.ExecuteAsync(
                    "INSERT INTO cp_nodes (id, name, prefix, memory_bytes, cpus, driver, acceleration, region, agent_version, registered_at, updated_at) VALUES (@id, @n, @p, @m, @c, @d, @a, @r, @v, @at, @at)",
                    ct, ("@id", id), ("@n", node.Name), ("@p", node.Prefix), ("@m", node.MemoryBytes), ("@c", node.Cpus), ("@d", node.Driver), ("@a", node.Acceleration),
                    ("@r", node.Region), ("@v", node.AgentVersion), ("@at", at));
            case EventNames.NodeUpdated:
                var updated = Read<NodeUpdated>(e);
                return c.ExecuteAsync(
                    "UPDATE cp_nodes SET memory_bytes = @m, cpus = @c, driver = @d, acceleration = @a, region = @r, agent_version = @v, updated_at = @at WHERE id = @id",
                    ct, ("@id", id), ("@m", updated.MemoryBytes), ("@c", updated.Cpus), ("@d", updated.Driver), ("@a", updated.Acceleration),
                    ("@r", updated.Region), ("@v", updated.AgentVersion), ("@at", at));
            case EventNames.InstanceScheduled:
                return ScheduleAsync(c, e, id, Read<InstanceScheduled>(e), at, ct);
            case EventNames.InstanceStopRequested:
                var stop = Read<InstanceStopRequested>(e);
                return c.ExecuteAsync("UPDATE cp_instances SET stop_requested = 1, stop_reason = @r, updated_at = @at WHERE id = @i AND env_id = @id",
                    ct, ("@i", stop.InstanceId.ToString("D")), ("@id", id), ("@r", stop.Reason), ("@at", at));
            case EventNames.InstanceStateChanged:
                var state = Read<InstanceStateChanged>(e);
                return c.ExecuteAsync(
                    "UPDATE cp_instances SET state = @s, address = @a, exit_code = @x, reason = @r, restarts = @n, updated_at = @at WHERE id = @id AND node_id = @node",
                    ct, ("@id", id), ("@node", state.NodeId.ToString("D")), ("@s", state.State), ("@a", state.Address), ("@x", state.ExitCode), ("@r", state.Reason),
                    ("@n", state.Restarts), ("@at", at));
            default:
                return Task.CompletedTask;
        }
    }

    private static async Task EnableIpv4Async(ProjectionContext c, StoredEvent e, string id, EnvIpv4Enabled enabled, CancellationToken ct)
    {
        await c.ExecuteAsync("UPDATE cp_envs SET ipv4_address = @a, ipv4_ports = @p WHERE id = @id", ct, ("@id", id), ("@a", enabled.Address), ("@p", JsonSerializer.Serialize(enabled.Ports))).ConfigureAwait(false);
        await c.ExecuteAsync("INSERT INTO cp_ipv4 (address, env_id, org_id) VALUES (@a, @id, @o)", ct, ("@a", enabled.Address), ("@id", id), ("@o", e.TenantId?.ToString("D") ?? "")).ConfigureAwait(false);
    }

    private static async Task DisableIpv4Async(ProjectionContext c, string id, EnvIpv4Disabled disabled, CancellationToken ct)
    {
        await c.ExecuteAsync("UPDATE cp_envs SET ipv4_address = NULL, ipv4_ports = NULL WHERE id = @id", ct, ("@id", id)).ConfigureAwait(false);
        await c.ExecuteAsync("DELETE FROM cp_ipv4 WHERE address = @a", ct, ("@a", disabled.Address)).ConfigureAwait(false);
    }

    private static async Task DeployAsync(ProjectionContext c, StoredEvent e, string id, ReleaseDeployed deployed, string at, CancellationToken ct)
    {
        // Events from before deployments were numbered count them, as the aggregate does.
        var number = deployed.Deployment ?? Convert.ToInt32(await ScalarAsync(c, "SELECT deployment FROM cp_envs WHERE id = @id", ct, ("@id", id)).ConfigureAwait(false), CultureInfo.InvariantCulture) + 1;
        await c.ExecuteAsync("UPDATE cp_deployments SET status = 'superseded', finished_at = @at WHERE env_id = @id AND status = 'rolling'", ct, ("@id", id), ("@at", at)).ConfigureAwait(false);
        await c.ExecuteAsync("UPDATE cp_envs SET deployed_release = @n, deployment = @d WHERE id = @id", ct, ("@id", id), ("@n", deployed.Number), ("@d", number)).ConfigureAwait(false);
        await c.ExecuteAsync(
            "INSERT INTO cp_deployments (env_id, number, release, kind, reason, status, started_at, created_by) VALUES (@id, @d, @r, @k, @why, 'rolling', @at, @by)",
            ct, ("@id", id), ("@d", number), ("@r", deployed.Number), ("@k", deployed.Kind ?? DeploymentKinds.Deploy), ("@why", deployed.Reason ?? $"release {deployed.Number}"),
            ("@at", at), ("@by", e.ActorId?.ToString("D"))).ConfigureAwait(false);
    }

    private static async Task SwitchAsync(ProjectionContext c, string id, TrafficSwitched switched, string at, CancellationToken ct)
    {
        await c.ExecuteAsync("UPDATE cp_deployments SET status = 'replaced', finished_at = coalesce(finished_at, @at) WHERE env_id = @id AND status IN ('draining', 'completed')",
            ct, ("@id", id), ("@at", at)).ConfigureAwait(false);
        await c.ExecuteAsync("UPDATE cp_deployments SET status = 'draining', switched_at = @at WHERE env_id = @id AND number = @d", ct, ("@id", id), ("@d", switched.Deployment), ("@at", at)).ConfigureAwait(false);
        await c.ExecuteAsync("UPDATE cp_envs SET active_deployment = @d, active_release = @r WHERE id = @id", ct, ("@id", id), ("@d", switched.Deployment), ("@r", switched.Release)).ConfigureAwait(false);
    }

    private static async Task ScaleAsync(ProjectionContext c, string id, EnvScaled scaled, CancellationToken ct)
    {
        await c.ExecuteAsync("DELETE FROM cp_scale WHERE env_id = @id AND process = @p", ct, ("@id", id), ("@p", scaled.Process)).ConfigureAwait(false);
        await c.ExecuteAsync("INSERT INTO cp_scale (env_id, process, count) VALUES (@id, @p, @n)", ct, ("@id", id), ("@p", scaled.Process), ("@n", scaled.Count)).ConfigureAwait(false);
    }

    private static async Task<object?> ScalarAsync(ProjectionContext c, string sql, CancellationToken ct, params (string, object?)[] parameters)
    {
        await using var command = c.Command(sql, parameters);
        return await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
    }

    private static async Task ScheduleAsync(ProjectionContext c, StoredEvent e, string envId, InstanceScheduled scheduled, string at, CancellationToken ct)
    {
        // The process's memory cap, CPU and health check in its release: releases never change, so this is deterministic.
        long memory = 0;
        double cpu = 0;
        var health = 0;
        await using (var command = c.Command("SELECT manifest FROM cp_releases WHERE env_id = @e AND number = @n", ("@e", envId), ("@n", scheduled.Release)))
        {
            if (await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is string manifest)
            {
                using var json = JsonDocument.Parse(manifest);
                if (json.RootElement.GetProperty("processes").TryGetProperty(scheduled.Process, out var process))
                {
                    memory = process.GetProperty("memory_bytes").GetInt64();
                    cpu = process.TryGetProperty("cpu", out var c1) && c1.ValueKind == JsonValueKind.Number ? c1.GetDouble() : 0;
                    health = process.TryGetProperty("healthcheck", out var h) && h.ValueKind == JsonValueKind.Object ? 1 : 0;
                }
            }
        }
        var deployment = scheduled.Deployment ?? Convert.ToInt32(await ScalarAsync(c, "SELECT deployment FROM cp_envs WHERE id = @id", ct, ("@id", envId)).ConfigureAwait(false) ?? 0, CultureInfo.InvariantCulture);
        await c.ExecuteAsync(
            "INSERT INTO cp_instances (id, env_id, org_id, node_id, process, release, deployment, memory_bytes, cpu, health_check, state, restarts, stop_requested, scheduled_at, updated_at) VALUES (@i, @e, @o, @n, @p, @r, @d, @m, @c, @h, @s, 0, 0, @at, @at)",
            ct, ("@i", scheduled.InstanceId.ToString("D")), ("@e", envId), ("@o", e.TenantId?.ToString("D") ?? ""), ("@n", scheduled.NodeId.ToString("D")),
            ("@p", scheduled.Process), ("@r", scheduled.Release), ("@d", deployment), ("@m", memory), ("@c", cpu), ("@h", health), ("@s", Core.Api.InstanceStates.Scheduled), ("@at", at)).ConfigureAwait(false);
    }

    private static T Read<T>(StoredEvent e) => EventJson.Deserialize<T>(e.PayloadJson);
}
