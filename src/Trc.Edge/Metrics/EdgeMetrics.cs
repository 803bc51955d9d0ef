using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Trc.Edge.Metrics;

/// <summary>Why the edge closed a connection before or while forwarding it (a metric label).</summary>
public enum CloseCause
{
    /// <summary>The ClientHello did not arrive whole within the hello timeout.</summary>
    HelloTimeout,

    /// <summary>The first bytes were not a ClientHello the edge accepts.</summary>
    HelloInvalid,

    /// <summary>The client closed before its hello was complete.</summary>
    HelloIncomplete,

    /// <summary>No route for the SNI name (or no SNI and more than one route).</summary>
    NoRoute,

    /// <summary>The edge's connection limit was reached.</summary>
    EdgeLimit,

    /// <summary>The route's connection limit was reached.</summary>
    RouteLimit,

    /// <summary>No backend accepted a connection.</summary>
    BackendUnavailable,

    /// <summary>No byte either way for the idle timeout.</summary>
    IdleTimeout,

    /// <summary>The backend was removed and the drain period ended.</summary>
    Drained,

    /// <summary>The client reset or failed the connection.</summary>
    ClientError,

    /// <summary>The backend reset or failed the connection.</summary>
    BackendError,

    /// <summary>The edge is stopping.</summary>
    Shutdown,
}

/// <summary>
/// The edge's counters, written in the Prometheus text format. Per-route counters are held by
/// <see cref="RouteMetrics"/> objects that the data path keeps, so counting is an interlocked add.
/// </summary>
public sealed class EdgeMetrics
{
    private static readonly string[] CauseNames = Enum.GetValues<CloseCause>().Select(Snake).ToArray();

    private readonly long[] _closed = new long[CauseNames.Length];
    private readonly ConcurrentDictionary<string, RouteMetrics> _routes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long[]> _backendFailures = new(StringComparer.Ordinal);
    private long _accepted;
    private long _active;

    /// <summary>Connections accepted so far.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Connections open now.</summary>
    public long Active => Interlocked.Read(ref _active);

    /// <summary>Connections closed for <paramref name="cause"/> so far.</summary>
    public long Closed(CloseCause cause) => Interlocked.Read(ref _closed[(int)cause]);

    internal void OnAccepted()
    {
        Interlocked.Increment(ref _accepted);
        Interlocked.Increment(ref _active);
    }

    internal void OnClosed() => Interlocked.Decrement(ref _active);

    internal void OnCause(CloseCause cause, RouteMetrics? route)
    {
        Interlocked.Increment(ref _closed[(int)cause]);
        route?.OnCause(cause);
    }

    internal void OnBackendConnectFailed(string backend) =>
        Interlocked.Increment(ref _backendFailures.GetOrAdd(backend, _ => new long[1])[0]);

    /// <summary>The counters of a route, created on first use and kept across route table changes.</summary>
    public RouteMetrics Route(string name) => _routes.GetOrAdd(name, n => new RouteMetrics(n));

    /// <summary>Writes every metric in the Prometheus text exposition format (version 0.0.4).</summary>
    public string Render()
    {
        var sb = new StringBuilder(1024);
        Header(sb, "trc_edge_connections_accepted_total", "counter", "Connections accepted by the edge's listeners.");
        Line(sb, "trc_edge_connections_accepted_total", null, Accepted);
        Header(sb, "trc_edge_connections_active", "gauge", "Connections open now.");
        Line(sb, "trc_edge_connections_active", null, Active);
        Header(sb, "trc_edge_connections_closed_total", "counter", "Connections closed by the edge, by cause (normal ends are not counted).");
        for (var i = 0; i < CauseNames.Length; i++)
        {
            Line(sb, "trc_edge_connections_closed_total", $"cause=\"{CauseNames[i]}\"", Interlocked.Read(ref _closed[i]));
        }
        var routes = _routes.Values.OrderBy(r => r.Name, StringComparer.Ordinal).ToList();
        Header(sb, "trc_edge_route_connections_total", "counter", "Connections routed, by route.");
        foreach (var r in routes)
        {
            Line(sb, "trc_edge_route_connections_total", $"route=\"{Escape(r.Name)}\"", r.Connections);
        }
        Header(sb, "trc_edge_route_connections_active", "gauge", "Connections open now, by route.");
        foreach (var r in routes)
        {
            Line(sb, "trc_edge_route_connections_active", $"route=\"{Escape(r.Name)}\"", r.Active);
        }
        Header(sb, "trc_edge_route_bytes_total", "counter", "Bytes forwarded, by route and direction.");
        foreach (var r in routes)
        {
            Line(sb, "trc_edge_route_bytes_total", $"route=\"{Escape(r.Name)}\",direction=\"client_to_backend\"", r.BytesFromClient);
            Line(sb, "trc_edge_route_bytes_total", $"route=\"{Escape(r.Name)}\",direction=\"backend_to_client\"", r.BytesToClient);
        }
        Header(sb, "trc_edge_route_errors_total", "counter", "Connections of a route closed by the edge, by cause.");
        foreach (var r in routes)
        {
            for (var i = 0; i < CauseNames.Length; i++)
            {
                if (r.CauseCount((CloseCause)i) is var n and > 0)
                {
                    Line(sb, "trc_edge_route_errors_total", $"route=\"{Escape(r.Name)}\",cause=\"{CauseNames[i]}\"", n);
                }
            }
        }
        Header(sb, "trc_edge_backend_connect_failures_total", "counter", "Failed connects, by backend.");
        foreach (var (backend, count) in _backendFailures.OrderBy(b => b.Key, StringComparer.Ordinal))
        {
            Line(sb, "trc_edge_backend_connect_failures_total", $"backend=\"{Escape(backend)}\"", Interlocked.Read(ref count[0]));
        }
        return sb.ToString();
    }

    internal static string Snake(CloseCause cause)
    {
        var name = cause.ToString();
        var sb = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                sb.Append('_');
            }
            sb.Append(char.ToLowerInvariant(name[i]));
        }
        return sb.ToString();
    }

    private static void Header(StringBuilder sb, string name, string type, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
          .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Line(StringBuilder sb, string name, string? labels, long value)
    {
        sb.Append(name);
        if (labels is not null)
        {
            sb.Append('{').Append(labels).Append('}');
        }
        sb.Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    /// <summary>Escapes a label value: backslash, double quote and line feed.</summary>
    internal static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}

/// <summary>The counters of one route.</summary>
public sealed class RouteMetrics
{
    private readonly long[] _causes = new long[Enum.GetValues<CloseCause>().Length];
    private long _connections;
    private long _active;
    private long _fromClient;
    private long _toClient;

    internal RouteMetrics(string name) => Name = name;

    /// <summary>The route's name.</summary>
    public string Name { get; }

    /// <summary>Connections routed.</summary>
    public long Connections => Interlocked.Read(ref _connections);

    /// <summary>Connections open now.</summary>
    public long Active => Interlocked.Read(ref _active);

    /// <summary>Bytes from clients to backends.</summary>
    public long BytesFromClient => Interlocked.Read(ref _fromClient);

    /// <summary>Bytes from backends to clients.</summary>
    public long BytesToClient => Interlocked.Read(ref _toClient);

    /// <summary>Connections of this route closed for <paramref name="cause"/>.</summary>
    public long CauseCount(CloseCause cause) => Interlocked.Read(ref _causes[(int)cause]);

    internal long OpenOne() { Interlocked.Increment(ref _connections); return Interlocked.Increment(ref _active); }

    internal void CloseOne() => Interlocked.Decrement(ref _active);

    internal void AddFromClient(long n) => Interlocked.Add(ref _fromClient, n);

    internal void AddToClient(long n) => Interlocked.Add(ref _toClient, n);

    internal void OnCause(CloseCause cause) => Interlocked.Increment(ref _causes[(int)cause]);
}
