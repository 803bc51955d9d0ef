using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Trc.ControlPlane.Auth;
using Trc.ControlPlane.Catalog;
using Trc.ControlPlane.Commands;
using Trc.ControlPlane.Logs;
using Trc.ControlPlane.Nodes;
using Trc.ControlPlane.Secrets;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Core.Manifest;
using Trc.Core.Secrets;
using Trc.EventStore;

namespace Trc.ControlPlane.Api;

/// <summary>What the endpoints use.</summary>
/// <param name="Store">The event store.</param>
/// <param name="Catalog">Reads of the catalog.</param>
/// <param name="Runner">Runs commands with read-your-writes.</param>
/// <param name="Vault">Encrypted secret bundles.</param>
/// <param name="Policy">The cluster policy.</param>
/// <param name="MaxBodyBytes">Request body limit.</param>
public sealed record ApiServices(IEventStore Store, CatalogReader Catalog, CommandRunner Runner, SecretVault Vault, ClusterPolicy Policy, long MaxBodyBytes)
{
    /// <summary>This replica's node heartbeats.</summary>
    public required NodeLiveness Liveness { get; init; }

    /// <summary>App logs.</summary>
    public required LogStore Logs { get; init; }

    /// <summary>The cluster overlay's /48.</summary>
    public required OverlayNetwork Overlay { get; init; }

    /// <summary>Largest log batch body.</summary>
    public required long MaxLogBatchBytes { get; init; }

    /// <summary>The clock.</summary>
    public required TimeProvider Time { get; init; }
}

/// <summary>The /v1 API.</summary>
public static class Endpoints
{
    /// <summary>Maps every endpoint.</summary>
    public static void Map(IEndpointRouteBuilder app, ApiServices s)
    {
        var v1 = app.MapGroup("/v1");

        v1.MapGet("/whoami", (HttpContext http) =>
        {
            var p = Caller.Get(http);
            return Ok(new WhoAmIView(p.TokenId, p.TokenName, p.Role, p.OrgName));
        }).Produces<WhoAmIView>().WithName("whoami").WithSummary("Who the token belongs to.");

        MapOrgs(v1, s);
        MapTokens(v1, s);
        MapAppsAndEnvs(v1, s);
        MapReleases(v1, s);
        MapRoutes(v1, s);
        MapIpv4(v1, s);
        MapSecrets(v1, s);
        MapVolumes(v1, s);
        EventEndpoints.Map(v1, s);
        EdgeEndpoints.Map(v1, s);
        NodeEndpoints.Map(v1, s);
        InstanceEndpoints.Map(v1, s);
        RolloutEndpoints.Map(v1, s);
    }

    // ---- orgs, quotas ------------------------------------------------------------------------------

    private static void MapOrgs(RouteGroupBuilder v1, ApiServices s)
    {
        v1.MapPost("/orgs", async (HttpContext http, CancellationToken ct) =>
        {
            var p = RequireAdmin(http);
            var (body, fingerprint) = await JsonBody.ReadAsync<CreateOrgRequest>(http, s.MaxBodyBytes);
            Decisions.CheckName(body.Name, "name");
            var id = DomainIds.Org(body.Name);
            await s.Runner.RunAsync(p, Key(http), fingerprint, async load =>
                Decisions.CreateOrg(await load.LoadAsync(id, i => new OrgState(i), ct), body.Name, body.Quotas ?? s.Policy.DefaultQuotas), ct);
            return Created(await s.Catalog.OrgAsync(body.Name, ct) ?? throw DomainException.NotFound("org"));
        }).Accepts<CreateOrgRequest>("application/json").Produces<OrgView>(201).WithName("createOrg").WithSummary("Create an org (platform admin).");

        v1.MapGet("/orgs", async (HttpContext http, CancellationToken ct) =>
        {
            var p = Caller.Get(http);
            var orgs = await s.Catalog.OrgsAsync(ct);
            return Ok(new ListView<OrgView>(p.IsAdmin ? orgs : orgs.Where(o => o.Id == p.OrgId).ToList()));
        }).Produces<ListView<OrgView>>().WithName("listOrgs").WithSummary("Orgs the token can see.");

        v1.MapGet("/orgs/{org}", async (HttpContext http, string org, CancellationToken ct) =>
            Ok(await ScopeAsync(http, s, org, Roles.Viewer, ct))).Produces<OrgView>().WithName("getOrg");

        v1.MapGet("/orgs/{org}/quotas", async (HttpContext http, string org, CancellationToken ct) =>
        {
            var o = await ScopeAsync(http, s, org, Roles.Viewer, ct);
            return Ok(new QuotaView(o.Quotas, o.Usage));
        }).Produces<QuotaView>().WithName("getQuotas");

        v1.MapPut("/orgs/{org}/quotas", async (HttpContext http, string org, CancellationToken ct) =>
        {
            var p = RequireAdmin(http);
            var o = await ScopeAsync(http, s, org, Roles.Viewer, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<Quotas>(http, s.MaxBodyBytes);
            await s.Runner.RunAsync(p, Key(http), fingerprint, async load =>
                Decisions.SetQuotas(await load.LoadAsync(o.Id, i => new OrgState(i), ct), body), ct);
            var updated = await s.Catalog.OrgAsync(org, ct) ?? throw DomainException.NotFound("org");
            return Ok(new QuotaView(updated.Quotas, updated.Usage));
        }).Accepts<Quotas>("application/json").Produces<QuotaView>().WithName("setQuotas").WithSummary("Set an org's quotas (platform admin).");
    }

    // ---- tokens ------------------------------------------------------------------------------------

    private static void MapTokens(RouteGroupBuilder v1, ApiServices s)
    {
        v1.MapPost("/orgs/{org}/tokens", async (HttpContext http, string org, CancellationToken ct) =>
        {
            var o = await ScopeAsync(http, s, org, Roles.Owner, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<CreateTokenRequest>(http, s.MaxBodyBytes);
            var (id, token, hash) = TokenCodec.Create();
            await s.Runner.RunAsync(Caller.Get(http), Key(http), fingerprint, async load =>
                Decisions.CreateToken(await load.LoadAsync(id, i => new TokenState(i), ct), o.Id, body.Name, body.Role, hash), ct);
            var created = (await s.Catalog.TokensAsync(o.Id, ct)).FirstOrDefault(t => t.Id == id)
                ?? throw new BadRequestException(409, "idempotent_replay", "this Idempotency-Key created a token before; its secret was shown then and cannot be shown again", "Idempotency-Key");
            return Created(new TokenCreatedView(created.Id, created.Name, created.Role, token, created.CreatedAt));
        }).Accepts<CreateTokenRequest>("application/json").Produces<TokenCreatedView>(201).WithName("createToken").WithSummary("Create an API token; its secret is shown once.");

        v1.MapGet("/orgs/{org}/tokens", async (HttpContext http, string org, CancellationToken ct) =>
        {
            var o = await ScopeAsync(http, s, org, Roles.Owner, ct);
            return Ok(new ListView<TokenView>(await s.Catalog.TokensAsync(o.Id, ct)));
        }).Produces<ListView<TokenView>>().WithName("listTokens");

        v1.MapDelete("/orgs/{org}/tokens/{id}", async (HttpContext http, string org, string id, CancellationToken ct) =>
        {
            var o = await ScopeAsync(http, s, org, Roles.Owner, ct);
            if (!Guid.TryParse(id, out var tokenId))
            {
                throw DomainException.NotFound("token");
            }
            await s.Runner.RunAsync(Caller.Get(http), Key(http), JsonBody.Fingerprint(http), async load =>
            {
                var token = await load.LoadAsync(tokenId, i => new TokenState(i), ct);
                if (token.OrgId != o.Id)
                {
                    throw DomainException.NotFound("token");
                }
                return Decisions.RevokeToken(token, $"revoked by {Caller.Get(http).TokenName}");
            }, ct);
            return Results.NoContent();
        }).Produces(204).WithName("revokeToken").WithSummary("Revoke a token.");
    }

    // ---- apps and envs -----------------------------------------------------------------------------

    private static void MapAppsAndEnvs(RouteGroupBuilder v1, ApiServices s)
    {
        v1.MapPost("/orgs/{org}/apps", async (HttpContext http, string org, CancellationToken ct) =>
        {
            var o = await ScopeAsync(http, s, org, Roles.Deployer, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<CreateAppRequest>(http, s.MaxBodyBytes);
            Decisions.CheckName(body.Name, "name");
            await s.Runner.RunAsync(Caller.Get(http), Key(http), fingerprint, async load =>
                Decisions.CreateApp(await load.LoadAsync(DomainIds.App(o.Id, body.Name), i => new AppState(i), ct), await load.LoadAsync(o.Id, i => new OrgState(i), ct), body.Name), ct);
            return Created(await s.Catalog.AppAsync(org, o.Id, body.Name, ct) ?? throw DomainException.NotFound("app"));
        }).Accepts<CreateAppRequest>("application/json").Produces<AppView>(201).WithName("createApp");

        v1.MapGet("/orgs/{org}/apps", async (HttpContext http, string org, CancellationToken ct) =>
        {
            var o = await ScopeAsync(http, s, org, Roles.Viewer, ct);
            return Ok(new ListView<AppView>(await s.Catalog.AppsAsync(org, o.Id, ct)));
        }).Produces<ListView<AppView>>().WithName("listApps");

        v1.MapGet("/orgs/{org}/apps/{app}", async (HttpContext http, string org, string app, CancellationToken ct) =>
            Ok(await AppAsync(http, s, org, app, Roles.Viewer, ct))).Produces<AppView>().WithName("getApp");

        v1.MapPost("/orgs/{org}/apps/{app}/envs", async (HttpContext http, string org, string app, CancellationToken ct) =>
        {
            var a = await AppAsync(http, s, org, app, Roles.Deployer, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<CreateEnvRequest>(http, s.MaxBodyBytes);
            Decisions.CheckName(body.Name, "name");
            await s.Runner.RunAsync(Caller.Get(http), Key(http), fingerprint, async load =>
                Decisions.CreateEnv(await load.LoadAsync(DomainIds.Env(a.Id, body.Name), i => new EnvState(i), ct), await load.LoadAsync(a.Id, i => new AppState(i), ct), body.Name), ct);
            return Created((await s.Catalog.EnvAsync(org, a.Id, body.Name, ct) ?? throw DomainException.NotFound("env")).View);
        }).Accepts<CreateEnvRequest>("application/json").Produces<EnvView>(201).WithName("createEnv");

        v1.MapGet("/orgs/{org}/apps/{app}/envs", async (HttpContext http, string org, string app, CancellationToken ct) =>
        {
            var a = await AppAsync(http, s, org, app, Roles.Viewer, ct);
            return Ok(new ListView<EnvView>(await s.Catalog.EnvsAsync(org, a.Id, ct)));
        }).Produces<ListView<EnvView>>().WithName("listEnvs");

        v1.MapGet("/orgs/{org}/apps/{app}/envs/{env}", async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
            Ok((await EnvAsync(http, s, org, app, env, Roles.Viewer, ct)).View)).Produces<EnvView>().WithName("getEnv");
    }

    // ---- releases (deploy) ----------------------------------------------------------------------------

    private static void MapReleases(RouteGroupBuilder v1, ApiServices s)
    {
        const string path = "/orgs/{org}/apps/{app}/envs/{env}/releases";
        v1.MapPost(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<DeployRequest>(http, s.MaxBodyBytes);
            var loaded = ManifestLoader.Load(body.Manifest ?? "");
            if (!loaded.IsValid)
            {
                throw new ManifestInvalidException(loaded.Diagnostics.Select(d => d.Format("manifest")).ToList());
            }
            using var manifestJson = JsonDocument.Parse(ManifestJson.Serialize(loaded.Manifest!));
            var root = manifestJson.RootElement.Clone();
            var envPath = $"{org}/{app}/{env}";
            var last = await s.Runner.RunAsync(Caller.Get(http), Key(http), fingerprint, async load =>
            {
                // One decision over the env, its org and every hostname and port the manifest's new
                // routes claim, appended in one transaction: the release and its routes and volumes
                // exist together or not at all.
                var state = await load.LoadAsync(e.View.Id, i => new EnvState(i), ct);
                var orgState = await load.LoadAsync(state.OrgId, i => new OrgState(i), ct);
                var (hostnameNames, portNumbers) = Decisions.DeployNeeds(state, loaded.Manifest!);
                var hostnames = new Dictionary<string, HostnameState>(StringComparer.Ordinal);
                foreach (var hostname in hostnameNames)
                {
                    hostnames[hostname] = await load.LoadAsync(DomainIds.Hostname(hostname), i => new HostnameState(i), ct);
                }
                var ports = new Dictionary<int, PortState>();
                foreach (var number in portNumbers)
                {
                    ports[number] = await load.LoadAsync(PortState.IdOf(number), i => new PortState(i), ct);
                }
                return Decisions.Deploy(state, orgState, hostnames, ports, body.Image, body.ResolvedDigests, loaded.Manifest!, root, body.ExpectedRelease, s.Policy, envPath);
            }, ct);
            // The release this request made (or, for a retry with the same Idempotency-Key, made the
            // first time): the newest release.created at or before the append's last event. Not
            // simply the newest release, which may be another deploy's.
            var made = (await s.Store.ReadAggregateAsync(EventNames.EnvAggregate, e.View.Id, 0, ct))
                .Last(x => x.EventType == EventNames.ReleaseCreated && x.EventId <= last);
            var number = EventJson.Deserialize<ReleaseCreated>(made.PayloadJson).Number;
            var deployment = (await s.Store.ReadAggregateAsync(EventNames.EnvAggregate, e.View.Id, made.AggregateSeq, ct))
                .Where(x => x.EventType == EventNames.ReleaseDeployed && x.EventId <= last).Select(x => EventJson.Deserialize<ReleaseDeployed>(x.PayloadJson).Deployment).FirstOrDefault();
            var view = await s.Catalog.ReleaseAsync(e.View.Id, number, ct) ?? throw new NotReadyException($"release {number} is recorded but not yet readable");
            return Created(view with { Deployment = deployment });
        }).Accepts<DeployRequest>("application/json").Produces<ReleaseView>(201).WithName("deploy")
          .WithSummary("Deploy: record a release (image pinned to a digest + manifest), start its rollout (deployment), and create or update the manifest's routes and volumes, all in one atomic change. The answer names the deployment; follow it at .../deployments/{number}.");

        v1.MapGet(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            return Ok(new ListView<ReleaseView>(await s.Catalog.ReleasesAsync(e.View.Id, ct)));
        }).Produces<ListView<ReleaseView>>().WithName("listReleases");

        v1.MapGet(path + "/{number:int}", async (HttpContext http, string org, string app, string env, int number, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            return Ok(await s.Catalog.ReleaseAsync(e.View.Id, number, ct) ?? throw DomainException.NotFound($"release {number}"));
        }).Produces<ReleaseView>().WithName("getRelease");
    }

    // ---- routes --------------------------------------------------------------------------------------

    private static void MapRoutes(RouteGroupBuilder v1, ApiServices s)
    {
        const string path = "/orgs/{org}/apps/{app}/envs/{env}/routes";
        v1.MapPost(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<CreateRouteRequest>(http, s.MaxBodyBytes);
            var route = new RouteRequest(
                body.Hostname ?? "",
                body.ListenPort ?? 443,
                body.Protocol ?? "tls_passthrough",
                body.Process ?? ManifestSchema.DefaultProcess,
                body.BackendPort,
                body.ProxyProtocol ?? "off",
                body.BackendExpectsProxyProtocol ?? false,
                body.Ipv4Required ?? false);
            Decisions.CheckRoute(route);
            var envPath = $"{org}/{app}/{env}";
            await s.Runner.RunAsync(Caller.Get(http), Key(http), fingerprint, async load =>
            {
                var state = await load.LoadAsync(e.View.Id, i => new EnvState(i), ct);
                var orgState = await load.LoadAsync(state.OrgId, i => new OrgState(i), ct);
                var host = await load.LoadAsync(DomainIds.Hostname(route.Hostname), i => new HostnameState(i), ct);
                EnvState? holder = null;
                var portNumbers = new HashSet<int> { route.ListenPort };
                if (body.Move == true && host.EnvId is { } holderId && holderId != state.Id && host.OrgId == state.OrgId)
                {
                    holder = await load.LoadAsync(holderId, i => new EnvState(i), ct);
                    portNumbers.UnionWith(holder.Routes.Values.Where(r => r.Hostname == route.Hostname).Select(r => r.ListenPort));
                }
                var ports = new Dictionary<int, PortState>();
                foreach (var number in portNumbers)
                {
                    ports[number] = await load.LoadAsync(PortState.IdOf(number), i => new PortState(i), ct);
                }
                return Decisions.AddRoute(state, orgState, host, ports, holder, route, body.Move == true, s.Policy, envPath);
            }, ct);
            var created = (await s.Catalog.RoutesAsync(org, app, env, e.View.Id, ct)).First(r => r.Hostname == route.Hostname && r.ListenPort == route.ListenPort);
            return Created(created);
        }).Accepts<CreateRouteRequest>("application/json").Produces<RouteView>(201).WithName("createRoute")
          .WithSummary("Bind a hostname and port to this env (move = true takes it from another env of the org).");

        v1.MapGet(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            return Ok(new ListView<RouteView>(await s.Catalog.RoutesAsync(org, app, env, e.View.Id, ct)));
        }).Produces<ListView<RouteView>>().WithName("listRoutes");

        v1.MapDelete(path + "/{hostname}/{port:int}", async (HttpContext http, string org, string app, string env, string hostname, int port, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            await s.Runner.RunAsync(Caller.Get(http), Key(http), JsonBody.Fingerprint(http), async load =>
            {
                var state = await load.LoadAsync(e.View.Id, i => new EnvState(i), ct);
                return Decisions.RemoveRoute(
                    state,
                    await load.LoadAsync(state.OrgId, i => new OrgState(i), ct),
                    await load.LoadAsync(DomainIds.Hostname(hostname), i => new HostnameState(i), ct),
                    await load.LoadAsync(PortState.IdOf(port), i => new PortState(i), ct),
                    hostname,
                    port);
            }, ct);
            return Results.NoContent();
        }).Produces(204).WithName("deleteRoute");
    }

    // ---- IPv4 add-on -----------------------------------------------------------------------------------

    private static void MapIpv4(RouteGroupBuilder v1, ApiServices s)
    {
        const string path = "/orgs/{org}/apps/{app}/envs/{env}/ipv4";
        v1.MapPut(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            var envPath = $"{org}/{app}/{env}";
            // Try free addresses in pool order; one taken meanwhile by another env is skipped.
            var tried = new HashSet<string>(StringComparer.Ordinal);
            for (var attempt = 0; ; attempt++)
            {
                var inUse = await s.Catalog.Ipv4InUseAsync(ct);
                var free = s.Policy.Ipv4Pool.Select(a => a.ToString()).FirstOrDefault(a => !inUse.Contains(a) && !tried.Contains(a))
                    ?? throw DomainException.Conflict("ipv4_pool_exhausted", "the cluster's IPv4 pool has no free address");
                tried.Add(free);
                try
                {
                    await s.Runner.RunAsync(Caller.Get(http), Key(http), JsonBody.Fingerprint(http), async load =>
                    {
                        var state = await load.LoadAsync(e.View.Id, i => new EnvState(i), ct);
                        return Decisions.EnableIpv4(state, await load.LoadAsync(state.OrgId, i => new OrgState(i), ct),
                            await load.LoadAsync(DomainIds.Ipv4Address(free), i => new Ipv4State(i), ct), free, s.Policy, envPath);
                    }, ct);
                    break;
                }
                catch (DomainException d) when (d.Code is "ipv4_address_taken" or "conflict" && attempt < 5)
                {
                }
            }
            return Ok(await s.Catalog.Ipv4Async(e.View.Id, ct) ?? throw DomainException.NotFound("IPv4 address of this env"));
        }).Produces<Ipv4View>().WithName("enableIpv4").WithSummary("Turn the IPv4 add-on on: a dedicated address from the pool.");

        v1.MapGet(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            return Ok(await s.Catalog.Ipv4Async(e.View.Id, ct) ?? throw DomainException.NotFound("IPv4 address of this env"));
        }).Produces<Ipv4View>().WithName("getIpv4");

        v1.MapDelete(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            await s.Runner.RunAsync(Caller.Get(http), Key(http), JsonBody.Fingerprint(http), async load =>
            {
                var state = await load.LoadAsync(e.View.Id, i => new EnvState(i), ct);
                var address = state.Ipv4Address ?? throw DomainException.NotFound("IPv4 address of this env");
                return Decisions.DisableIpv4(state, await load.LoadAsync(state.OrgId, i => new OrgState(i), ct), await load.LoadAsync(DomainIds.Ipv4Address(address), i => new Ipv4State(i), ct));
            }, ct);
            return Results.NoContent();
        }).Produces(204).WithName("disableIpv4").WithSummary("Turn the IPv4 add-on off; the address returns to the pool.");
    }

    // ---- secrets ---------------------------------------------------------------------------------------

    private static void MapSecrets(RouteGroupBuilder v1, ApiServices s)
    {
        const string path = "/orgs/{org}/apps/{app}/envs/{env}/secrets";
        v1.MapPut(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<SetSecretsRequest>(http, s.MaxBodyBytes);
            var set = ParseSecretValues(body.Set);
            var unset = body.Unset ?? [];
            if (set.Count == 0 && unset.Count == 0)
            {
                throw DomainException.Invalid("nothing_to_change", "set", "give secrets to set or names to unset");
            }
            SecretsView? made = null;
            await s.Runner.RunAsync(Caller.Get(http), Key(http), fingerprint, async load =>
            {
                // The aggregate, not the catalog, says which bundle the new version builds on.
                var state = await load.LoadAsync(e.View.Id, i => new EnvState(i), ct);
                var current = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                if (state.SecretBundleId is { } bundle)
                {
                    var file = await s.Vault.ReadAsync(state.Id, bundle, ct) ?? throw new InvalidOperationException($"secrets bundle {bundle} is missing");
                    var parsed = SecretsFile.Parse(file);
                    foreach (var (key, value) in parsed.Secrets!)
                    {
                        current[key] = value;
                    }
                }
                foreach (var (name, index) in unset.Select((n, i) => (n, i)))
                {
                    if (!current.Remove(name) && !set.ContainsKey(name))
                    {
                        throw DomainException.Invalid("secret_not_set", $"unset[{index}]", $"{Printable(name)} is not set");
                    }
                }
                foreach (var (name, value) in set)
                {
                    current[name] = value;
                }
                var bytes = SecretsFile.Encode(current);
                var bundleId = Guid.NewGuid();
                await s.Vault.WriteAsync(state.Id, bundleId, bytes, ct);
                var orgState = await load.LoadAsync(state.OrgId, i => new OrgState(i), ct);
                var changes = Decisions.SetSecrets(state, orgState, current.Keys.ToList(), bundleId);
                // With the rollout this change starts, when the env runs a release.
                var rolled = changes.SelectMany(c => c.Events).Select(ev => ev.Payload).OfType<ReleaseDeployed>().FirstOrDefault();
                made = new SecretsView(state.SecretsVersion + 1, current.Keys.Order(StringComparer.Ordinal).ToList(), rolled?.Deployment);
                return changes;
            }, ct);
            // This request's version (a concurrent one may be newer); a replayed request reads the catalog.
            return Ok(made ?? await s.Catalog.SecretsAsync(e.View.Id, ct));
        }).Accepts<SetSecretsRequest>("application/json").Produces<SecretsView>().WithName("setSecrets")
          .WithSummary("Set and unset secrets, making a new version (values are stored encrypted; events carry names only).");

        v1.MapGet(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            return Ok(await s.Catalog.SecretsAsync(e.View.Id, ct));
        }).Produces<SecretsView>().WithName("listSecrets").WithSummary("Secret names and the current version (never values).");

        v1.MapGet(path + "/render", async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Owner, ct);
            var bytes = await s.Vault.FileAsync(e.View.Id, e.SecretBundleId, ct);
            http.Response.Headers.CacheControl = "no-store";
            return Results.Bytes(bytes, "text/plain; charset=utf-8");
        }).Produces(200, contentType: "text/plain").WithName("renderSecrets").WithSummary("The exact secrets file (owners only).");
    }

    private static Dictionary<string, byte[]> ParseSecretValues(IReadOnlyDictionary<string, JsonElement>? set)
    {
        var values = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (key, value) in set ?? new Dictionary<string, JsonElement>())
        {
            if (!SecretsFile.IsValidKey(key, out var problem))
            {
                throw DomainException.Invalid("invalid_secret_name", $"set.{Printable(key)}", problem);
            }
            if (value.ValueKind == JsonValueKind.String)
            {
                values[key] = Encoding.UTF8.GetBytes(value.GetString()!);
            }
            else if (value.ValueKind == JsonValueKind.Object && value.EnumerateObject().Count() == 1
                && value.TryGetProperty("base64", out var b64) && b64.ValueKind == JsonValueKind.String
                && SecretsFile.TryDecodeBase64(Encoding.UTF8.GetBytes(b64.GetString()!), out var bytes, out _, out _))
            {
                values[key] = bytes;
            }
            else
            {
                // Never echo the value: name the key and the expected shapes.
                throw DomainException.Invalid("invalid_secret_value", $"set.{key}", $"the value of {key} must be a string or {{\"base64\": \"<canonical standard base64>\"}}");
            }
        }
        return values;
    }

    // ---- volumes ---------------------------------------------------------------------------------------

    private static void MapVolumes(RouteGroupBuilder v1, ApiServices s)
    {
        const string path = "/orgs/{org}/apps/{app}/envs/{env}/volumes";
        v1.MapPost(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<CreateVolumeRequest>(http, s.MaxBodyBytes);
            await s.Runner.RunAsync(Caller.Get(http), Key(http), fingerprint, async load =>
                Decisions.DeclareVolume(await load.LoadAsync(e.View.Id, i => new EnvState(i), ct), body.Name, body.Size, body.Process ?? ManifestSchema.DefaultProcess, body.BackupEnabled ?? true), ct);
            return Created((await s.Catalog.VolumesAsync(e.View.Id, ct)).First(v => v.Name == body.Name));
        }).Accepts<CreateVolumeRequest>("application/json").Produces<VolumeView>(201).WithName("createVolume");

        v1.MapGet(path, async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            return Ok(new ListView<VolumeView>(await s.Catalog.VolumesAsync(e.View.Id, ct)));
        }).Produces<ListView<VolumeView>>().WithName("listVolumes");

        v1.MapDelete(path + "/{name}", async (HttpContext http, string org, string app, string env, string name, CancellationToken ct) =>
        {
            var e = await EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            await s.Runner.RunAsync(Caller.Get(http), Key(http), JsonBody.Fingerprint(http), async load =>
                Decisions.RemoveVolume(await load.LoadAsync(e.View.Id, i => new EnvState(i), ct), name), ct);
            return Results.NoContent();
        }).Produces(204).WithName("deleteVolume");
    }

    // ---- scoping and helpers ---------------------------------------------------------------------------

    /// <summary>
    /// The org named in the path, if the caller may see it. A token of another org gets the same 404
    /// as a missing org (nothing leaks); a role too weak gets 403, checked after visibility.
    /// </summary>
    internal static async Task<OrgView> ScopeAsync(HttpContext http, ApiServices s, string org, string role, CancellationToken ct)
    {
        var p = Caller.Get(http);
        if (!p.IsAdmin && p.OrgName != org)
        {
            throw DomainException.NotFound($"org {Printable(org)}");
        }
        var view = await s.Catalog.OrgAsync(org, ct) ?? throw DomainException.NotFound($"org {Printable(org)}");
        if (!Roles.AtLeast(p.Role, role))
        {
            throw new DomainException(DomainErrorKind.Forbidden, "forbidden", $"a {p.Role} token may not do this; it needs the {role} role");
        }
        return view;
    }

    private static async Task<AppView> AppAsync(HttpContext http, ApiServices s, string org, string app, string role, CancellationToken ct)
    {
        var o = await ScopeAsync(http, s, org, role, ct);
        return await s.Catalog.AppAsync(org, o.Id, app, ct) ?? throw DomainException.NotFound($"app {Printable(app)}");
    }

    internal static async Task<EnvRow> EnvAsync(HttpContext http, ApiServices s, string org, string app, string env, string role, CancellationToken ct)
    {
        var a = await AppAsync(http, s, org, app, role, ct);
        return await s.Catalog.EnvAsync(org, a.Id, env, ct) ?? throw DomainException.NotFound($"env {Printable(env)}");
    }

    internal static Principal RequireAdmin(HttpContext http)
    {
        var p = Caller.Get(http);
        return p.IsAdmin ? p : throw new DomainException(DomainErrorKind.Forbidden, "forbidden", "only the platform admin may do this");
    }

    internal static string? Key(HttpContext http)
    {
        if (!http.Request.Headers.TryGetValue("Idempotency-Key", out var values))
        {
            return null;
        }
        var key = values.ToString();
        if (key.Length is 0 or > 200 || key.Any(c => c is < (char)0x21 or > (char)0x7E))
        {
            throw new BadRequestException(400, "invalid_idempotency_key", "an Idempotency-Key is 1-200 printable ASCII characters without spaces", "Idempotency-Key");
        }
        return key;
    }

    internal static IResult Ok<T>(T value) => Results.Json(value, ApiJson.Options);

    private static IResult Created<T>(T value) => Results.Json(value, ApiJson.Options, statusCode: 201);

    internal static string Printable(string s) => JsonBody.Printable(s);
}
