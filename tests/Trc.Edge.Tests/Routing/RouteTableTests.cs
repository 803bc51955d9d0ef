using System.Net;
using Trc.Edge.Routing;

namespace Trc.Edge.Tests.Routing;

public sealed class RouteTableTests
{
    private static readonly IPEndPoint Https = new(IPAddress.IPv6Any, 443);
    private static readonly IPEndPoint Backend = new(IPAddress.Loopback, 8443);

    private static EdgeRoute Tls(string host, IPEndPoint? listen = null) =>
        new(host, listen ?? Https, host, RouteProtocol.TlsPassthrough, false, [Backend]);

    [Fact]
    public void An_exact_name_wins_over_a_wildcard_and_a_wildcard_covers_one_label_only()
    {
        var table = RouteTable.Build([Tls("*.example.com"), Tls("api.example.com")]);
        var routes = table.ForListener(Https)!;

        Assert.Equal("api.example.com", routes.Match("api.example.com")!.Name);
        Assert.Equal("*.example.com", routes.Match("www.example.com")!.Name);
        Assert.Null(routes.Match("example.com"));
        Assert.Null(routes.Match("a.b.example.com"));
        Assert.Null(routes.Match("api.example.org"));
    }

    [Fact]
    public void Without_SNI_a_listener_routes_only_when_it_has_exactly_one_route()
    {
        var one = RouteTable.Build([Tls("a.example.com")]);
        Assert.Equal("a.example.com", one.ForListener(Https)!.Match(null)!.Name);

        var two = RouteTable.Build([Tls("a.example.com"), Tls("b.example.com")]);
        Assert.Null(two.ForListener(Https)!.Match(null));
    }

    [Fact]
    public void Routes_are_per_listener()
    {
        var other = new IPEndPoint(IPAddress.IPv6Any, 8443);
        var table = RouteTable.Build([Tls("a.example.com"), Tls("a.example.com", other) with { Name = "other" }]);
        Assert.Equal("other", table.ForListener(other)!.Match("a.example.com")!.Name);
        Assert.Null(table.ForListener(new IPEndPoint(IPAddress.IPv6Any, 9999)));
        Assert.Equal(2, table.Listeners.Count);
    }

    [Fact]
    public void Two_routes_for_one_name_on_one_listener_are_refused_naming_both()
    {
        var e = Assert.Throws<RouteTableException>(() => RouteTable.Build([Tls("a.example.com") with { Name = "first" }, Tls("a.example.com") with { Name = "second" }]));
        Assert.Contains("first and second both claim a.example.com", e.Message);
    }

    [Fact]
    public void A_raw_route_needs_its_listener_alone()
    {
        var raw = new EdgeRoute("db", new IPEndPoint(IPAddress.IPv6Any, 5432), null, RouteProtocol.TcpRaw, false, [Backend]);
        var table = RouteTable.Build([raw]);
        Assert.Same(raw, table.ForListener(raw.Listen)!.Raw);

        var e = Assert.Throws<RouteTableException>(() => RouteTable.Build([raw, Tls("a.example.com", raw.Listen)]));
        Assert.Contains("route db: a tcp_raw route needs", e.Message);
    }

    [Theory]
    [InlineData("Upper.example.com")]
    [InlineData("example")]
    [InlineData("a..example.com")]
    [InlineData("*.*.example.com")]
    [InlineData("a.*.example.com")]
    [InlineData("bad\u0000.example.com")]
    [InlineData("")]
    public void Bad_hostnames_are_refused(string host) =>
        Assert.Throws<RouteTableException>(() => RouteTable.Build([Tls(host)]));

    [Fact]
    public void A_route_without_backends_yet_is_in_the_table()
    {
        // An env whose process has no running instance: the route is known (its listener opens), its connections find no backend.
        var route = Tls("a.example.com") with { Backends = [] };
        var table = RouteTable.Build([route]);
        Assert.Same(route, table.ForListener(route.Listen)!.Match("a.example.com"));
    }
}
