using System.Net;
using Trc.Core.Api;

namespace Trc.Edge.Routing;

/// <summary>Where an edge fed by the control plane listens.</summary>
public sealed record EdgeListenPlan
{
    /// <summary>The edge's public addresses; every route listens on each (and on its env's dedicated IPv4, if any). Default <c>[::]</c>.</summary>
    public IReadOnlyList<IPAddress> Addresses { get; init; } = [IPAddress.IPv6Any];

    /// <summary>
    /// Public port to local port, for an edge that may not bind the real ones (a development
    /// machine, say: 443 served on 8443). Ports not in the map are bound as they are.
    /// </summary>
    public IReadOnlyDictionary<int, int> PortMap { get; init; } = new Dictionary<int, int>();

    /// <summary>The local port a public port is served on.</summary>
    public int Local(int port) => PortMap.TryGetValue(port, out var local) ? local : port;
}

/// <summary>
/// Turns the control plane's route snapshot (<c>GET /v1/edge/routes</c>) into a route table. A route
/// the edge cannot serve (a backend it cannot parse, or a clash the control plane should have
/// refused) is left out and reported, so one bad route never keeps the others from applying.
/// </summary>
public static class ControlPlaneRoutes
{
    /// <summary>The table, and one line per route left out.</summary>
    public static (RouteTable Table, IReadOnlyList<string> Skipped) Build(EdgeRoutesView view, EdgeListenPlan plan)
    {
        ArgumentNullException.ThrowIfNull(view);
        ArgumentNullException.ThrowIfNull(plan);
        var skipped = new List<string>();
        var candidates = new List<IReadOnlyList<EdgeRoute>>();
        foreach (var route in view.Routes)
        {
            if (Convert(route, plan, out var problem) is { } routes)
            {
                candidates.Add(routes);
            }
            else
            {
                skipped.Add($"route {route.Name}: {problem}");
            }
        }
        try
        {
            return (RouteTable.Build(candidates.SelectMany(r => r)), skipped);
        }
        catch (RouteTableException)
        {
            // Find the clashes one route at a time; the first comer keeps its place.
        }
        var kept = new List<EdgeRoute>();
        foreach (var routes in candidates.Where(r => r.Count > 0))
        {
            try
            {
                RouteTable.Build(kept.Concat(routes));
                kept.AddRange(routes);
            }
            catch (RouteTableException e)
            {
                skipped.Add($"route {routes[0].Name}: clashes with a route already in the table ({e.Message})");
            }
        }
        return (RouteTable.Build(kept), skipped);
    }

    private static List<EdgeRoute>? Convert(EdgeRouteView route, EdgeListenPlan plan, out string problem)
    {
        problem = "";
        var protocol = route.Protocol switch
        {
            "tls_passthrough" => RouteProtocol.TlsPassthrough,
            "tcp_raw" => RouteProtocol.TcpRaw,
            _ => (RouteProtocol?)null,
        };
        if (protocol is null)
        {
            problem = $"unknown protocol \"{route.Protocol}\"";
            return null;
        }
        if (route.ListenPort is < 1 or > 65535)
        {
            problem = $"listen port {route.ListenPort} is out of range";
            return null;
        }
        var backends = new List<IPEndPoint>();
        foreach (var text in route.Backends)
        {
            if (!IPEndPoint.TryParse(text, out var backend) || backend.Port == 0)
            {
                problem = $"backend \"{text}\" is not an address and port";
                return null;
            }
            backends.Add(backend);
        }
        var port = plan.Local(route.ListenPort);
        var listens = plan.Addresses.Select(a => new IPEndPoint(a, port)).ToList();
        if (route.Ipv4 is not null)
        {
            if (!IPAddress.TryParse(route.Ipv4, out var v4))
            {
                problem = $"IPv4 address \"{route.Ipv4}\" does not parse";
                return null;
            }
            listens.Add(new IPEndPoint(v4, port));
        }
        var hostname = protocol == RouteProtocol.TcpRaw ? null : route.Hostname.ToLowerInvariant();
        // One name on every listener: the route's metrics and connection limit are the route's, wherever it listens.
        return listens
            .Distinct()
            .Select(listen => new EdgeRoute(
                route.Name,
                listen,
                hostname,
                protocol.Value,
                string.Equals(route.ProxyProtocol, "v2", StringComparison.Ordinal),
                backends))
            .ToList();
    }
}
