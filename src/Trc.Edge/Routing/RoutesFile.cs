using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Trc.Core.Manifest;
using Trc.Core.Toml;
using Trc.Edge.Proxy;

namespace Trc.Edge.Routing;

/// <summary>A routes file that cannot be used, naming file, line, column and key.</summary>
public sealed class RoutesFileException(string message) : Exception(message);

/// <summary>
/// The routes file of <c>trc edge --routes FILE</c>: the edge without a control plane, for
/// standalone use and tests. See docs/edge.md for the format.
/// </summary>
/// <example>
/// <code>
/// [settings]
/// hello_timeout = "10s"
///
/// [[routes]]
/// listen = ["[::]:443", "0.0.0.0:443"]
/// hostname = "shop.example.com"
/// backends = ["[fd00:1::10]:8443"]
/// proxy_protocol = "v2"
/// </code>
/// </example>
public static class RoutesFile
{
    /// <summary>The largest routes file read.</summary>
    public const int MaxFileBytes = 4 << 20;

    private static readonly string[] TopKeys = ["settings", "routes"];

    private static readonly string[] SettingKeys = ["hello_timeout", "connect_timeout", "idle_timeout", "drain_timeout", "max_connections"];

    private static readonly string[] RouteKeys = ["name", "listen", "hostname", "protocol", "proxy_protocol", "backends", "max_connections"];

    /// <summary>Reads and checks a routes file.</summary>
    public static (EdgeSettings Settings, RouteTable Table) Load(string path)
    {
        byte[] bytes;
        try
        {
            using var stream = File.OpenRead(path);
            if (stream.Length > MaxFileBytes)
            {
                throw new RoutesFileException($"{path}: the file is {stream.Length} bytes; the most is {MaxFileBytes}");
            }
            bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RoutesFileException($"{path}: cannot read the routes file: {e.Message}");
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses a routes file's bytes; <paramref name="file"/> names it in messages.</summary>
    public static (EdgeSettings Settings, RouteTable Table) Parse(ReadOnlySpan<byte> bytes, string file)
    {
        var parsed = Toml.Parse(bytes.ToArray());
        if (!parsed.IsSuccess)
        {
            throw new RoutesFileException($"{file}:{parsed.Error}");
        }
        var root = parsed.Document!.Root;
        Known(file, root, "", TopKeys);
        var settings = new EdgeSettings();
        if (root.TryGetValue("settings", out var s))
        {
            settings = Settings(file, s as TomlTable ?? throw Error(file, s, "settings", "expected a table"));
        }
        var routes = new List<EdgeRoute>();
        if (root.TryGetValue("routes", out var r))
        {
            if (r is not TomlArray array)
            {
                throw Error(file, r, "routes", "expected an array of tables ([[routes]])");
            }
            for (var i = 0; i < array.Count; i++)
            {
                routes.AddRange(Route(file, array[i] as TomlTable ?? throw Error(file, array[i], $"routes[{i}]", "expected a table"), $"routes[{i}]"));
            }
        }
        try
        {
            return (settings, RouteTable.Build(routes));
        }
        catch (RouteTableException e)
        {
            throw new RoutesFileException($"{file}: {e.Message}");
        }
    }

    private static EdgeSettings Settings(string file, TomlTable table)
    {
        Known(file, table, "settings.", SettingKeys);
        var settings = new EdgeSettings();
        TimeSpan Time(string key, TimeSpan fallback) => table.TryGetValue(key, out var v)
            ? v is TomlString t && Duration.TryParse(t.Value, out var d, out _) ? d : throw Error(file, v, "settings." + key, "expected a duration like \"10s\", \"500ms\" or \"1h\"")
            : fallback;
        settings = settings with
        {
            HelloTimeout = Time("hello_timeout", settings.HelloTimeout),
            ConnectTimeout = Time("connect_timeout", settings.ConnectTimeout),
            IdleTimeout = Time("idle_timeout", settings.IdleTimeout),
            DrainTimeout = Time("drain_timeout", settings.DrainTimeout),
        };
        if (table.TryGetValue("max_connections", out var max))
        {
            settings = settings with { MaxConnections = max is TomlInteger { Value: >= 1 and <= 10_000_000 } n ? (int)n.Value : throw Error(file, max, "settings.max_connections", "expected a whole number from 1 to 10000000") };
        }
        return settings;
    }

    private static IEnumerable<EdgeRoute> Route(string file, TomlTable table, string path)
    {
        Known(file, table, path + ".", RouteKeys);
        var protocol = RouteProtocol.TlsPassthrough;
        if (table.TryGetValue("protocol", out var p))
        {
            protocol = (p as TomlString)?.Value switch
            {
                "tls_passthrough" => RouteProtocol.TlsPassthrough,
                "tcp_raw" => RouteProtocol.TcpRaw,
                _ => throw Error(file, p, path + ".protocol", "expected \"tls_passthrough\" or \"tcp_raw\""),
            };
        }
        string? hostname = null;
        if (table.TryGetValue("hostname", out var h))
        {
            if (protocol == RouteProtocol.TcpRaw)
            {
                throw Error(file, h, path + ".hostname", "a tcp_raw route is chosen by address and port alone; remove hostname");
            }
            var text = (h as TomlString)?.Value;
            hostname = text is not null && HostnameRules.IsValidPattern(text.TrimEnd('.').ToLowerInvariant())
                ? text.TrimEnd('.').ToLowerInvariant()
                : throw Error(file, h, path + ".hostname", "expected a DNS name like \"shop.example.com\" or \"*.example.com\"");
        }
        else if (protocol == RouteProtocol.TlsPassthrough)
        {
            throw Error(file, table, path, "missing hostname (a tls_passthrough route is chosen by SNI)");
        }
        var proxy = false;
        if (table.TryGetValue("proxy_protocol", out var pp))
        {
            proxy = (pp as TomlString)?.Value switch
            {
                "off" => false,
                "v2" => true,
                _ => throw Error(file, pp, path + ".proxy_protocol", "expected \"off\" or \"v2\""),
            };
        }
        var max = 0;
        if (table.TryGetValue("max_connections", out var m))
        {
            max = m is TomlInteger { Value: >= 1 and <= 10_000_000 } n ? (int)n.Value : throw Error(file, m, path + ".max_connections", "expected a whole number from 1 to 10000000");
        }
        if (!table.TryGetValue("listen", out var l))
        {
            throw Error(file, table, path, "missing listen (like \"[::]:443\")");
        }
        if (!table.TryGetValue("backends", out var b))
        {
            throw Error(file, table, path, "missing backends (like [\"[fd00::10]:8443\"])");
        }
        var backends = Endpoints(file, b, path + ".backends", allowUnspecified: false);
        if (backends.Count == 0)
        {
            throw Error(file, b, path + ".backends", "expected at least one backend");
        }
        string? name = null;
        if (table.TryGetValue("name", out var nm))
        {
            name = nm is TomlString { Value.Length: > 0 and <= 200 } ns && ns.Value.All(c => c is > ' ' and < (char)0x7F) ? ns.Value : throw Error(file, nm, path + ".name", "expected 1-200 printable ASCII characters without spaces");
        }
        var listens = Endpoints(file, l, path + ".listen", allowUnspecified: true);
        if (listens.Count == 0)
        {
            throw Error(file, l, path + ".listen", "expected at least one address");
        }
        foreach (var listen in listens)
        {
            var routeName = name is null ? $"{hostname ?? "tcp"}@{listen}" : listens.Count == 1 ? name : $"{name}@{listen}";
            yield return new EdgeRoute(routeName, listen, hostname, protocol, proxy, backends, max);
        }
    }

    private static List<IPEndPoint> Endpoints(string file, TomlValue value, string path, bool allowUnspecified)
    {
        var items = value switch
        {
            TomlString => [value],
            TomlArray a => a.ToList(),
            _ => throw Error(file, value, path, "expected an address like \"[::1]:8443\" or an array of them"),
        };
        var list = new List<IPEndPoint>();
        for (var i = 0; i < items.Count; i++)
        {
            var itemPath = value is TomlArray ? $"{path}[{i}]" : path;
            var text = (items[i] as TomlString)?.Value;
            if (text is null)
            {
                throw Error(file, items[i], itemPath, "expected a string");
            }
            if (!TryParseEndpoint(text, out var endpoint, out var problem))
            {
                throw Error(file, items[i], itemPath, problem!);
            }
            if (!allowUnspecified && (endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any) || endpoint.Port == 0))
            {
                throw Error(file, items[i], itemPath, "a backend needs a specific address and a port");
            }
            if (list.Contains(endpoint))
            {
                throw Error(file, items[i], itemPath, $"{text} is listed twice");
            }
            list.Add(endpoint);
        }
        return list;
    }

    /// <summary>Parses <c>1.2.3.4:443</c> or <c>[::1]:443</c>; IP literals only (no DNS on the data path).</summary>
    public static bool TryParseEndpoint(string text, out IPEndPoint endpoint, out string? problem)
    {
        endpoint = null!;
        problem = null;
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            problem = $"\"{Printable(text)}\" is not ADDRESS:PORT (write IPv6 addresses in brackets: \"[::1]:443\")";
            return false;
        }
        var host = text[..colon];
        var portText = text[(colon + 1)..];
        var bracketed = host.StartsWith('[') && host.EndsWith(']');
        if (!bracketed && host.Contains(':', StringComparison.Ordinal))
        {
            problem = $"\"{Printable(text)}\": write IPv6 addresses in brackets, like \"[::1]:443\"";
            return false;
        }
        if (bracketed)
        {
            host = host[1..^1];
        }
        if (!IPAddress.TryParse(host, out var address) || (bracketed != (address.AddressFamily == AddressFamily.InterNetworkV6)) || host.Contains('%', StringComparison.Ordinal))
        {
            problem = $"\"{Printable(host)}\" is not an IP address (names are not resolved: give an IPv4 or a bracketed IPv6 literal)";
            return false;
        }
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            problem = $"\"{Printable(portText)}\" is not a port from 0 to 65535";
            return false;
        }
        endpoint = new IPEndPoint(address, port);
        return true;
    }

    private static void Known(string file, TomlTable table, string prefix, string[] keys)
    {
        foreach (var key in table.Keys)
        {
            if (Array.IndexOf(keys, key) < 0)
            {
                var position = table.GetKeyPosition(key);
                throw new RoutesFileException($"{file}:{position.Line}:{position.Column}: {prefix}{TomlKeys.Join([key])}: unknown key; known keys here: {string.Join(", ", keys)}");
            }
        }
    }

    private static string Printable(string s) => TomlKeys.Printable(s.AsSpan(), 60);

    private static RoutesFileException Error(string file, TomlValue value, string path, string message) =>
        new($"{file}:{value.Position.Line}:{value.Position.Column}: {path}: {message}");
}
