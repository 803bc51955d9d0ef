using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.EventStore;

namespace Trc.ControlPlane.Catalog;

/// <summary>A token as the authenticator needs it.</summary>
/// <param name="Id">The token's id.</param>
/// <param name="OrgId">Its org, null for the admin token.</param>
/// <param name="OrgName">Its org's name.</param>
/// <param name="Name">Its name.</param>
/// <param name="Role">Its role.</param>
/// <param name="SecretHash">SHA-256 of its secret, hex.</param>
/// <param name="Revoked">Whether it was revoked.</param>
public sealed record TokenRow(Guid Id, Guid? OrgId, string? OrgName, string Name, string Role, string SecretHash, bool Revoked);

/// <summary>An env with what commands need beyond its view.</summary>
/// <param name="View">The API view.</param>
/// <param name="SecretBundleId">The current secrets bundle, if any.</param>
public sealed record EnvRow(EnvView View, Guid? SecretBundleId);

/// <summary>Reads of the catalog tables (see <see cref="CatalogProjection"/>).</summary>
public sealed partial class CatalogReader(ISqlDatabase database)
{
    /// <summary>An org by name.</summary>
    public async Task<OrgView?> OrgAsync(string name, CancellationToken ct) =>
        (await QueryAsync("SELECT id, name, memory_quota, instances_quota, routes_quota, ipv4_quota, memory_used, instances_used, routes_used, ipv4_used, created_at FROM cp_orgs WHERE name = @n", ReadOrg, ct, ("@n", name))).FirstOrDefault();

    /// <summary>Every org, by name.</summary>
    public Task<List<OrgView>> OrgsAsync(CancellationToken ct) =>
        QueryAsync("SELECT id, name, memory_quota, instances_quota, routes_quota, ipv4_quota, memory_used, instances_used, routes_used, ipv4_used, created_at FROM cp_orgs ORDER BY name", ReadOrg, ct);

    private static OrgView ReadOrg(DbDataReader r) => new(
        Guid.Parse(r.GetString(0)),
        r.GetString(1),
        new Quotas(r.GetInt64(2), r.GetInt32(3), r.GetInt32(4), r.GetInt32(5)),
        new Usage(r.GetInt64(6), r.GetInt32(7), r.GetInt32(8), r.GetInt32(9)),
        Time(r.GetString(10)));

    /// <summary>A token by id, with its org's name.</summary>
    public async Task<TokenRow?> TokenAsync(Guid id, CancellationToken ct) =>
        (await QueryAsync(
            "SELECT t.id, t.org_id, o.name, t.name, t.role, t.secret_hash, t.revoked FROM cp_tokens t LEFT JOIN cp_orgs o ON o.id = t.org_id WHERE t.id = @id",
            r => new TokenRow(Guid.Parse(r.GetString(0)), r.IsDBNull(1) ? null : Guid.Parse(r.GetString(1)), r.IsDBNull(2) ? null : r.GetString(2),
                r.GetString(3), r.GetString(4), r.GetString(5), Convert.ToInt64(r.GetValue(6), CultureInfo.InvariantCulture) != 0),
            ct, ("@id", id.ToString("D")))).FirstOrDefault();

    /// <summary>An org's tokens (without secrets).</summary>
    public Task<List<TokenView>> TokensAsync(Guid orgId, CancellationToken ct) =>
        QueryAsync("SELECT id, name, role, revoked, created_at FROM cp_tokens WHERE org_id = @o ORDER BY created_at, id",
            r => new TokenView(Guid.Parse(r.GetString(0)), r.GetString(1), r.GetString(2), Convert.ToInt64(r.GetValue(3), CultureInfo.InvariantCulture) != 0, Time(r.GetString(4))),
            ct, ("@o", orgId.ToString("D")));

    /// <summary>An app of an org.</summary>
    public async Task<AppView?> AppAsync(string org, Guid orgId, string name, CancellationToken ct) =>
        (await QueryAsync("SELECT id, name, created_at FROM cp_apps WHERE org_id = @o AND name = @n", r => ReadApp(r, org), ct, ("@o", orgId.ToString("D")), ("@n", name))).FirstOrDefault();

    /// <summary>An org's apps, by name.</summary>
    public Task<List<AppView>> AppsAsync(string org, Guid orgId, CancellationToken ct) =>
        QueryAsync("SELECT id, name, created_at FROM cp_apps WHERE org_id = @o ORDER BY name", r => ReadApp(r, org), ct, ("@o", orgId.ToString("D")));

    private static AppView ReadApp(DbDataReader r, string org) => new(Guid.Parse(r.GetString(0)), org, r.GetString(1), Time(r.GetString(2)));

    private const string EnvColumns = """
        id, app, name, deployed_release, secrets_version, ipv4_address, created_at, secret_bundle_id, active_release, deployment,
        (SELECT d.status FROM cp_deployments d WHERE d.env_id = cp_envs.id AND d.number = cp_envs.deployment)
        """;

    /// <summary>An env of an app.</summary>
    public async Task<EnvRow?> EnvAsync(string org, Guid appId, string name, CancellationToken ct) =>
        (await QueryAsync($"SELECT {EnvColumns} FROM cp_envs WHERE app_id = @a AND name = @n", r => ReadEnv(r, org), ct, ("@a", appId.ToString("D")), ("@n", name))).FirstOrDefault();

    /// <summary>An env by id (of org <paramref name="org"/>, for its view).</summary>
    public async Task<EnvRow?> EnvByIdAsync(string org, Guid envId, CancellationToken ct) =>
        (await QueryAsync($"SELECT {EnvColumns} FROM cp_envs WHERE id = @e", r => ReadEnv(r, org), ct, ("@e", envId.ToString("D")))).FirstOrDefault();

    /// <summary>An app's envs, by name.</summary>
    public async Task<List<EnvView>> EnvsAsync(string org, Guid appId, CancellationToken ct) =>
        (await QueryAsync($"SELECT {EnvColumns} FROM cp_envs WHERE app_id = @a ORDER BY name", r => ReadEnv(r, org), ct, ("@a", appId.ToString("D")))).Select(e => e.View).ToList();

    private static EnvRow ReadEnv(DbDataReader r, string org) => new(
        new EnvView(Guid.Parse(r.GetString(0)), org, r.GetString(1), r.GetString(2), Convert.ToInt32(r.GetValue(3), CultureInfo.InvariantCulture),
            Convert.ToInt32(r.GetValue(4), CultureInfo.InvariantCulture), r.IsDBNull(5) ? null : r.GetString(5), Time(r.GetString(6)),
            Convert.ToInt32(r.GetValue(8), CultureInfo.InvariantCulture), Convert.ToInt32(r.GetValue(9), CultureInfo.InvariantCulture), RolloutOf(r.IsDBNull(10) ? null : r.GetString(10))),
        r.IsDBNull(7) ? null : Guid.Parse(r.GetString(7)));

    /// <summary>An env's rollout as its latest deployment's status says (superseded and replaced never are the latest).</summary>
    private static string RolloutOf(string? status) => status switch
    {
        null => RolloutStatuses.None,
        "rolling" => RolloutStatuses.Rolling,
        "draining" => RolloutStatuses.Draining,
        "failed" => RolloutStatuses.Failed,
        _ => RolloutStatuses.Completed,
    };

    /// <summary>An env's secret names (current version).</summary>
    public async Task<SecretsView> SecretsAsync(Guid envId, CancellationToken ct) =>
        (await QueryAsync("SELECT secrets_version, secret_names FROM cp_envs WHERE id = @e",
            r => new SecretsView(Convert.ToInt32(r.GetValue(0), CultureInfo.InvariantCulture), JsonSerializer.Deserialize<List<string>>(r.GetString(1))!),
            ct, ("@e", envId.ToString("D")))).Single();

    private const string ReleaseColumns = "r.number, r.image, r.image_digest, r.resolved_digests, r.manifest, r.secrets_version, r.memory_bytes, r.instances, r.created_at, r.created_by, e.deployed_release";

    /// <summary>An env's releases, newest first.</summary>
    public Task<List<ReleaseView>> ReleasesAsync(Guid envId, CancellationToken ct) =>
        QueryAsync($"SELECT {ReleaseColumns} FROM cp_releases r JOIN cp_envs e ON e.id = r.env_id WHERE r.env_id = @e ORDER BY r.number DESC", ReadRelease, ct, ("@e", envId.ToString("D")));

    /// <summary>One release.</summary>
    public async Task<ReleaseView?> ReleaseAsync(Guid envId, int number, CancellationToken ct) =>
        (await QueryAsync($"SELECT {ReleaseColumns} FROM cp_releases r JOIN cp_envs e ON e.id = r.env_id WHERE r.env_id = @e AND r.number = @n", ReadRelease, ct, ("@e", envId.ToString("D")), ("@n", number))).FirstOrDefault();

    private static ReleaseView ReadRelease(DbDataReader r)
    {
        var number = Convert.ToInt32(r.GetValue(0), CultureInfo.InvariantCulture);
        using var manifest = JsonDocument.Parse(r.GetString(4));
        return new ReleaseView(
            number,
            r.GetString(1),
            r.GetString(2),
            r.IsDBNull(3) ? null : JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(3)),
            manifest.RootElement.Clone(),
            Convert.ToInt32(r.GetValue(5), CultureInfo.InvariantCulture),
            r.GetInt64(6),
            Convert.ToInt32(r.GetValue(7), CultureInfo.InvariantCulture),
            Convert.ToInt32(r.GetValue(10), CultureInfo.InvariantCulture) == number,
            Time(r.GetString(8)),
            r.IsDBNull(9) ? null : Guid.Parse(r.GetString(9)));
    }

    /// <summary>An env's routes.</summary>
    public Task<List<RouteView>> RoutesAsync(string org, string app, string env, Guid envId, CancellationToken ct) =>
        QueryAsync(
            "SELECT hostname, listen_port, protocol, process, backend_port, proxy_protocol, backend_expects, ipv4_required, created_at FROM cp_routes WHERE env_id = @e ORDER BY hostname, listen_port",
            r => new RouteView(r.GetString(0), Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture), r.GetString(2), r.GetString(3),
                Convert.ToInt32(r.GetValue(4), CultureInfo.InvariantCulture), r.GetString(5), Convert.ToInt64(r.GetValue(6), CultureInfo.InvariantCulture) != 0,
                Convert.ToInt64(r.GetValue(7), CultureInfo.InvariantCulture) != 0, org, app, env, Time(r.GetString(8))),
            ct, ("@e", envId.ToString("D")));

    /// <summary>
    /// Every route of the platform, for edges, with its backends: the overlay addresses of the
    /// route's process's instances of the env's active deployment (the one traffic switched to) that
    /// are ready (<c>healthy</c>, or <c>running</c> when their process has no health check), have an
    /// address and were not asked to stop, as <c>[address]:backend_port</c>, sorted. An instance of a
    /// rollout that has not passed its gate, or that turned unhealthy, is never a backend.
    /// </summary>
    public async Task<List<EdgeRouteView>> EdgeRoutesAsync(CancellationToken ct)
    {
        // Backends first, then routes: both at least as new as the position the caller read before.
        var backends = (await QueryAsync(
            """
            SELECT i.env_id, i.process, i.address FROM cp_instances i JOIN cp_envs e ON e.id = i.env_id
            WHERE i.stop_requested = 0 AND i.address IS NOT NULL AND i.deployment = e.active_deployment
              AND (i.state = 'healthy' OR (i.state = 'running' AND i.health_check = 0))
            """,
            r => (Env: r.GetString(0), Process: r.GetString(1), Address: r.GetString(2)), ct).ConfigureAwait(false))
            .ToLookup(b => (b.Env, b.Process), b => b.Address);
        return await QueryAsync(
            """
            SELECT o.name, e.app, e.name, r.hostname, r.listen_port, r.protocol, r.proxy_protocol, r.process, r.backend_port, r.ipv4_required, e.ipv4_address, r.env_id
            FROM cp_routes r JOIN cp_envs e ON e.id = r.env_id JOIN cp_orgs o ON o.id = r.org_id
            ORDER BY r.hostname, r.listen_port
            """,
            r =>
            {
                var port = Convert.ToInt32(r.GetValue(4), CultureInfo.InvariantCulture);
                // A route is served on its env's dedicated IPv4 when it asks to be (ipv4_required), which
                // is also what the port bundle counts.
                var ipv4 = Convert.ToInt64(r.GetValue(9), CultureInfo.InvariantCulture) != 0 && !r.IsDBNull(10) ? r.GetString(10) : null;
                var (org, app, env, host) = (r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3));
                var process = r.GetString(7);
                var backendPort = Convert.ToInt32(r.GetValue(8), CultureInfo.InvariantCulture);
                var endpoints = backends[(r.GetString(11), process)]
                    .Select(a => $"[{a}]:{backendPort.ToString(CultureInfo.InvariantCulture)}").Order(StringComparer.Ordinal).ToList();
                return new EdgeRouteView($"{org}/{app}/{env}/{host}:{port}", org, app, env, host, port, r.GetString(5), r.GetString(6), process,
                    backendPort, ipv4, endpoints);
            },
            ct).ConfigureAwait(false);
    }

    /// <summary>An env's IPv4 add-on, if on.</summary>
    public async Task<Ipv4View?> Ipv4Async(Guid envId, CancellationToken ct) =>
        (await QueryAsync("SELECT ipv4_address, ipv4_ports FROM cp_envs WHERE id = @e AND ipv4_address IS NOT NULL",
            r => new Ipv4View(r.GetString(0), JsonSerializer.Deserialize<List<int>>(r.GetString(1))!), ct, ("@e", envId.ToString("D")))).FirstOrDefault();

    /// <summary>Addresses of the pool in use.</summary>
    public async Task<HashSet<string>> Ipv4InUseAsync(CancellationToken ct) =>
        (await QueryAsync("SELECT address FROM cp_ipv4", r => r.GetString(0), ct)).ToHashSet(StringComparer.Ordinal);

    /// <summary>An env's volumes.</summary>
    public Task<List<VolumeView>> VolumesAsync(Guid envId, CancellationToken ct) =>
        QueryAsync("SELECT name, size_bytes, process, backup_enabled FROM cp_volumes WHERE env_id = @e ORDER BY name",
            r => new VolumeView(r.GetString(0), r.GetInt64(1), r.GetString(2), Convert.ToInt64(r.GetValue(3), CultureInfo.InvariantCulture) != 0, "/mnt/volumes/" + r.GetString(0)),
            ct, ("@e", envId.ToString("D")));

    private async Task<List<T>> QueryAsync<T>(string sql, Func<DbDataReader, T> read, CancellationToken ct, params (string Name, object? Value)[] parameters)
    {
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var command = SqlCommands.Create(connection, null, sql, parameters);
        var rows = new List<T>();
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            rows.Add(read(reader));
        }
        return rows;
    }

    private static DateTimeOffset Time(string text) => DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
