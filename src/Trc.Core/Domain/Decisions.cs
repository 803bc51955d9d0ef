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

    /// <summary>
    /// Node agents (a platform token shared by every node, not tied to an org): they may call the
    /// node endpoints and read their node's change stream, nothing else. It ranks below every org
    /// role, so no org check ever lets it through.
    /// </summary>
    public const string Node = "node";

    /// <summary>The roles an org token may have.</summary>
    public static IReadOnlyList<string> OrgRoles { get; } = [Viewer, Deployer, Owner];

    /// <summary>Whether <paramref name="role"/> is at least <paramref name="required"/>.</summary>
    public static bool AtLeast(string role, string required) => Rank(required) > 0 && Rank(role) >= Rank(required);

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
    private static readonly Regex PlatformKey = new(@"^[a-z0-9]{1,16}/[a-z0-9_]{1,16}(?:/[a-z0-9]{1,16})?$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
    private static readonly Regex BareDigest = new(@"^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>The most platforms a release records digests for.</summary>
    public const int MaxResolvedDigests = 32;

    private static readonly Regex ImageDigestRef = new(@"^(?<repo>[a-z0-9]+(?:[._\-/:][a-z0-9]+)*)@(?<digest>sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>Checks the per-platform digests of a deploy: <c>os/arch[/variant]</c> to a digest, at most <see cref="MaxResolvedDigests"/>.</summary>
    private static void CheckResolvedDigests(IReadOnlyDictionary<string, string>? resolvedDigests)
    {
        if (resolvedDigests is null)
        {
            return;
        }
        if (resolvedDigests.Count > MaxResolvedDigests)
        {
            throw DomainException.Invalid("invalid_resolved_digests", "resolved_digests", $"{resolvedDigests.Count} platforms; a release records at most {MaxResolvedDigests}");
        }
        foreach (var (platform, digest) in resolvedDigests)
        {
            if (!PlatformKey.IsMatch(platform))
            {
                throw DomainException.Invalid("invalid_resolved_digests", "resolved_digests", $"\"{Shorten(platform)}\" is not a platform: write os/arch[/variant], like linux/amd64 or linux/arm64/v8");
            }
            if (!BareDigest.IsMatch(digest ?? ""))
            {
                throw DomainException.Invalid("invalid_resolved_digests", $"resolved_digests.{platform}", $"\"{Shorten(digest)}\" is not a digest: write sha256:<64 hex digits>");
            }
        }
    }

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
        if (orgId is null ? role is not (Roles.Admin or Roles.Node) : !Roles.OrgRoles.Contains(role))
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

    /// <summary>Most aggregates one command may append to; the event store's batch limit (<c>AppendRequest.MaxAggregatesPerBatch</c>).</summary>
    public const int MaxAggregatesPerCommand = 16;

    /// <summary>
    /// The aggregates a deploy of <paramref name="manifest"/> to <paramref name="env"/> must load
    /// besides the env and its org: the hostnames of new routes the env does not hold yet, and the
    /// listener ports of new routes and of routes whose protocol changes. Routes that stay as they
    /// are touch nothing, so an ordinary redeploy never reads the (large) port 443 aggregate.
    /// </summary>
    public static (IReadOnlyList<string> Hostnames, IReadOnlyList<int> Ports) DeployNeeds(EnvState env, AppManifest manifest)
    {
        var held = env.Routes.Keys.Select(k => k.Hostname).ToHashSet(StringComparer.Ordinal);
        var hostnames = new SortedSet<string>(StringComparer.Ordinal);
        var ports = new SortedSet<int>();
        foreach (var route in manifest.Routes)
        {
            if (!env.Routes.TryGetValue((route.Hostname, route.ListenPort), out var existing))
            {
                ports.Add(route.ListenPort);
                if (!held.Contains(route.Hostname))
                {
                    hostnames.Add(route.Hostname);
                }
            }
            else if (existing.Protocol != ProtocolName(route.Protocol))
            {
                ports.Add(route.ListenPort);
            }
        }
        return (hostnames.ToList(), ports.ToList());
    }

    /// <summary>
    /// Deploys, atomically: records a release and makes it the env's deployed one, and brings the
    /// env's routes and volumes in line with the manifest in the same append. The image must be
    /// pinned to a digest; the manifest must name this app.
    /// <list type="bullet">
    /// <item>A route the env does not have is created with every rule of <see cref="AddRoute"/>
    /// (hostname bound to one env platform-wide, port policy and sharing, PROXY v2 acknowledged,
    /// IPv4 add-on and port bundle, the route quota), checked against this manifest's processes.
    /// A hostname held by another env is never moved by a deploy (409 <c>hostname_bound</c>).</item>
    /// <item>A route the env has with other settings (process, backend port, protocol, PROXY
    /// protocol, IPv4) is changed in place (<c>env.route_changed</c>).</item>
    /// <item>A volume the env does not have is declared; one with another backup flag is changed in
    /// place (<c>env.volume_changed</c>); another size or process is refused (409
    /// <c>volume_changed</c>): a volume's data cannot be resized or moved yet.</item>
    /// <item>Routes and volumes the manifest does not list are left alone (a deploy never deletes),
    /// but every route of the env must still be served by the new release (409 <c>route_unserved</c>).</item>
    /// <item>The org's memory, instance and route quotas must hold the result (releases counted at scaling.max).</item>
    /// </list>
    /// Any refusal changes nothing.
    /// </summary>
    /// <param name="env">The env deployed to.</param>
    /// <param name="org">Its org.</param>
    /// <param name="hostnames">The hostname aggregates named by <see cref="DeployNeeds"/>.</param>
    /// <param name="ports">The port aggregates named by <see cref="DeployNeeds"/>.</param>
    /// <param name="image">The image, pinned to a digest.</param>
    /// <param name="resolvedDigests">Digests the client resolved (per platform), if any.</param>
    /// <param name="manifest">The validated manifest.</param>
    /// <param name="manifestJson">Its normalized JSON, recorded with the release.</param>
    /// <param name="expectedRelease">The release the caller means to replace, if it says.</param>
    /// <param name="policy">The cluster's port policy.</param>
    /// <param name="envPath">org/app/env, recorded with hostname and port claims.</param>
    public static IReadOnlyList<Change> Deploy(
        EnvState env,
        OrgState org,
        IReadOnlyDictionary<string, HostnameState> hostnames,
        IReadOnlyDictionary<int, PortState> ports,
        string image,
        IReadOnlyDictionary<string, string>? resolvedDigests,
        AppManifest manifest,
        JsonElement manifestJson,
        int? expectedRelease,
        ClusterPolicy policy,
        string envPath)
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
        CheckResolvedDigests(resolvedDigests);
        if (manifest.App != env.AppName)
        {
            throw DomainException.Invalid("manifest_app_mismatch", "manifest.app", $"the manifest is for app \"{manifest.App}\", but this env belongs to app \"{env.AppName}\"");
        }

        var envEvents = new List<DomainEvent>();
        var sideChanges = new List<Change>();
        var plan = new PortPlan(ports);
        var routes = new Dictionary<(string Hostname, int Port), RouteAdded>(env.Routes);
        var claimed = new HashSet<string>(StringComparer.Ordinal);
        var created = 0;
        for (var i = 0; i < manifest.Routes.Count; i++)
        {
            var spec = manifest.Routes[i];
            var field = $"manifest.routes[{i}]";
            var name = $"{spec.Hostname}:{spec.ListenPort}";
            var wanted = new RouteAdded(spec.Hostname, spec.ListenPort, ProtocolName(spec.Protocol), spec.Process, spec.BackendPort,
                spec.ProxyProtocol == ProxyProtocolMode.V2 ? "v2" : "off", spec.BackendExpectsProxyProtocol, spec.Ipv4Required);
            var existing = env.Routes.GetValueOrDefault((spec.Hostname, spec.ListenPort));
            if (existing == wanted)
            {
                continue;
            }
            InRoute(field, name, () => CheckRoute(new RouteRequest(wanted.Hostname, wanted.ListenPort, wanted.Protocol, wanted.Process,
                wanted.BackendPort, wanted.ProxyProtocol, wanted.BackendExpectsProxyProtocol, wanted.Ipv4Required)));
            // Served by the release being made, not by the one deployed now: a deploy may add a
            // process together with its route.
            var process = manifest.FindProcess(wanted.Process)
                ?? throw DomainException.Invalid("unknown_process", field + ".process", $"route {name}: this manifest has no process {wanted.Process}");
            if (!process.Ports.Contains(wanted.BackendPort))
            {
                throw DomainException.Invalid("port_not_exposed", field + ".backend_port", $"route {name}: process {wanted.Process} of this manifest does not listen on port {wanted.BackendPort}");
            }
            if (wanted.Ipv4Required && env.Ipv4Address is null)
            {
                throw DomainException.Invalid("ipv4_addon_required", field + ".ipv4_required", $"route {name}: env {env.Name} has no dedicated IPv4 address: enable the IPv4 add-on first (trc ipv4 enable)");
            }

            if (existing is not null)
            {
                if (existing.Protocol != wanted.Protocol)
                {
                    plan.Release(spec.ListenPort, env.Id, existing);
                    plan.Claim(spec.ListenPort, env, wanted, org.Id, envPath, field + ".protocol", $"route {name}: ");
                }
                envEvents.Add(new DomainEvent(EventNames.RouteChanged, new RouteChanged(
                    wanted.Hostname, wanted.ListenPort, wanted.Protocol, wanted.Process, wanted.BackendPort, wanted.ProxyProtocol, wanted.BackendExpectsProxyProtocol, wanted.Ipv4Required)));
                routes[(spec.Hostname, spec.ListenPort)] = wanted;
                continue;
            }

            InRoute(field, name, () => policy.CheckListenPort(spec.ListenPort, env.Ipv4Address is not null));
            if (!claimed.Contains(spec.Hostname) && !env.Routes.Keys.Any(k => k.Hostname == spec.Hostname))
            {
                var host = hostnames.TryGetValue(spec.Hostname, out var h) ? h : throw new InvalidOperationException($"hostname {spec.Hostname} must be loaded");
                if (host.EnvId is { } holderId && holderId != env.Id)
                {
                    throw host.OrgId != org.Id
                        ? DomainException.Conflict("hostname_taken", $"route {name}: hostname {spec.Hostname} is in use by another org", field + ".hostname")
                        : DomainException.Conflict("hostname_bound", HostnameBoundByDeploy(spec, name, host.EnvPath), field + ".hostname");
                }
                if (host.EnvId is null)
                {
                    sideChanges.Add(host.Change(org.Id, new DomainEvent(EventNames.HostnameClaimed, new HostnameClaimed(org.Id, env.Id, envPath))));
                }
                claimed.Add(spec.Hostname);
            }
            plan.Claim(spec.ListenPort, env, wanted, org.Id, envPath, field + ".listen_port", $"route {name}: ");
            envEvents.Add(new DomainEvent(EventNames.RouteAdded, wanted));
            routes[(spec.Hostname, spec.ListenPort)] = wanted;
            created++;
        }
        CheckIpv4Bundle(env, routes.Values, manifest, policy);

        // Routes the manifest does not list stay, so the new release must still serve them.
        var listed = manifest.Routes.Select(r => (r.Hostname, r.ListenPort)).ToHashSet();
        foreach (var ((host, port), route) in env.Routes.Where(r => !listed.Contains(r.Key)))
        {
            var process = manifest.FindProcess(route.Process);
            if (process is null || !process.Ports.Contains(route.BackendPort))
            {
                throw DomainException.Conflict("route_unserved",
                    $"route {host}:{port} sends connections to process {route.Process} port {route.BackendPort}, which this manifest does not expose; list the route in the manifest with its new settings, or remove it first (trc routes delete {host} --port {port})", "manifest");
            }
        }

        for (var i = 0; i < manifest.Volumes.Count; i++)
        {
            var wanted = manifest.Volumes[i];
            var field = $"manifest.volumes[{i}]";
            if (!env.Volumes.TryGetValue(wanted.Name, out var declared))
            {
                CheckName(wanted.Name, field + ".name");
                if (wanted.SizeBytes < ManifestSchema.MinVolumeBytes || wanted.SizeBytes > ManifestSchema.MaxVolumeBytes)
                {
                    throw DomainException.Invalid("invalid_size", field + ".size", $"volume {wanted.Name}: {ByteSize.Format(wanted.SizeBytes)} is out of range: must be between {ByteSize.Format(ManifestSchema.MinVolumeBytes)} and {ByteSize.Format(ManifestSchema.MaxVolumeBytes)}");
                }
                envEvents.Add(new DomainEvent(EventNames.VolumeDeclared, new VolumeDeclared(wanted.Name, wanted.SizeBytes, wanted.Process, wanted.BackupEnabled)));
                continue;
            }
            if (declared.SizeBytes != wanted.SizeBytes)
            {
                throw DomainException.Conflict("volume_changed",
                    $"volume {wanted.Name} of env {env.Name} is {ByteSize.Format(declared.SizeBytes)}, and the manifest asks for {ByteSize.Format(wanted.SizeBytes)}; volumes cannot be resized yet: keep size = \"{ByteSize.Format(declared.SizeBytes)}\", or declare a volume under a new name",
                    field + ".size");
            }
            if (declared.Process != wanted.Process)
            {
                throw DomainException.Conflict("volume_changed",
                    $"volume {wanted.Name} of env {env.Name} belongs to process {declared.Process}, and the manifest attaches it to {wanted.Process}; a volume cannot move to another process: keep process = \"{declared.Process}\", or declare a volume under a new name",
                    field + ".process");
            }
            if (declared.BackupEnabled != wanted.BackupEnabled)
            {
                envEvents.Add(new DomainEvent(EventNames.VolumeChanged, new VolumeChanged(wanted.Name, declared.SizeBytes, declared.Process, wanted.BackupEnabled)));
            }
        }

        var memory = manifest.Processes.Sum(p => p.MemoryBytes * p.Scaling.Max);
        var instances = manifest.Processes.Sum(p => p.Scaling.Max);
        var current = env.Deployed;
        var usage = org.Usage with
        {
            MemoryBytes = org.Usage.MemoryBytes - (current?.MemoryBytes ?? 0) + memory,
            Instances = org.Usage.Instances - (current?.Instances ?? 0) + instances,
            Routes = org.Usage.Routes + created,
        };
        var number = env.Releases.Count + 1;
        var release = new ReleaseCreated(number, image!, match.Groups["digest"].Value, resolvedDigests, manifestJson, env.SecretsVersion, memory, instances);
        envEvents.Add(new DomainEvent(EventNames.ReleaseCreated, release));
        var reason = $"release {number} of {env.AppName}/{env.Name}{(created == 0 ? "" : $" with {created} new route{(created == 1 ? "" : "s")}")}";
        envEvents.Add(new DomainEvent(EventNames.ReleaseDeployed, new ReleaseDeployed(number, env.Deployment + 1, DeploymentKinds.Deploy, "trc deploy: " + reason)));

        var changes = new List<Change> { env.Change(env.OrgId, envEvents.ToArray()) };
        changes.AddRange(sideChanges);
        changes.AddRange(plan.Changes());
        changes.Add(org.Change(org.Id, org.UseChange(usage, reason)));
        if (changes.Count > MaxAggregatesPerCommand)
        {
            throw DomainException.Invalid("too_many_changes", "manifest.routes",
                $"this deploy would claim {sideChanges.Count} hostnames and change {changes.Count - 2 - sideChanges.Count} listener ports at once, more than one atomic change can hold ({MaxAggregatesPerCommand - 2} together); deploy with fewer of the new routes first, then with the rest");
        }
        return changes;
    }

    private static string ProtocolName(RouteProtocol protocol) => protocol == RouteProtocol.TcpRaw ? "tcp_raw" : "tls_passthrough";

    private static string HostnameBoundByDeploy(RouteSpec spec, string name, string? holderPath)
    {
        var parts = (holderPath ?? "").Split('/');
        var where = parts.Length == 3 ? $" --app {parts[1]} --env {parts[2]}" : "";
        return $"route {name}: hostname {spec.Hostname} is bound to {holderPath}, and a deploy does not move hostnames between envs; "
            + $"free it there (trc routes delete {spec.Hostname} --port PORT{where}, for each of its routes) "
            + "or move it here with trc routes create --move (which needs the release deployed here to serve it), then deploy again";
    }

    /// <summary>Runs a check of one manifest route, naming the route in the message and its field in the manifest.</summary>
    private static void InRoute(string field, string name, Action check)
    {
        try
        {
            check();
        }
        catch (DomainException e)
        {
            throw new DomainException(e.Kind, e.Code, $"route {name}: {e.Message}", e.Field is null ? field : $"{field}.{e.Field}") { Extensions = e.Extensions };
        }
    }

    /// <summary>The IPv4 add-on includes 80, 443 and a few more ports; a deploy may not make the env use more than that.</summary>
    private static void CheckIpv4Bundle(EnvState env, IEnumerable<RouteAdded> after, AppManifest manifest, ClusterPolicy policy)
    {
        var before = ExtraIpv4Ports(env.Routes.Values, policy);
        var now = ExtraIpv4Ports(after, policy);
        if (now.Count <= policy.Ipv4ExtraPorts || now.IsSubsetOf(before))
        {
            return;
        }
        var index = manifest.Routes.ToList().FindIndex(r => r.Ipv4Required && now.Contains(r.ListenPort) && !before.Contains(r.ListenPort));
        throw DomainException.Invalid("ipv4_port_bundle_exceeded", index < 0 ? "manifest.routes" : $"manifest.routes[{index}].listen_port",
            $"the IPv4 add-on includes 80, 443 and {policy.Ipv4ExtraPorts} more ports; with this manifest env {env.Name} would use {string.Join(", ", now.Order())}");
    }

    private static HashSet<int> ExtraIpv4Ports(IEnumerable<RouteAdded> routes, ClusterPolicy policy) =>
        routes.Where(r => r.Ipv4Required && !policy.DefaultPorts.Contains(r.ListenPort)).Select(r => r.ListenPort).ToHashSet();

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
                throw DomainException.Invalid("unknown_process", "process", $"the deployed release {deployed.Number} has no process {route.Process}; to add a process and its route together, declare both in the manifest and deploy it");
            }
            if (!process.GetProperty("ports").EnumerateArray().Any(p => p.GetInt32() == route.BackendPort))
            {
                throw DomainException.Invalid("port_not_exposed", "backend_port", $"process {route.Process} of release {deployed.Number} does not listen on port {route.BackendPort}; to change its ports and the route together, declare both in the manifest and deploy it");
            }
        }
        if (env.Routes.ContainsKey((route.Hostname, route.ListenPort)))
        {
            throw DomainException.Conflict("route_exists", $"env {env.Name} already has a route for {route.Hostname}:{route.ListenPort}", "hostname");
        }

        var changes = new List<Change>();
        var plan = new PortPlan(ports);
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
            changes.Add(holder.Change(holder.OrgId, leaving.Select(r => new DomainEvent(EventNames.RouteRemoved, new RouteRemoved(r.Hostname, r.ListenPort))).ToArray()));
            foreach (var r in leaving)
            {
                plan.Release(r.ListenPort, holder.Id, r);
            }
            usage = usage with { Routes = usage.Routes - leaving.Count };
            changes.Add(host.Change(org.Id, new DomainEvent(EventNames.HostnameMoved, new HostnameMoved(org.Id, holderId, env.Id, envPath))));
        }
        else if (host.EnvId is null)
        {
            changes.Add(host.Change(org.Id, new DomainEvent(EventNames.HostnameClaimed, new HostnameClaimed(org.Id, env.Id, envPath))));
        }

        var added = new RouteAdded(route.Hostname, route.ListenPort, route.Protocol, route.Process, route.BackendPort, route.ProxyProtocol, route.BackendExpectsProxyProtocol, route.Ipv4Required);
        plan.Claim(route.ListenPort, env, added, org.Id, envPath, "listen_port", "");
        changes.Insert(0, env.Change(env.OrgId, new DomainEvent(EventNames.RouteAdded, added)));
        changes.AddRange(plan.Changes());
        changes.Add(org.Change(org.Id, org.UseChange(usage with { Routes = usage.Routes + 1 }, $"route {route.Hostname}:{route.ListenPort}")));
        return changes;
    }

    /// <summary>
    /// The changes a command makes to the shared listener's ports, checked as they are planned: a
    /// port carries TLS routes told apart by SNI (any number, any env) or one raw TCP route, which
    /// is routed by port alone. Releases planned earlier (a moved hostname, a changed protocol)
    /// count before the claims after them.
    /// </summary>
    private sealed class PortPlan(IReadOnlyDictionary<int, PortState> ports)
    {
        private readonly Dictionary<int, List<DomainEvent>> _events = [];
        private readonly Dictionary<int, (Guid? RawEnvId, int SniRoutes)> _after = [];

        public void Release(int port, Guid envId, RouteAdded route)
        {
            var (raw, sni) = After(port);
            Events(port).Add(PortRelease(envId, route));
            _after[port] = route.Protocol == "tcp_raw" ? (null, sni) : (raw, sni - 1);
        }

        public void Claim(int port, EnvState env, RouteAdded route, Guid orgId, string envPath, string field, string prefix)
        {
            var (raw, sni) = After(port);
            if (raw is { } rawHolder)
            {
                throw DomainException.Conflict("port_taken",
                    $"{prefix}port {port} is held by a tcp_raw route{(rawHolder == env.Id ? $" of env {env.Name}" : " of another env")}, which is routed by port alone", field);
            }
            if (route.Protocol == "tcp_raw")
            {
                if (sni > 0)
                {
                    throw DomainException.Conflict("port_taken",
                        $"{prefix}port {port} carries TLS routes told apart by hostname; a tcp_raw route needs a port of its own", field);
                }
                Events(port).Add(new DomainEvent(EventNames.PortRawClaimed, new PortRawClaimed(orgId, env.Id, envPath)));
                _after[port] = (env.Id, sni);
            }
            else
            {
                Events(port).Add(new DomainEvent(EventNames.PortSniAdded, new PortSniAdded(env.Id, route.Hostname)));
                _after[port] = (raw, sni + 1);
            }
        }

        public IEnumerable<Change> Changes() => _events.Where(p => p.Value.Count > 0).Select(p => Port(p.Key).Change(null, p.Value.ToArray()));

        private (Guid? RawEnvId, int SniRoutes) After(int port) =>
            _after.TryGetValue(port, out var state) ? state : (Port(port).RawEnvId, Port(port).SniRoutes);

        private List<DomainEvent> Events(int port) => _events.TryGetValue(port, out var list) ? list : _events[port] = [];

        private PortState Port(int port) => ports.TryGetValue(port, out var state) ? state : throw new InvalidOperationException($"port {port} must be loaded");
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

    /// <summary>
    /// Records a new secrets version (names only; values are stored encrypted elsewhere). An env
    /// that runs a release rolls it out again with the new version: a new release with the same
    /// image and manifest (ADR 0010: rotation restarts, no hot reload).
    /// </summary>
    public static IReadOnlyList<Change> SetSecrets(EnvState env, OrgState org, IReadOnlyList<string> names, Guid bundleId)
    {
        var version = env.SecretsVersion + 1;
        var set = new DomainEvent(EventNames.SecretsSet, new SecretsSet(version, names.Order(StringComparer.Ordinal).ToList(), bundleId));
        if (RolloutDecisions.Running(env) is not { } running)
        {
            return [env.Change(env.OrgId, set)];
        }
        return RolloutDecisions.Redeploy(env, org, running, version, DeploymentKinds.Secrets,
            $"secrets version {version}: release {running.Number}'s image and manifest with the new secrets", [set]);
    }

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
