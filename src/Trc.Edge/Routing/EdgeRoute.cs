using System.Net;

namespace Trc.Edge.Routing;

/// <summary>How a route picks its connections.</summary>
public enum RouteProtocol
{
    /// <summary>By the SNI name of the TLS ClientHello; TLS is never terminated.</summary>
    TlsPassthrough,

    /// <summary>By listen address and port alone; the route has the listener to itself.</summary>
    TcpRaw,
}

/// <summary>
/// One route of the edge: connections reaching <see cref="Listen"/> (for TLS, with a matching SNI
/// name) are forwarded to one of <see cref="Backends"/>.
/// </summary>
/// <param name="Name">A stable name for logs and metric labels, like <c>shop.example.com@[::]:443</c>.</param>
/// <param name="Listen">The edge address and port; an unspecified address (<c>[::]</c>, <c>0.0.0.0</c>) listens on all.</param>
/// <param name="Hostname">The SNI name (lower case), or <c>*.example.com</c> for one label; null for <see cref="RouteProtocol.TcpRaw"/>.</param>
/// <param name="Protocol">TLS passthrough or raw TCP.</param>
/// <param name="ProxyV2">Whether each forwarded connection starts with a PROXY v2 header.</param>
/// <param name="Backends">Where connections go; tried in rotation, skipping ones that just failed.</param>
/// <param name="MaxConnections">The most live connections of this route; 0 for no limit but the edge's.</param>
public sealed record EdgeRoute(
    string Name,
    IPEndPoint Listen,
    string? Hostname,
    RouteProtocol Protocol,
    bool ProxyV2,
    IReadOnlyList<IPEndPoint> Backends,
    int MaxConnections = 0);
