using System.Net;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.EventStore;

namespace Trc.ControlPlane.Tests;

/// <summary>
/// A deploy is one atomic change: the release, and the manifest's routes and volumes the env does
/// not have yet (or has with other settings), with every rule a route has on its own. When any
/// part is refused, nothing at all is created.
/// </summary>
public abstract class DeployTests(ServerFixture fixture)
{
    private TestServer Server => fixture.Server;

    private static string Host(string label) => $"{label}-{Guid.NewGuid().ToString("N")[..8]}.example.com";

    /// <summary>A [[routes]] entry.</summary>
    private static string Route(string hostname, int backend = 8443, int? listen = null, string process = "web", string more = "") =>
        $"\n[[routes]]\nhostname = \"{hostname}\"\nprocess = \"{process}\"\nbackend_port = {backend}\n{(listen is { } l ? $"listen_port = {l}\n" : "")}{more}";

    /// <summary>A [[volumes]] entry.</summary>
    private static string Volume(string name, string size, bool backup = true) =>
        $"\n[[volumes]]\nname = \"{name}\"\nsize = \"{size}\"\nbackup_enabled = {(backup ? "true" : "false")}\n";

    /// <summary>Setup.Manifest (process web, ports 8443 and 5432) plus <paramref name="parts"/>.</summary>
    private static string Manifest(params string[] parts) => Setup.Manifest + "\n" + string.Concat(parts);

    private static ApiCall Deploy(HttpClient client, string org, string env, string manifest, string? key = null) =>
        TestServer.Send(client, HttpMethod.Post, ApiPaths.Releases(org, "shop", env), new DeployRequest(Setup.Image, manifest), key);

    private static async Task<IReadOnlyList<RouteView>> RoutesAsync(HttpClient client, string org, string env = "prod") =>
        (await TestServer.Send(client, HttpMethod.Get, ApiPaths.Routes(org, "shop", env)).Json<ListView<RouteView>>()).Items;

    private static async Task<IReadOnlyList<VolumeView>> VolumesAsync(HttpClient client, string org, string env = "prod") =>
        (await TestServer.Send(client, HttpMethod.Get, ApiPaths.Volumes(org, "shop", env)).Json<ListView<VolumeView>>()).Items;

    private static async Task<Usage> UsageAsync(HttpClient client, string org) =>
        (await TestServer.Send(client, HttpMethod.Get, ApiPaths.Quotas(org)).Json<QuotaView>()).Usage;

    private static async Task<int> ReleaseCountAsync(HttpClient client, string org, string env = "prod") =>
        (await TestServer.Send(client, HttpMethod.Get, ApiPaths.Releases(org, "shop", env)).Json<ListView<ReleaseView>>()).Items.Count;

    /// <summary>Proves a hostname was left free: another org can take it.</summary>
    private async Task AssertFreeAsync(string hostname)
    {
        var other = Setup.OrgName("free");
        var owner = await Setup.ShopAsync(Server, other);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(other, "shop", "prod"), Setup.Route(hostname)).Expect(HttpStatusCode.Created);
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Route(other, "shop", "prod", hostname, 443)).Expect(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task A_deploy_creates_the_manifests_routes_and_volumes_with_the_release()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        var (web, db) = (Host("web"), Host("db"));

        var manifest = Manifest(Route(web), Route(db, 5432, listen: 8443), Volume("data", "2Gi", backup: false));
        var release = await Deploy(owner, org, "prod", manifest).Json<ReleaseView>(HttpStatusCode.Created);

        Assert.Equal(1, release.Number);
        var routes = await RoutesAsync(owner, org);
        Assert.Equal(new[] { (db, 8443, 5432), (web, 443, 8443) }, routes.Select(r => (r.Hostname, r.ListenPort, r.BackendPort)).Order());
        Assert.Equal(new VolumeView("data", 2L << 30, "web", false, "/mnt/volumes/data"), Assert.Single(await VolumesAsync(owner, org)));
        Assert.Equal(2, (await UsageAsync(owner, org)).Routes);

        // The routes, the volume and the release are one append by one token: the same transaction.
        var events = (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.OrgEvents(org) + "?limit=1000").Json<EventPageView>()).Events;
        var deployEvents = events.Where(e => e.Type is EventNames.RouteAdded or EventNames.VolumeDeclared or EventNames.ReleaseCreated or EventNames.HostnameClaimed).ToList();
        Assert.Equal(6, deployEvents.Count);
        Assert.Single(deployEvents.Select(e => e.OccurredAt).Distinct());

        // Deploying the same manifest again records a release and touches nothing else.
        await Deploy(owner, org, "prod", manifest).Expect(HttpStatusCode.Created);
        var after = (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.OrgEvents(org) + $"?after={events[^1].Id}&limit=1000").Json<EventPageView>()).Events;
        Assert.Equal([EventNames.ReleaseCreated, EventNames.ReleaseDeployed, EventNames.OrgUsageChanged], after.Select(e => e.Type));
        Assert.Equal(2, (await UsageAsync(owner, org)).Routes);
    }

    [Fact]
    public async Task A_deploy_adds_a_process_and_its_route_in_one_step()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var api = Host("api");
        // The deployed release 1 has no process api: the route is checked against the new manifest.
        var manifest = Manifest(Route(api, 9000, process: "api"), "\n[processes.api]\nmemory = \"128Mi\"\nports = [9000]\n");

        var release = await Deploy(owner, org, "prod", manifest).Json<ReleaseView>(HttpStatusCode.Created);

        Assert.Equal(2, release.Number);
        var route = Assert.Single(await RoutesAsync(owner, org));
        Assert.Equal((api, "api", 9000), (route.Hostname, route.Process, route.BackendPort));
        // A route to a process the manifest does not have is refused, naming the manifest's field.
        var problem = await Deploy(owner, org, "prod", Manifest(Route(Host("x"), 9000, process: "api"))).Problem(HttpStatusCode.UnprocessableEntity, "invalid_manifest");
        Assert.Contains(problem.Errors!, e => e.Contains("routes[0].process", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_deploy_whose_second_route_is_bound_elsewhere_creates_nothing()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, true, "prod", "staging");
        var (fresh, bound) = (Host("fresh"), Host("bound"));
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "staging"), Setup.Route(bound)).Expect(HttpStatusCode.Created);
        var usage = await UsageAsync(owner, org);

        var problem = await Deploy(owner, org, "prod", Manifest(Route(fresh), Route(bound), Volume("data", "1Gi"), "\n[processes.api]\nmemory = \"128Mi\"\n"))
            .Problem(HttpStatusCode.Conflict, "hostname_bound");

        Assert.Equal("manifest.routes[1].hostname", problem.Field);
        Assert.Contains($"{org}/shop/staging", problem.Detail);
        Assert.Contains("a deploy does not move hostnames", problem.Detail);
        Assert.Contains($"trc routes delete {bound} --port PORT --app shop --env staging", problem.Detail);
        Assert.Empty(await RoutesAsync(owner, org));
        Assert.Empty(await VolumesAsync(owner, org));
        Assert.Equal(1, await ReleaseCountAsync(owner, org));
        Assert.Equal(usage, await UsageAsync(owner, org));
        await AssertFreeAsync(fresh);

        // The hint is true: once the hostname is freed there, the same deploy goes through.
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Route(org, "shop", "staging", bound, 443)).Expect(HttpStatusCode.NoContent);
        await Deploy(owner, org, "prod", Manifest(Route(fresh), Route(bound), Volume("data", "1Gi"))).Expect(HttpStatusCode.Created);
        Assert.Equal(2, (await RoutesAsync(owner, org)).Count);
    }

    [Fact]
    public async Task A_deploy_with_a_hostname_of_another_org_creates_nothing()
    {
        var (a, b) = (Setup.OrgName(), Setup.OrgName());
        var ownerA = await Setup.ShopAsync(Server, a);
        var ownerB = await Setup.ShopAsync(Server, b);
        var taken = Host("taken");
        await TestServer.Send(ownerA, HttpMethod.Post, ApiPaths.Routes(a, "shop", "prod"), Setup.Route(taken)).Expect(HttpStatusCode.Created);
        var fresh = Host("fresh");

        var problem = await Deploy(ownerB, b, "prod", Manifest(Route(fresh), Route(taken))).Problem(HttpStatusCode.Conflict, "hostname_taken");

        Assert.Equal("manifest.routes[1].hostname", problem.Field);
        Assert.DoesNotContain(a, problem.Detail);
        Assert.Empty(await RoutesAsync(ownerB, b));
        Assert.Equal(0, (await UsageAsync(ownerB, b)).Routes);
        await AssertFreeAsync(fresh);
    }

    [Fact]
    public async Task A_deploy_whose_routes_exceed_the_route_quota_creates_nothing()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        await TestServer.Send(Server.Admin, HttpMethod.Put, ApiPaths.Quotas(org), new Quotas(64L << 30, 100, 2, 1)).Expect(HttpStatusCode.OK);
        var existing = Host("existing");
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route(existing)).Expect(HttpStatusCode.Created);
        var (one, two) = (Host("one"), Host("two"));

        var problem = await Deploy(owner, org, "prod", Manifest(Route(existing), Route(one), Route(two), Volume("data", "1Gi"))).Problem(HttpStatusCode.Forbidden, "quota_exceeded");

        Assert.Equal("routes", problem.Field);
        Assert.Equal((2, 1, 3), (problem.Details!["limit"].GetInt32(), problem.Details["in_use"].GetInt32(), problem.Details["requested"].GetInt32()));
        Assert.Equal([existing], (await RoutesAsync(owner, org)).Select(r => r.Hostname));
        Assert.Empty(await VolumesAsync(owner, org));
        Assert.Equal(1, (await UsageAsync(owner, org)).Routes);
        Assert.Equal(1, await ReleaseCountAsync(owner, org));
        await AssertFreeAsync(one);
        await AssertFreeAsync(two);

        // Within the quota, it goes through.
        await Deploy(owner, org, "prod", Manifest(Route(existing), Route(one))).Expect(HttpStatusCode.Created);
        Assert.Equal(2, (await UsageAsync(owner, org)).Routes);
    }

    [Fact]
    public async Task A_deploy_applies_the_route_rules_and_names_the_manifest_field()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var port = await Deploy(owner, org, "prod", Manifest(Route(Host("ok")), Route(Host("port"), listen: 9999))).Problem(HttpStatusCode.UnprocessableEntity, "port_not_allowed");
        Assert.Equal("manifest.routes[1].listen_port", port.Field);
        Assert.StartsWith("route port-", port.Detail);
        Assert.Equal("manifest.routes[0].listen_port",
            (await Deploy(owner, org, "prod", Manifest(Route(Host("denied"), listen: 25))).Problem(HttpStatusCode.UnprocessableEntity, "port_denied")).Field);
        Assert.Equal("manifest.routes[0].ipv4_required",
            (await Deploy(owner, org, "prod", Manifest(Route(Host("v4"), more: "ipv4_required = true\n"))).Problem(HttpStatusCode.UnprocessableEntity, "ipv4_addon_required")).Field);
        // PROXY v2 without the backend's acknowledgement never reaches the decision: the manifest is invalid.
        await Deploy(owner, org, "prod", Manifest(Route(Host("pp"), more: "proxy_protocol = \"v2\"\n"))).Problem(HttpStatusCode.UnprocessableEntity, "invalid_manifest");
        Assert.Empty(await RoutesAsync(owner, org));
        Assert.Equal(1, await ReleaseCountAsync(owner, org));

        // With the IPv4 add-on, ipv4_required routes are created.
        await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Ipv4(org, "shop", "prod")).Expect(HttpStatusCode.OK);
        var v4 = Host("v4");
        await Deploy(owner, org, "prod", Manifest(Route(v4, more: "ipv4_required = true\nproxy_protocol = \"v2\"\nbackend_expects_proxy_protocol = true\n"))).Expect(HttpStatusCode.Created);
        var route = Assert.Single(await RoutesAsync(owner, org));
        Assert.Equal((v4, true, "v2", true), (route.Hostname, route.Ipv4Required, route.ProxyProtocol, route.BackendExpectsProxyProtocol));
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Route(org, "shop", "prod", v4, 443)).Expect(HttpStatusCode.NoContent);
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Ipv4(org, "shop", "prod")).Expect(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task A_deploy_changes_a_routes_backend_process_and_proxy_settings_in_place()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var host = Host("change");
        await Deploy(owner, org, "prod", Manifest(Route(host))).Expect(HttpStatusCode.Created);
        var before = Assert.Single(await RoutesAsync(owner, org));

        var manifest = Manifest(Route(host, 9443, process: "api", more: "proxy_protocol = \"v2\"\nbackend_expects_proxy_protocol = true\n"), "\n[processes.api]\nmemory = \"128Mi\"\nports = [9443]\n");
        await Deploy(owner, org, "prod", manifest).Expect(HttpStatusCode.Created);

        var after = Assert.Single(await RoutesAsync(owner, org));
        Assert.Equal((host, 443, "api", 9443, "v2", true), (after.Hostname, after.ListenPort, after.Process, after.BackendPort, after.ProxyProtocol, after.BackendExpectsProxyProtocol));
        Assert.Equal(before.CreatedAt, after.CreatedAt);
        Assert.Equal(1, (await UsageAsync(owner, org)).Routes);
        var events = (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.OrgEvents(org) + "?limit=1000").Json<EventPageView>()).Events;
        var changed = Assert.Single(events, e => e.Type == EventNames.RouteChanged);
        Assert.Equal(9443, changed.Payload.GetProperty("backend_port").GetInt32());
        Assert.DoesNotContain(events, e => e.Type == EventNames.RouteRemoved);
    }

    [Fact]
    public async Task A_deploy_changes_a_routes_protocol_with_the_ports_rules()
    {
        var (a, b) = (Setup.OrgName(), Setup.OrgName());
        var ownerA = await Setup.ShopAsync(Server, a);
        var ownerB = await Setup.ShopAsync(Server, b);
        var db = Host("db");
        // Port 5432 is allowed by the test policy; this test class alone uses it.
        await Deploy(ownerA, a, "prod", Manifest(Route(db, 5432, listen: 5432))).Expect(HttpStatusCode.Created);
        await Deploy(ownerA, a, "prod", Manifest(Route(db, 5432, listen: 5432, more: "protocol = \"tcp_raw\"\n"))).Expect(HttpStatusCode.Created);
        Assert.Equal("tcp_raw", Assert.Single(await RoutesAsync(ownerA, a)).Protocol);

        // The port is now held raw: no TLS route of anyone may share it.
        var problem = await Deploy(ownerB, b, "prod", Manifest(Route(Host("tls"), 5432, listen: 5432))).Problem(HttpStatusCode.Conflict, "port_taken");
        Assert.Equal("manifest.routes[0].listen_port", problem.Field);
        Assert.Empty(await RoutesAsync(ownerB, b));

        // Back to TLS frees the port for TLS routes of others.
        await Deploy(ownerA, a, "prod", Manifest(Route(db, 5432, listen: 5432))).Expect(HttpStatusCode.Created);
        await Deploy(ownerB, b, "prod", Manifest(Route(Host("tls"), 5432, listen: 5432))).Expect(HttpStatusCode.Created);
        // And now a raw route there is refused, also as a protocol change.
        Assert.Equal("manifest.routes[0].protocol",
            (await Deploy(ownerA, a, "prod", Manifest(Route(db, 5432, listen: 5432, more: "protocol = \"tcp_raw\"\n"))).Problem(HttpStatusCode.Conflict, "port_taken")).Field);
        Assert.Equal("tls_passthrough", Assert.Single(await RoutesAsync(ownerA, a)).Protocol);
    }

    [Fact]
    public async Task A_deploy_changes_a_volumes_backup_flag_but_refuses_another_size_or_process_and_creates_nothing()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        await Deploy(owner, org, "prod", Manifest(Volume("data", "2Gi"))).Expect(HttpStatusCode.Created);

        await Deploy(owner, org, "prod", Manifest(Volume("data", "2Gi", backup: false))).Expect(HttpStatusCode.Created);
        Assert.False(Assert.Single(await VolumesAsync(owner, org)).BackupEnabled);
        Assert.Contains((await TestServer.Send(owner, HttpMethod.Get, ApiPaths.OrgEvents(org) + "?limit=1000").Json<EventPageView>()).Events, e => e.Type == EventNames.VolumeChanged);

        var fresh = Host("fresh");
        var size = await Deploy(owner, org, "prod", Manifest(Route(fresh), Volume("data", "4Gi"))).Problem(HttpStatusCode.Conflict, "volume_changed");
        Assert.Equal("manifest.volumes[0].size", size.Field);
        Assert.Contains("volume data", size.Detail);
        Assert.Contains("keep size = \"2Gi\"", size.Detail);
        Assert.Empty(await RoutesAsync(owner, org));
        Assert.Equal(new VolumeView("data", 2L << 30, "web", false, "/mnt/volumes/data"), Assert.Single(await VolumesAsync(owner, org)));
        Assert.Equal(3, await ReleaseCountAsync(owner, org));
        await AssertFreeAsync(fresh);

        var moved = await Deploy(owner, org, "prod", Manifest(Volume("data", "2Gi", backup: false).Replace("backup_enabled", "process = \"api\"\nbackup_enabled", StringComparison.Ordinal),
            "\n[processes.api]\nmemory = \"128Mi\"\n")).Problem(HttpStatusCode.Conflict, "volume_changed");
        Assert.Equal("manifest.volumes[0].process", moved.Field);
        Assert.Contains("keep process = \"web\"", moved.Detail);
    }

    [Fact]
    public async Task A_retried_deploy_with_the_same_idempotency_key_creates_its_routes_once()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        var manifest = Manifest(Route(Host("retry")), Volume("data", "1Gi"));
        var first = await Deploy(owner, org, "prod", manifest, "deploy-1").Json<ReleaseView>(HttpStatusCode.Created);
        var retry = await Deploy(owner, org, "prod", manifest, "deploy-1").Json<ReleaseView>(HttpStatusCode.Created);
        Assert.Equal(first.Number, retry.Number);
        Assert.Single(await RoutesAsync(owner, org));
        Assert.Equal(1, (await UsageAsync(owner, org)).Routes);
    }

    [Fact]
    public async Task A_deploy_too_large_for_one_atomic_change_is_refused_whole()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var hosts = Enumerable.Range(1, Decisions.MaxAggregatesPerCommand).Select(i => Host($"many{i}")).ToList();

        var problem = await Deploy(owner, org, "prod", Manifest(hosts.Select(h => Route(h)).ToArray())).Problem(HttpStatusCode.UnprocessableEntity, "too_many_changes");

        Assert.Equal("manifest.routes", problem.Field);
        Assert.Empty(await RoutesAsync(owner, org));
        // As the message says: fewer first, then the rest.
        await Deploy(owner, org, "prod", Manifest(hosts.Take(10).Select(h => Route(h)).ToArray())).Expect(HttpStatusCode.Created);
        await Deploy(owner, org, "prod", Manifest(hosts.Select(h => Route(h)).ToArray())).Expect(HttpStatusCode.Created);
        Assert.Equal(hosts.Count, (await RoutesAsync(owner, org)).Count);
    }

    [Fact]
    public void The_command_limit_is_the_event_stores_batch_limit() =>
        Assert.Equal(AppendRequest.MaxAggregatesPerBatch, Decisions.MaxAggregatesPerCommand);
}

public sealed class SqliteDeployTests(SqliteServer fixture) : DeployTests(fixture), IClassFixture<SqliteServer>;

public sealed class PostgresDeployTests(PostgresServer fixture) : DeployTests(fixture), IClassFixture<PostgresServer>;
