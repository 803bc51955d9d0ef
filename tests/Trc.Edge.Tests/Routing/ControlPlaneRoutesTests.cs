using System.Net;
using Trc.Core.Api;
using Trc.Edge.Routing;

namespace Trc.Edge.Tests.Routing;

/// <summary>The control plane's route snapshot turned into the edge's route table.</summary>
public sealed class ControlPlaneRoutesTests
{
    private static EdgeRouteView Route(string host, int port = 443, string protocol = "tls_passthrough", string proxy = "off", string? ipv4 = null, params string[] backends) =>
        new($"o/a/prod/{host}:{port}", "o", "a", "prod", host, port, protocol, proxy, "web", 8443, ipv4, backends);

    private static readonly EdgeListenPlan Plan = new() { Addresses = [IPAddress.IPv6Any, IPAddress.Parse("192.0.2.1")] };

    [Fact]
    public void A_route_listens_on_every_public_address_and_on_its_envs_ipv4()
    {
        var view = new EdgeRoutesView(7, [Route("Shop.Example.com", ipv4: "203.0.113.5", proxy: "v2", backends: ["[fd00::10]:8443", "10.0.0.2:8443"])]);
        var (table, skipped) = ControlPlaneRoutes.Build(view, Plan);
        Assert.Empty(skipped);
        Assert.Equal(
            ["192.0.2.1:443", "203.0.113.5:443", "[::]:443"],
            table.Routes.Select(r => r.Listen.ToString()).Order(StringComparer.Ordinal).ToArray());
        Assert.All(table.Routes, r =>
        {
            Assert.Equal("o/a/prod/Shop.Example.com:443", r.Name);
            Assert.Equal("shop.example.com", r.Hostname);
            Assert.True(r.ProxyV2);
            Assert.Equal(["[fd00::10]:8443", "10.0.0.2:8443"], r.Backends.Select(b => b.ToString()));
        });
    }

    [Fact]
    public void A_tcp_raw_route_has_no_hostname_and_the_port_map_moves_its_port()
    {
        var plan = Plan with { PortMap = new Dictionary<int, int> { [5432] = 15432 } };
        var (table, _) = ControlPlaneRoutes.Build(new EdgeRoutesView(1, [Route("db.example.com", 5432, "tcp_raw")]), plan);
        Assert.All(table.Routes, r =>
        {
            Assert.Null(r.Hostname);
            Assert.Equal(RouteProtocol.TcpRaw, r.Protocol);
            Assert.Equal(15432, r.Listen.Port);
            Assert.Empty(r.Backends);
        });
        Assert.Equal(2, table.Routes.Count);
    }

    [Fact]
    public void A_route_the_edge_cannot_serve_is_left_out_and_said_while_the_others_apply()
    {
        var view = new EdgeRoutesView(3,
        [
            Route("a.example.com"),
            Route("b.example.com", backends: ["db.internal:5432"]),
            Route("c.example.com", protocol: "quic"),
            Route("d.example.com", ipv4: "not-an-address"),
            // A clash the control plane refuses; if one ever got through, the first comer keeps the port.
            Route("raw.example.com", 5432, "tcp_raw"),
            Route("raw2.example.com", 5432, "tcp_raw"),
        ]);
        var (table, skipped) = ControlPlaneRoutes.Build(view, Plan);
        Assert.Equal(["a.example.com", "raw.example.com"], table.Routes.Select(r => r.Name.Split('/')[3].Split(':')[0]).Distinct().Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(4, skipped.Count);
        Assert.Contains(skipped, s => s.Contains("backend \"db.internal:5432\" is not an address and port", StringComparison.Ordinal));
        Assert.Contains(skipped, s => s.Contains("unknown protocol \"quic\"", StringComparison.Ordinal));
        Assert.Contains(skipped, s => s.Contains("\"not-an-address\" does not parse", StringComparison.Ordinal));
        Assert.Contains(skipped, s => s.StartsWith("route o/a/prod/raw2.example.com:5432: clashes", StringComparison.Ordinal));
    }

    [Fact]
    public void An_empty_snapshot_is_an_empty_table()
    {
        var (table, skipped) = ControlPlaneRoutes.Build(new EdgeRoutesView(0, []), Plan);
        Assert.Empty(table.Routes);
        Assert.Empty(skipped);
    }
}
