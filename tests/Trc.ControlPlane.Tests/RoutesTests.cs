using System.Net;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Tests;

public abstract class RoutesTests(ServerFixture fixture)
{
    private TestServer Server => fixture.Server;

    private static string Host(string label) => $"{label}-{Guid.NewGuid().ToString("N")[..8]}.example.com";

    private static Task<ProblemView> Fails(HttpClient client, string org, string env, CreateRouteRequest route, HttpStatusCode status, string code) =>
        TestServer.Send(client, HttpMethod.Post, ApiPaths.Routes(org, "shop", env), route).Problem(status, code);

    [Fact]
    public async Task A_route_is_created_with_defaults_and_counted_against_the_quota()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var host = Host("shop");
        var route = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), new CreateRouteRequest(host, 8443)).Json<RouteView>(HttpStatusCode.Created);
        Assert.Equal((host, 443, "tls_passthrough", "web", 8443, "off", false, false), (route.Hostname, route.ListenPort, route.Protocol, route.Process, route.BackendPort, route.ProxyProtocol, route.BackendExpectsProxyProtocol, route.Ipv4Required));
        Assert.Equal((org, "shop", "prod"), (route.Org, route.App, route.Env));
        Assert.Equal(1, (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Quotas(org)).Json<QuotaView>()).Usage.Routes);
        Assert.Single((await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Routes(org, "shop", "prod")).Json<ListView<RouteView>>()).Items);
        await Fails(owner, org, "prod", new CreateRouteRequest(host, 8443), HttpStatusCode.Conflict, "route_exists");
    }

    [Fact]
    public async Task A_hostname_is_bound_to_one_env_and_moving_it_is_explicit()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, true, "prod", "staging");
        var host = Host("move");
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "staging"), Setup.Route(host)).Expect(HttpStatusCode.Created);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "staging"), Setup.Route(host, 8443)).Expect(HttpStatusCode.Created);
        var bound = await Fails(owner, org, "prod", Setup.Route(host), HttpStatusCode.Conflict, "hostname_bound");
        Assert.Contains($"{org}/shop/staging", bound.Detail);

        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route(host) with { Move = true }).Expect(HttpStatusCode.Created);
        Assert.Empty((await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Routes(org, "shop", "staging")).Json<ListView<RouteView>>()).Items);
        Assert.Single((await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Routes(org, "shop", "prod")).Json<ListView<RouteView>>()).Items);
        Assert.Equal(1, (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Quotas(org)).Json<QuotaView>()).Usage.Routes);

        // The move is in the audit log, by the token that did it.
        var events = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.OrgEvents(org) + "?limit=1000").Json<EventPageView>();
        Assert.Contains(events.Events, e => e.Type == EventNames.RouteRemoved);
    }

    [Fact]
    public async Task Another_org_cannot_take_a_hostname_even_with_move()
    {
        var (a, b) = (Setup.OrgName(), Setup.OrgName());
        var ownerA = await Setup.ShopAsync(Server, a);
        var ownerB = await Setup.ShopAsync(Server, b);
        var host = Host("taken");
        await TestServer.Send(ownerA, HttpMethod.Post, ApiPaths.Routes(a, "shop", "prod"), Setup.Route(host)).Expect(HttpStatusCode.Created);
        var problem = await Fails(ownerB, b, "prod", Setup.Route(host) with { Move = true }, HttpStatusCode.Conflict, "hostname_taken");
        Assert.DoesNotContain(a, problem.Detail);
        // Once A removes its route, the hostname is free.
        await TestServer.Send(ownerA, HttpMethod.Delete, ApiPaths.Route(a, "shop", "prod", host, 443)).Expect(HttpStatusCode.NoContent);
        await TestServer.Send(ownerB, HttpMethod.Post, ApiPaths.Routes(b, "shop", "prod"), Setup.Route(host)).Expect(HttpStatusCode.Created);
        Assert.Equal(0, (await TestServer.Send(ownerA, HttpMethod.Get, ApiPaths.Quotas(a)).Json<QuotaView>()).Usage.Routes);
    }

    [Theory]
    [InlineData(25, "port_denied")]
    [InlineData(9999, "port_not_allowed")]
    [InlineData(0, "invalid_port")]
    public async Task The_port_policy_is_enforced(int port, string code)
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var problem = await Fails(owner, org, "prod", Setup.Route(Host("port"), port), HttpStatusCode.UnprocessableEntity, code);
        Assert.Equal("listen_port", problem.Field);
    }

    [Fact]
    public async Task Proxy_protocol_v2_needs_the_backends_acknowledgement()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var host = Host("pp");
        var problem = await Fails(owner, org, "prod", Setup.Route(host) with { ProxyProtocol = "v2" }, HttpStatusCode.UnprocessableEntity, "proxy_protocol_not_acknowledged");
        Assert.Equal("backend_expects_proxy_protocol", problem.Field);
        var ok = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route(host) with { ProxyProtocol = "v2", BackendExpectsProxyProtocol = true }).Json<RouteView>(HttpStatusCode.Created);
        Assert.Equal("v2", ok.ProxyProtocol);
    }

    [Fact]
    public async Task A_route_must_reach_a_port_the_deployed_release_exposes()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        Assert.Equal("backend_port", (await Fails(owner, org, "prod", Setup.Route(Host("x"), backend: 9000), HttpStatusCode.UnprocessableEntity, "port_not_exposed")).Field);
        Assert.Equal("process", (await Fails(owner, org, "prod", Setup.Route(Host("x")) with { Process = "worker" }, HttpStatusCode.UnprocessableEntity, "unknown_process")).Field);
        // And a release that no longer serves an existing route is refused.
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route(Host("served"))).Expect(HttpStatusCode.Created);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest.Replace("ports = [8443, 5432]", "ports = [5432]", StringComparison.Ordinal)))
            .Problem(HttpStatusCode.Conflict, "route_unserved");
    }

    [Fact]
    public async Task A_raw_tcp_port_belongs_to_one_route_and_never_mixes_with_sni_routes()
    {
        var (a, b) = (Setup.OrgName(), Setup.OrgName());
        var ownerA = await Setup.ShopAsync(Server, a);
        var ownerB = await Setup.ShopAsync(Server, b);
        // Port 2222 is allowed by the test policy and starts unused.
        await TestServer.Send(ownerA, HttpMethod.Post, ApiPaths.Routes(a, "shop", "prod"), Setup.Route(Host("db"), 2222, "tcp_raw", 5432)).Expect(HttpStatusCode.Created);
        Assert.Equal("listen_port", (await Fails(ownerB, b, "prod", Setup.Route(Host("db2"), 2222, "tcp_raw", 5432), HttpStatusCode.Conflict, "port_taken")).Field);
        await Fails(ownerB, b, "prod", Setup.Route(Host("tls"), 2222), HttpStatusCode.Conflict, "port_taken");
        await Fails(ownerA, a, "prod", Setup.Route(Host("db3"), 2222, "tcp_raw", 5432), HttpStatusCode.Conflict, "port_taken");
        // 443 carries SNI routes of many orgs, so it can never be raw.
        await TestServer.Send(ownerB, HttpMethod.Post, ApiPaths.Routes(b, "shop", "prod"), Setup.Route(Host("web"))).Expect(HttpStatusCode.Created);
        await Fails(ownerA, a, "prod", Setup.Route(Host("raw443"), 443, "tcp_raw", 5432), HttpStatusCode.Conflict, "port_taken");
    }

    [Fact]
    public async Task The_ipv4_add_on_gives_one_address_per_env_from_the_pool_and_takes_it_back()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, true, "prod", "staging");
        var host = Host("v4");
        Assert.Equal("ipv4_required", (await Fails(owner, org, "prod", Setup.Route(host) with { Ipv4Required = true }, HttpStatusCode.UnprocessableEntity, "ipv4_addon_required")).Field);

        var prod = await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Ipv4(org, "shop", "prod")).Json<Ipv4View>();
        Assert.StartsWith("203.0.113.", prod.Address);
        Assert.Equal([80, 443], prod.Ports);
        await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Ipv4(org, "shop", "prod")).Problem(HttpStatusCode.Conflict, "ipv4_enabled");
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route(host) with { Ipv4Required = true }).Expect(HttpStatusCode.Created);
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Ipv4(org, "shop", "prod")).Problem(HttpStatusCode.Conflict, "ipv4_in_use");

        // The quota (2 by default) and the pool (3 addresses, shared with the other tests) both bound it.
        await TestServer.Send(Server.Admin, HttpMethod.Put, ApiPaths.Quotas(org), new Quotas(64L << 30, 100, 50, 1)).Expect(HttpStatusCode.OK);
        var quota = await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Ipv4(org, "shop", "staging")).Problem(HttpStatusCode.Forbidden, "quota_exceeded");
        Assert.Equal("ipv4_addresses", quota.Field);

        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Route(org, "shop", "prod", host, 443)).Expect(HttpStatusCode.NoContent);
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Ipv4(org, "shop", "prod")).Expect(HttpStatusCode.NoContent);
        await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Ipv4(org, "shop", "prod")).Problem(HttpStatusCode.NotFound);
        var staging = await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Ipv4(org, "shop", "staging")).Json<Ipv4View>();
        Assert.StartsWith("203.0.113.", staging.Address);
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Ipv4(org, "shop", "staging")).Expect(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task Edges_read_every_route_with_where_it_listens_as_of_the_event_they_saw()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var host = Host("edge");
        await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Ipv4(org, "shop", "prod")).Json<Ipv4View>();
        try
        {
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route(host) with { ProxyProtocol = "v2", BackendExpectsProxyProtocol = true, Ipv4Required = true }).Expect(HttpStatusCode.Created);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route(host, 8443, backend: 5432)).Expect(HttpStatusCode.Created);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route("db." + host, 5432, "tcp_raw", 5432)).Expect(HttpStatusCode.Created);
        var last = (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.OrgEvents(org) + "?limit=1000").Json<EventPageView>()).Events[^1].Id;

        // Routes are created read-your-writes, so the catalog has them; after= makes the edge's own read wait for them.
        var view = await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.EdgeRoutes + $"?after={last}").Json<EdgeRoutesView>();
        Assert.True(view.Position >= last, $"position {view.Position} is before event {last}");
        var mine = view.Routes.Where(r => r.Org == org).ToDictionary(r => (r.Hostname, r.ListenPort));
        Assert.Equal(3, mine.Count);
        var tls = mine[(host, 443)];
        Assert.Equal(($"{org}/shop/prod/{host}:443", "tls_passthrough", "v2", "web", 8443), (tls.Name, tls.Protocol, tls.ProxyProtocol, tls.Process, tls.BackendPort));
        Assert.StartsWith("203.0.113.", tls.Ipv4);
        Assert.Null(mine[(host, 8443)].Ipv4); // not ipv4_required: IPv6 only
        Assert.Equal(5432, mine[(host, 8443)].BackendPort);
        Assert.Equal(("tcp_raw", "off"), (mine[("db." + host, 5432)].Protocol, mine[("db." + host, 5432)].ProxyProtocol));
        // No instance is placed yet (that arrives with the scheduler): no backend.
        Assert.All(mine.Values, r => Assert.Empty(r.Backends));

        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Route(org, "shop", "prod", host, 8443)).Expect(HttpStatusCode.NoContent);
        view = await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.EdgeRoutes).Json<EdgeRoutesView>();
        mine = view.Routes.Where(r => r.Org == org).ToDictionary(r => (r.Hostname, r.ListenPort));
        Assert.Equal(2, mine.Count);
        Assert.False(mine.ContainsKey((host, 8443)));
        }
        finally
        {
            // The pool is shared with the other tests of this server.
            (await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Route(org, "shop", "prod", host, 443)).Response).Dispose();
            (await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Ipv4(org, "shop", "prod")).Response).Dispose();
        }
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("abc")]
    [InlineData("99999999999999999999999")]
    public async Task A_bad_after_on_the_edge_routes_is_refused_by_name(string after)
    {
        var problem = await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.EdgeRoutes + "?after=" + Uri.EscapeDataString(after)).Problem(HttpStatusCode.BadRequest, "invalid_query");
        Assert.Equal("after", problem.Field);
    }

    [Fact]
    public async Task The_route_quota_is_checked_with_its_limit_and_request()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        await TestServer.Send(Server.Admin, HttpMethod.Put, ApiPaths.Quotas(org), new Quotas(64L << 30, 100, 1, 1)).Expect(HttpStatusCode.OK);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route(Host("one"))).Expect(HttpStatusCode.Created);
        var problem = await Fails(owner, org, "prod", Setup.Route(Host("two")), HttpStatusCode.Forbidden, "quota_exceeded");
        Assert.Equal("routes", problem.Field);
        Assert.Equal((1, 1, 2), (problem.Details!["limit"].GetInt32(), problem.Details["in_use"].GetInt32(), problem.Details["requested"].GetInt32()));
    }
}

public sealed class SqliteRoutesTests(SqliteServer fixture) : RoutesTests(fixture), IClassFixture<SqliteServer>;

public sealed class PostgresRoutesTests(PostgresServer fixture) : RoutesTests(fixture), IClassFixture<PostgresServer>;
