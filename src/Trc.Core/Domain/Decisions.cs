using System.Text.Json;
using System.Text.RegularExpressions;
using Trc.Core.Manifest;
using Trc.Core.Manifest.Schema;

namespace Trc.Core.Domain;

/// <summary>Token roles, weakest first.</summary>
public static class Roles
{
    /// <summary>Reads only.</summary>
    public const string Viewer = "viewer";

    /// <summary>Deploys, manages routes, secrets (write-only), volumes.</summary>
    public const string Deployer = "deployer";

    /// <summary>Everything in the org, including tokens and rendering secrets.</summary>
    public const string Owner = "owner";

    /// <summary>The platform operator (not tied to an org).</summary>
    public const string Admin = "admin";

    /// <summary>The roles an org token may have.</summary>
    public static IReadOnlyList<string> OrgRoles { get; } = [Viewer, Deployer, Owner];

    /// <summary>Whether <paramref name="role"/> is at least <paramref name="required"/>.</summary>
    public static bool AtLeast(string role, string required) => Rank(role) >= Rank(required);

    private static int Rank(string role) => role switch
    {
        Viewer => 1,
        Deployer => 2,
        Owner => 3,
        Admin => 4,
        _ => 0,
    };
}

/// <summary>A route as a command asks for it.</summary>
/// <param name="Hostname">Lower-case FQDN, or <c>*.</c> and one.</param>
/// <param name="ListenPort">Edge port.</param>
/// <param name="Protocol"><c>tls_passthrough</c> or <c>tcp_raw</c>.</param>
/// <param name="Process">Process type receiving the connections.</param>
/// <param name="BackendPort">Port in the microVM.</param>
/// <param name="ProxyProtocol"><c>off</c> or <c>v2</c>.</param>
/// <param name="BackendExpectsProxyProtocol">Acknowledges PROXY v2.</param>
/// <param name="Ipv4Required">Also serve on the env's dedicated IPv4.</param>
public sealed record RouteRequest(
    string Hostname,
    int ListenPort,
    string Protocol,
    string Process,
    int BackendPort,
    string ProxyProtocol,
    bool BackendExpectsProxyProtocol,
    bool Ipv4Required);

/// <summary>
/// The rules of every command, as pure functions: loaded aggregate states in, a batch of changes
/// (appended atomically) out, or a <see cref="DomainException"/>.
/// </summary>
public static class Decisions
{
    private static readonly Regex ImageDigestRef = new(@"^(?<repo>[a-z0-9]+(?:[._\-/:][a-z0-9]+)*)@(?<digest>sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>Checks an org, app, env, process or volume name (1-32 lower-case letters, digits, '-').</summary>
    public static void CheckName(string? value, string field)
    {
        var node = new StringNode { Pattern = ManifestSchema.NamePattern };
        if (string.IsNullOrEmpty(value) || !node.Matches(value))
        {
            throw DomainException.Invalid("invalid_name", field,
                $"\"{Shorten(value)}\" is not a valid name: use 1-32 lower-case letters, digits and '-', starting with a letter and not ending with '-'");
        }
    }

    /// <summary>Creates an org.</summary>
    public static IReadOnlyList<Change> CreateOrg(OrgState org, string name, Quotas quotas)
    {
        CheckName(name, "name");
        CheckQuotas(quotas);
        if (org.Exists)
        {
            throw DomainException.Conflict("org_exists", $"an org named {name} already exists", "name");
        }
        return [org.Change(org.Id, new DomainEvent(EventNames.OrgCreated, new OrgCreated(name, quotas)))];
    }

    /// <summary>Sets an org's quotas (lowering one below use is allowed: it only stops growth).</summary>
    public static IReadOnlyList<Change> SetQuotas(OrgState org, Quotas quotas)
    {
        CheckQuotas(quotas);
        return [org.Change(org.Id, new DomainEvent(EventNames.OrgQuotasSet, new OrgQuotasSet(quotas)))];
    }

    private static void CheckQuotas(Quotas quotas)
    {
        if (quotas.MemoryBytes < 0 || quotas.Instances < 0 || quotas.Routes < 0 || quotas.Ipv4Addresses < 0)
        {
            throw DomainException.Invalid("invalid_quota", "quotas", "quotas cannot be negative");
        }
    }

    /// <summary>Creates a token; the caller made the secret and passes only its hash.</summary>
    public static IReadOnlyList<Change> CreateToken(TokenState token, Guid? orgId, string name, string role, string secretHash)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Length > 64 || name.Any(char.IsControl))
        {
            throw DomainException.Invalid("invalid_token_name", "name", "a token name is 1-64 printable characters");
        }
        if (orgId is null ? role != Roles.Admin : !Roles.OrgRoles.Contains(role))
        {
            throw DomainException.Invalid("invalid_role", "role", $"\"{Shorten(role)}\" is not a role: use {string.Join(", ", Roles.OrgRoles)}");
        }
        return [token.Change(orgId, new DomainEvent(EventNames.TokenCreated, new TokenCreated(orgId, name, role, secretHash)))];
    }

    /// <summary>Revokes a token.</summary>
    public static IReadOnlyList<Change> RevokeToken(TokenState token, string reason)
    {
        if (!token.Exists)
        {
            throw DomainException.NotFound("token");
        }
        return token.Revoked ? [] : [token.Change(token.OrgId, new DomainEvent(EventNames.TokenRevoked, new TokenRevoked(reason)))];
    }

    /// <summary>Creates an app.</summary>
    public static IReadOnlyList<Change> CreateApp(AppState app, OrgState org, string name)
    {
        CheckName(name, "name");
        if (app.Exists)
        {
            throw DomainException.Conflict("app_exists", $"org {org.Name} already has an app named {name}", "name");
        }
        return [app.Change(org.Id, new DomainEvent(EventNames.AppCreated, new AppCreated(org.Id, name)))];
    }

    /// <summary>Creates an env of an app.</summary>
    public static IReadOnlyList<Change> CreateEnv(EnvState env, AppState app, string name)
    {
        CheckName(name, "name");
        if (env.Exists)
        {
            throw DomainException.Conflict("env_exists", $"app {app.Name} already has an env named {name}", "name");
        }
        return [env.Change(app.OrgId, new DomainEvent(EventNames.EnvCreated, new EnvCreated(app.OrgId, app.Id, app.Name, name)))];
    }

    /// <summary>
    /// Records a release and makes it the env's deployed one. The image must be pinned to a digest;
    /// the manifest must name this app; every route of the env must still be served, and every route
    /// and volume the manifest declares must exist; the org's memory and instance quotas must hold
    /// the release (counted at scaling.max).
    /// </summary>
    public static IReadOnlyList<Change> Deploy(EnvState env, OrgState org, string image, IReadOnlyDictionary<string, string>? resolvedDigests, AppManifest manifest, JsonElement manifestJson, int? expectedRelease = null)
    {
        if (expectedRelease < 0)
        {
            throw DomainException.Invalid("invalid_expected_release", "expected_release", "expected_release is a release number, or 0 for an env with none yet");
        }
        if (expectedRelease is { } expected && expected != env.DeployedRelease)
        {
            throw DomainException.Conflict("release_changed",
                env.DeployedRelease == 0
                    ? $"expected release {expected} to be deployed, but env {env.Name} has no release yet"
                    : $"expected release {expected} to be deployed, but release {env.DeployedRelease} is (another deploy came first); look at it, then deploy again",
                "expected_release");
        }
        var match = ImageDigestRef.Match(image ?? "");
        if (!match.Success)
        {
            throw DomainException.Invalid("image_not_pinned", "image",
                $"\"{Shorten(image)}\" is not an image pinned to a digest: write repository@sha256:<64 hex digits> (tags are resolved by the client before deploying)");
        }
        if (manifest.App != env.AppName)
        {
            throw DomainException.Invalid("manifest_app_mismatch", "manifest.app", $"the manifest is for app \"{manifest.App}\", but this env belongs to app \"{env.AppName}\"");
        }
        foreach (var ((host, port), route) in env.Routes)
        {
            var process = manifest.FindProcess(route.Process);
            if (process is null || !process.Ports.Contains(route.BackendPort))
            {
                throw DomainException.Conflict("route_unserved",
                    $"route {host}:{port} sends connections to process {route.Process} port {route.BackendPort}, which this manifest does not expose; change or remove the route first", "manifest");
            }
        }
        foreach (var wanted in manifest.Routes)
        {
            if (!env.Routes.TryGetValue((wanted.Hostname, wanted.ListenPort), out var existing) || !Same(existing, wanted))
            {
                throw DomainException.Conflict("route_missing",
                    $"the manifest declares route {wanted.Hostname}:{wanted.ListenPort}, which env {env.Name} does not have (or has with other settings); create it first (trc deploy does this)", "manifest.routes");
            }
        }
        foreach (var wanted in manifest.Volumes)
        {
            if (!env.Volumes.TryGetValue(wanted.Name, out var declared) || declared.SizeBytes != wanted.SizeBytes || declared.Process != wanted.Process || declared.BackupEnabled != wanted.BackupEnabled)
            {
                throw DomainException.Conflict("volume_missing",
                    $"the manifest declares volume {wanted.Name}, which env {env.Name} does not have (or has with other settings); declare it first (trc deploy does this)", "manifest.volumes");
            }
        }

        var memory = manifest.Processes.Sum(p => p.MemoryBytes * p.Scaling.Max);
        var instances = manifest.Processes.Sum(p => p.Scaling.Max);
        var current = env.Deployed;
        var usage = org.Usage with
        {
            MemoryBytes = org.Usage.MemoryBytes - (current?.MemoryBytes ?? 0) + memory,
            Instances = org.Usage.Instances - (current?.Instances ?? 0) + instances,
        };
        var number = env.Releases.Count + 1;
        var release = new ReleaseCreated(number, image!, match.Groups["digest"].Value, resolvedDigests, manifestJson, env.SecretsVersion, memory, instances);
        return
        [
            env.Change(env.OrgId, new DomainEvent(EventNames.ReleaseCreated, release), new DomainEvent(EventNames.ReleaseDeployed, new ReleaseDeployed(number))),
            org.Change(org.Id, org.UseChange(usage, $"release {number} of {env.AppName}/{env.Name}")),
        ];
    }

    private static bool Same(RouteAdded existing, RouteSpec wanted) =>
        existing.Process == wanted.Process
        && existing.BackendPort == wanted.BackendPort
        && existing.Protocol == (wanted.Protocol == RouteProtocol.TcpRaw ? "tcp_raw" : "tls_passthrough")
        && existing.ProxyProtocol == (wanted.ProxyProtocol == ProxyProtocolMode.V2 ? "v2" : "off")
        && existing.Ipv4Required == wanted.Ipv4Required;

    /// <summary>Checks a route request's own fields; throws naming the field.</summary>
    public static void CheckRoute(RouteRequest route)
    {
        var hostname = (StringNode)ManifestSchema.Route.FindField("hostname")!.Node;
        if (string.IsNullOrEmpty(route.Hostname) || route.Hostname.Length > 253 || !hostname.Matches(route.Hostname))
        {
            throw DomainException.Invalid("invalid_hostname", "hostname", $"\"{Shorten(route.Hostname)}\" is not a fully qualified lower-case hostname (like \"shop.example.com\" or \"*.example.com\")");
        }
        if (route.Protocol is not ("tls_passthrough" or "tcp_raw"))
        {
            throw DomainException.Invalid("invalid_protocol", "protocol", $"\"{Shorten(route.Protocol)}\" is not tls_passthrough or tcp_raw");
        }
        CheckName(route.Process, "process");
        if (route.BackendPort is < 1 or > 65535)
        {
            throw DomainException.Invalid("invalid_port", "backend_port", $"{route.BackendPort} is not a TCP port (1-65535)");
        }
        if (route.ProxyProtocol is not ("off" or "v2"))
        {
            throw DomainException.Invalid("invalid_proxy_protocol", "proxy_protocol", $"\"{Shorten(route.ProxyProtocol)}\" is not off or v2");
        }
        if (route.ProxyProtocol == "v2" && !route.BackendExpectsProxyProtocol)
        {
            throw DomainException.Invalid("proxy_protocol_not_acknowledged", "backend_expects_proxy_protocol",
                "proxy_protocol = v2 puts a PROXY header in front of every connection; set backend_expects_proxy_protocol = true to confirm the backend parses it");
        }
    }

    /// <summary>
    /// Adds a route to an env: claims its hostname platform-wide (or, with <paramref name="move"/>,
    /// takes it from another env of the same org, whose routes for it are removed), claims its port
    /// on the shared listener (SNI-shared or raw-exclusive), and counts it against the route quota.
    /// </summary>
    /// <param name="env">The env getting the route.</param>
    /// <param name="org">Its org.</param>
    /// <param name="host">The hostname's aggregate.</param>
    /// <param name="ports">The listener port aggregates of the new route and of every route a move removes.</param>
    /// <param name="holder">With a move: the env holding the hostname now.</param>
    /// <param name="route">The route.</param>
    /// <param name="move">Whether taking the hostname from another env of the org is intended.</param>
    /// <param name="policy">The cluster's port policy.</param>
    /// <param name="envPath">org/app/env, recorded with the claim.</param>
    public static IReadOnlyList<Change> AddRoute(EnvState env, OrgState org, HostnameState host, IReadOnlyDictionary<int, PortState> ports, EnvState? holder, RouteRequest route, bool move, ClusterPolicy policy, string envPath)
    {
        CheckRoute(route);
        policy.CheckListenPort(route.ListenPort, env.Ipv4Address is not null);
        if (route.Ipv4Required)
        {
            if (env.Ipv4Address is null)
            {
                throw DomainException.Invalid("ipv4_addon_required", "ipv4_required", $"env {env.Name} has no dedicated IPv4 address: enable the IPv4 add-on first");
            }
            var extra = env.Routes.Values.Where(r => r.Ipv4Required && !policy.DefaultPorts.Contains(r.ListenPort)).Select(r => r.ListenPort).ToHashSet();
            if (!policy.DefaultPorts.Contains(route.ListenPort) && !extra.Contains(route.ListenPort) && extra.Count >= policy.Ipv4ExtraPorts)
            {
                throw DomainException.Invalid("ipv4_port_bundle_exceeded", "listen_port",
                    $"the IPv4 add-on includes 80, 443 and {policy.Ipv4ExtraPorts} more ports; env {env.Name} already uses {string.Join(", ", extra.Order())}");
            }
        }
        if (env.Deployed is { } deployed)
        {
            var manifest = deployed.Manifest;
            if (!manifest.GetProperty("processes").TryGetProperty(route.Process, out var process))
            {
                throw DomainException.Invalid("unknown_process", "process", $"the deployed release {deployed.Number} has no process {route.Process}");
            }
            if (!process.GetProperty("ports").EnumerateArray().Any(p => p.GetInt32() == route.BackendPort))
            {
                throw DomainException.Invalid("port_not_exposed", "backend_port", $"process {route.Process} of release {deployed.Number} does not listen on port {route.BackendPort}");
            }
        }
        if (env.Routes.ContainsKey((route.Hostname, route.ListenPort)))
        {
            throw DomainException.Conflict("route_exists", $"env {env.Name} already has a route for {route.Hostname}:{route.ListenPort}", "hostname");
        }

        var changes = new List<Change>();
        var envEvents = new List<DomainEvent>();
        var portEvents = ports.Keys.ToDictionary(p => p, _ => new List<DomainEvent>());
        var usage = org.Usage;

        if (host.EnvId is { } holderId && holderId != env.Id)
        {
            if (host.OrgId != org.Id)
            {
                throw DomainException.Conflict("hostname_taken", $"hostname {route.Hostname} is in use by another org", "hostname");
            }
            if (!move)
            {
                throw DomainException.Conflict("hostname_bound",
                    $"hostname {route.Hostname} is bound to {host.EnvPath}; to move it here, ask again with move = true (its routes there are removed)", "hostname");
            }
            if (holder is null || holder.Id != holderId)
            {
                throw new InvalidOperationException("the holder env must be loaded to move a hostname");
            }
            var leaving = holder.Routes.Values.Where(r => r.Hostname == route.Hostname).ToList();
            if (leaving.Any(r => !ports.ContainsKey(r.ListenPort)))
            {
                throw new InvalidOperationException("every port of the moved routes must be loaded");
            }
            changes.Add(holder.Change(holder.OrgId, leaving.Select(r => new DomainEvent(EventNames.RouteRemoved, new RouteRemoved(r.Hostname, r.ListenPort))).ToArray()));
            foreach (var r in leaving)
            {
                portEvents[r.ListenPort].Add(PortRelease(holder.Id, r));
            }
            usage = usage with { Routes = usage.Routes - leaving.Count };
            changes.Add(host.Change(org.Id, new DomainEvent(EventNames.HostnameMoved, new HostnameMoved(org.Id, holderId, env.Id, envPath))));
        }
        else if (host.EnvId is null)
        {
            changes.Add(host.Change(org.Id, new DomainEvent(EventNames.HostnameClaimed, new HostnameClaimed(org.Id, env.Id, envPath))));
        }

        // The shared listener port: SNI routes share it; a raw route needs it alone.
        var port = ports[route.ListenPort];
        var pending = portEvents[route.ListenPort];
        var rawFreedByMove = pending.Any(e => e.Type == EventNames.PortRawReleased);
        var sniLeft = port.SniRoutes - pending.Count(e => e.Type == EventNames.PortSniRemoved);
        var rawHolder = rawFreedByMove ? null : port.RawEnvId;
        if (rawHolder is not null)
        {
            throw DomainException.Conflict("port_taken",
                $"port {route.ListenPort} is held by a tcp_raw route{(rawHolder == env.Id ? $" of env {env.Name}" : " of another env")}, which is routed by port alone", "listen_port");
        }
        if (route.Protocol == "tcp_raw")
        {
            if (sniLeft > 0)
            {
                throw DomainException.Conflict("port_taken",
                    $"port {route.ListenPort} carries TLS routes told apart by hostname; a tcp_raw route needs a port of its own", "listen_port");
            }
            pending.Add(new DomainEvent(EventNames.PortRawClaimed, new PortRawClaimed(org.Id, env.Id, envPath)));
        }
        else
        {
            pending.Add(new DomainEvent(EventNames.PortSniAdded, new PortSniAdded(env.Id, route.Hostname)));
        }

        envEvents.Add(new DomainEvent(EventNames.RouteAdded, new RouteAdded(
            route.Hostname, route.ListenPort, route.Protocol, route.Process, route.BackendPort, route.ProxyProtocol, route.BackendExpectsProxyProtocol, route.Ipv4Required)));
        changes.Insert(0, env.Change(env.OrgId, envEvents.ToArray()));
        foreach (var (number, events) in portEvents.Where(p => p.Value.Count > 0))
        {
            changes.Add(ports[number].Change(null, events.ToArray()));
        }
        changes.Add(org.Change(org.Id, org.UseChange(usage with { Routes = usage.Routes + 1 }, $"route {route.Hostname}:{route.ListenPort}")));
        return changes;
    }

    private static DomainEvent PortRelease(Guid envId, RouteAdded route) => route.Protocol == "tcp_raw"
        ? new DomainEvent(EventNames.PortRawReleased, new PortRawReleased(envId))
        : new DomainEvent(EventNames.PortSniRemoved, new PortSniRemoved(envId, route.Hostname));

    /// <summary>Removes a route; the hostname is released when the env has no other route for it.</summary>
    public static IReadOnlyList<Change> RemoveRoute(EnvState env, OrgState org, HostnameState host, PortState port, string hostname, int listenPort)
    {
        if (!env.Routes.TryGetValue((hostname, listenPort), out var route))
        {
            throw DomainException.NotFound($"route {hostname}:{listenPort}");
        }
        var changes = new List<Change>
        {
            env.Change(env.OrgId, new DomainEvent(EventNames.RouteRemoved, new RouteRemoved(hostname, listenPort))),
            port.Change(null, PortRelease(env.Id, route)),
        };
        if (!env.Routes.Keys.Any(k => k.Hostname == hostname && k.Port != listenPort) && host.EnvId == env.Id)
        {
            changes.Add(host.Change(org.Id, new DomainEvent(EventNames.HostnameReleased, new HostnameReleased(env.Id))));
        }
        changes.Add(org.Change(org.Id, org.UseChange(org.Usage with { Routes = org.Usage.Routes - 1 }, $"route {hostname}:{listenPort} removed")));
        return changes;
    }

    /// <summary>Turns the IPv4 add-on on: the env takes <paramref name="address"/> from the pool.</summary>
    public static IReadOnlyList<Change> EnableIpv4(EnvState env, OrgState org, Ipv4State address, string ip, ClusterPolicy policy, string envPath)
    {
        if (env.Ipv4Address is not null)
        {
            throw DomainException.Conflict("ipv4_enabled", $"env {env.Name} already has the IPv4 address {env.Ipv4Address}");
        }
        if (address.EnvId is not null)
        {
            throw DomainException.Conflict("ipv4_address_taken", $"address {ip} is taken; try again");
        }
        IReadOnlyList<int> ports = [80, 443];
        return
        [
            env.Change(env.OrgId, new DomainEvent(EventNames.EnvIpv4Enabled, new EnvIpv4Enabled(ip, ports))),
            address.Change(org.Id, new DomainEvent(EventNames.Ipv4Allocated, new Ipv4Allocated(org.Id, env.Id, envPath))),
            org.Change(org.Id, org.UseChange(org.Usage with { Ipv4Addresses = org.Usage.Ipv4Addresses + 1 }, $"IPv4 for {envPath}")),
        ];
    }

    /// <summary>Turns the IPv4 add-on off and returns the address to the pool.</summary>
    public static IReadOnlyList<Change> DisableIpv4(EnvState env, OrgState org, Ipv4State address)
    {
        if (env.Ipv4Address is null)
        {
            throw DomainException.NotFound("IPv4 address of this env");
        }
        var using4 = env.Routes.Values.Where(r => r.Ipv4Required).Select(r => $"{r.Hostname}:{r.ListenPort}").ToList();
        if (using4.Count > 0)
        {
            throw DomainException.Conflict("ipv4_in_use", $"routes {string.Join(", ", using4)} require IPv4; remove them or turn ipv4_required off first");
        }
        return
        [
            env.Change(env.OrgId, new DomainEvent(EventNames.EnvIpv4Disabled, new EnvIpv4Disabled(env.Ipv4Address))),
            address.Change(org.Id, new DomainEvent(EventNames.Ipv4Released, new Ipv4Released(env.Id))),
            org.Change(org.Id, org.UseChange(org.Usage with { Ipv4Addresses = Math.Max(0, org.Usage.Ipv4Addresses - 1) }, "IPv4 released")),
        ];
    }

    /// <summary>Records a new secrets version (names only; values are stored encrypted elsewhere).</summary>
    public static IReadOnlyList<Change> SetSecrets(EnvState env, IReadOnlyList<string> names, Guid bundleId) =>
        [env.Change(env.OrgId, new DomainEvent(EventNames.SecretsSet, new SecretsSet(env.SecretsVersion + 1, names.Order(StringComparer.Ordinal).ToList(), bundleId)))];

    /// <summary>Declares a volume of a process.</summary>
    public static IReadOnlyList<Change> DeclareVolume(EnvState env, string name, string size, string process, bool backupEnabled)
    {
        CheckName(name, "name");
        CheckName(process, "process");
        if (!ByteSize.TryParse(size ?? "", out var bytes, out var error))
        {
            throw DomainException.Invalid("invalid_size", "size", error);
        }
        if (bytes < ManifestSchema.MinVolumeBytes || bytes > ManifestSchema.MaxVolumeBytes)
        {
            throw DomainException.Invalid("invalid_size", "size", $"{size} is out of range: must be between {ByteSize.Format(ManifestSchema.MinVolumeBytes)} and {ByteSize.Format(ManifestSchema.MaxVolumeBytes)}");
        }
        if (env.Volumes.ContainsKey(name))
        {
            throw DomainException.Conflict("volume_exists", $"env {env.Name} already has a volume named {name}", "name");
        }
        if (env.Deployed is { } deployed && deployed.Manifest.GetProperty("processes").TryGetProperty(process, out var p)
            && p.GetProperty("scaling").GetProperty("max").GetInt32() > 1)
        {
            throw DomainException.Invalid("volume_needs_single_instance", "process", $"process {process} may run more than one instance, but a volume attaches to one");
        }
        return [env.Change(env.OrgId, new DomainEvent(EventNames.VolumeDeclared, new VolumeDeclared(name, bytes, process, backupEnabled)))];
    }

    /// <summary>Removes a volume declaration.</summary>
    public static IReadOnlyList<Change> RemoveVolume(EnvState env, string name)
    {
        if (!env.Volumes.ContainsKey(name))
        {
            throw DomainException.NotFound($"volume {name}");
        }
        if (env.Deployed is { } deployed && deployed.Manifest.GetProperty("volumes").EnumerateArray().Any(v => v.GetProperty("name").GetString() == name))
        {
            throw DomainException.Conflict("volume_in_use", $"the deployed release {deployed.Number} uses volume {name}; deploy a release without it first");
        }
        return [env.Change(env.OrgId, new DomainEvent(EventNames.VolumeRemoved, new VolumeRemoved(name)))];
    }

    private static string Shorten(string? s) => s is null ? "" : Toml.TomlKeys.Printable(s, 64);
}
