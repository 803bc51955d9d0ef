using System.Net;

namespace Trc.Edge.Routing;

/// <summary>A route set that cannot be served, naming the route and the reason.</summary>
public sealed class RouteTableException(string message) : Exception(message);

/// <summary>
/// An immutable set of routes, indexed by listener. A new table replaces the old one at once for
/// new connections; connections already routed keep the route they got.
/// </summary>
/// <remarks>
/// Precedence for a TLS connection on one listener: the route whose hostname equals the SNI name;
/// else the wildcard route <c>*.parent</c> whose parent equals the name without its first label
/// (one label only: <c>*.example.com</c> matches <c>a.example.com</c>, not <c>example.com</c> or
/// <c>a.b.example.com</c>); else none. Without SNI, the listener's only route, if it has exactly one.
/// </remarks>
public sealed class RouteTable
{
    private readonly Dictionary<IPEndPoint, ListenerRoutes> _listeners;

    private RouteTable(Dictionary<IPEndPoint, ListenerRoutes> listeners, IReadOnlyList<EdgeRoute> routes)
    {
        _listeners = listeners;
        Routes = routes;
    }

    /// <summary>A table without routes.</summary>
    public static RouteTable Empty { get; } = new([], []);

    /// <summary>Every route, in the order given.</summary>
    public IReadOnlyList<EdgeRoute> Routes { get; }

    /// <summary>The listen endpoints the routes need.</summary>
    public IReadOnlyCollection<IPEndPoint> Listeners => _listeners.Keys;

    /// <summary>The routes of one listener, or null when no route uses it.</summary>
    public ListenerRoutes? ForListener(IPEndPoint listen) => _listeners.GetValueOrDefault(listen);

    /// <summary>
    /// Builds a table; refuses two routes for one (listener, hostname) and raw routes that share a listener.
    /// A route may have no backend yet (an env with no running instance): its connections are closed.
    /// </summary>
    public static RouteTable Build(IEnumerable<EdgeRoute> routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        var list = routes.ToList();
        var byListener = new Dictionary<IPEndPoint, List<EdgeRoute>>();
        foreach (var route in list)
        {
            if (route.Protocol == RouteProtocol.TlsPassthrough && !HostnameRules.IsValidPattern(route.Hostname))
            {
                throw new RouteTableException($"route {route.Name}: a tls_passthrough route needs a hostname like shop.example.com or *.example.com");
            }
            if (route.Protocol == RouteProtocol.TcpRaw && route.Hostname is not null)
            {
                throw new RouteTableException($"route {route.Name}: a tcp_raw route is chosen by address and port alone and takes no hostname");
            }
            if (!byListener.TryGetValue(route.Listen, out var same))
            {
                byListener[route.Listen] = same = [];
            }
            same.Add(route);
        }
        var listeners = new Dictionary<IPEndPoint, ListenerRoutes>();
        foreach (var (listen, same) in byListener)
        {
            listeners[listen] = ListenerRoutes.Create(listen, same);
        }
        return new RouteTable(listeners, list);
    }
}

/// <summary>The routes of one listener.</summary>
public sealed class ListenerRoutes
{
    // Span lookups: matching a name (or its parent, for wildcards) allocates nothing.
    private readonly Dictionary<string, EdgeRoute>.AlternateLookup<ReadOnlySpan<char>> _exactLookup;
    private readonly Dictionary<string, EdgeRoute>.AlternateLookup<ReadOnlySpan<char>> _wildcardLookup;

    private ListenerRoutes(EdgeRoute? raw, EdgeRoute? only, Dictionary<string, EdgeRoute> exact, Dictionary<string, EdgeRoute> wildcard)
    {
        Raw = raw;
        Only = only;
        _exactLookup = exact.GetAlternateLookup<ReadOnlySpan<char>>();
        _wildcardLookup = wildcard.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>The listener's raw TCP route; when set, it is the listener's only route.</summary>
    public EdgeRoute? Raw { get; }

    /// <summary>The listener's route when it has exactly one (used for hellos without SNI).</summary>
    public EdgeRoute? Only { get; }

    /// <summary>The route for an SNI name (lower case, as the hello reader returns it), or null.</summary>
    public EdgeRoute? Match(string? serverName)
    {
        if (serverName is null)
        {
            return Only;
        }
        if (_exactLookup.TryGetValue(serverName.AsSpan(), out var exact))
        {
            return exact;
        }
        var dot = serverName.IndexOf('.', StringComparison.Ordinal);
        return dot > 0 && _wildcardLookup.TryGetValue(serverName.AsSpan(dot + 1), out var wildcard) ? wildcard : null;
    }

    internal static ListenerRoutes Create(IPEndPoint listen, List<EdgeRoute> routes)
    {
        if (routes.FirstOrDefault(r => r.Protocol == RouteProtocol.TcpRaw) is { } raw)
        {
            if (routes.Count > 1)
            {
                throw new RouteTableException($"route {raw.Name}: a tcp_raw route needs {listen} alone, but {routes.Count - 1} other route(s) use it");
            }
            return new ListenerRoutes(raw, raw, new(StringComparer.Ordinal), new(StringComparer.Ordinal));
        }
        var exact = new Dictionary<string, EdgeRoute>(StringComparer.Ordinal);
        var wildcard = new Dictionary<string, EdgeRoute>(StringComparer.Ordinal);
        foreach (var route in routes)
        {
            var host = route.Hostname!;
            var (map, key) = host.StartsWith("*.", StringComparison.Ordinal) ? (wildcard, host[2..]) : (exact, host);
            if (!map.TryAdd(key, route))
            {
                throw new RouteTableException($"routes {map[key].Name} and {route.Name} both claim {host} on {listen}");
            }
        }
        return new ListenerRoutes(null, routes.Count == 1 ? routes[0] : null, exact, wildcard);
    }
}

/// <summary>What a route hostname may be.</summary>
public static class HostnameRules
{
    /// <summary>
    /// A lower-case DNS name of letters, digits, '-' and '_' in labels of 1-63, at most 253 long,
    /// with at least two labels; or <c>*.</c> followed by such a name.
    /// </summary>
    public static bool IsValidPattern(string? pattern)
    {
        if (pattern is null)
        {
            return false;
        }
        var name = pattern.StartsWith("*.", StringComparison.Ordinal) ? pattern.AsSpan(2) : pattern.AsSpan();
        if (name.Length is 0 or > 253 || name.IndexOf('.') < 0)
        {
            return false;
        }
        var label = 0;
        foreach (var c in name)
        {
            if (c == '.')
            {
                if (label == 0)
                {
                    return false;
                }
                label = 0;
                continue;
            }
            if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_') || ++label > 63)
            {
                return false;
            }
        }
        return label > 0;
    }
}
