using System.Net;
using Trc.Core.Domain;
using Trc.Core.Manifest;
using Trc.Core.Toml;

namespace Trc.ControlPlane;

/// <summary>A problem in the server's configuration, naming where it is.</summary>
public sealed class ServerConfigException(string message) : Exception(message);

/// <summary>
/// <c>trc server</c>'s configuration: a TOML file, then <c>TRC_*</c> environment variables, then
/// command-line flags, each overriding the one before.
/// </summary>
/// <example>
/// <code>
/// database = "postgres://trc:secret@db:5432/trc?search_path=trc"
/// listen = "http://0.0.0.0:7080"
/// data_dir = "/var/lib/trc"
/// overlay_prefix = "fd74:7263::/48"
/// node_lease = "15s"
/// scheduler_interval = "3s"
/// rollout_health_timeout = "5m"
/// rollout_drain = "5s"
/// log_retention = "7d"
///
/// [policy]
/// allowed_ports = [8443]
/// ipv4_pool = ["203.0.113.10", "203.0.113.11"]
///
/// [policy.default_quotas]
/// memory = "64Gi"
/// instances = 100
/// </code>
/// </example>
public static class ServerConfig
{
    /// <summary>Keys a config file may hold.</summary>
    private static readonly string[] TopKeys = ["database", "listen", "data_dir", "master_key_file", "admin_token_file", "node_token_file", "overlay_prefix", "node_lease", "scheduler_interval", "rollout_health_timeout", "rollout_drain", "log_retention", "log_max_lines_per_env", "max_request_body", "policy"];

    /// <summary>Settings given as strings, with their environment variables.</summary>
    private static readonly (string Key, string? Variable)[] StringKeys =
    [
        ("database", "TRC_DATABASE"), ("listen", "TRC_LISTEN"), ("data_dir", "TRC_DATA_DIR"), ("master_key_file", "TRC_MASTER_KEY_FILE"),
        ("admin_token_file", null), ("node_token_file", "TRC_NODE_TOKEN_FILE"), ("overlay_prefix", "TRC_OVERLAY_PREFIX"),
        ("node_lease", "TRC_NODE_LEASE"), ("scheduler_interval", "TRC_SCHEDULER_INTERVAL"), ("rollout_health_timeout", "TRC_ROLLOUT_HEALTH_TIMEOUT"), ("rollout_drain", "TRC_ROLLOUT_DRAIN"), ("log_retention", "TRC_LOG_RETENTION"), ("log_max_lines_per_env", "TRC_LOG_MAX_LINES_PER_ENV"),
    ];

    private static readonly string[] PolicyKeys = ["allowed_ports", "denied_ports", "ipv4_pool", "ipv4_extra_ports", "cpu_overcommit", "memory_buffer_percent", "default_quotas"];

    private static readonly string[] QuotaKeys = ["memory", "instances", "routes", "ipv4_addresses"];

    /// <summary>Builds the options from a file (optional), the environment and flags.</summary>
    /// <param name="file">A config file, or null (then <c>TRC_CONFIG</c>, if set).</param>
    /// <param name="environment">Environment variables.</param>
    /// <param name="flags">Command-line values by setting name (<c>database</c>, <c>listen</c>, ...); null entries are absent.</param>
    /// <param name="defaultDataDirectory">The data directory when nothing names one.</param>
    public static ServerOptions Load(string? file, IReadOnlyDictionary<string, string?> environment, IReadOnlyDictionary<string, string?> flags, string defaultDataDirectory)
    {
        file ??= environment.GetValueOrDefault("TRC_CONFIG");
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        var policy = ClusterPolicy.Default;
        long maxBody = 1 << 20;
        if (file is not null)
        {
            (policy, maxBody) = ReadFile(file, values);
        }
        foreach (var (name, variable) in StringKeys)
        {
            if (variable is not null && environment.GetValueOrDefault(variable) is { Length: > 0 } value)
            {
                values[name] = value;
            }
        }
        foreach (var (name, value) in flags)
        {
            if (value is not null)
            {
                values[name] = value;
            }
        }
        var dataDir = values.GetValueOrDefault("data_dir") ?? defaultDataDirectory;
        return new ServerOptions
        {
            Database = values.GetValueOrDefault("database") ?? "sqlite:" + Path.Combine(dataDir, "trc.db"),
            Listen = ListenSetting(values.GetValueOrDefault("listen") ?? "http://127.0.0.1:7080"),
            DataDirectory = dataDir,
            MasterKeyFile = values.GetValueOrDefault("master_key_file"),
            AdminTokenFile = values.GetValueOrDefault("admin_token_file"),
            NodeTokenFile = values.GetValueOrDefault("node_token_file"),
            OverlayPrefix = values.GetValueOrDefault("overlay_prefix") is { } prefix
                ? OverlayNetwork.TryParse(prefix, out var prefixError) ?? throw Setting("overlay_prefix", prefixError)
                : OverlayNetwork.Default,
            NodeLease = DurationSetting(values, "node_lease", TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(1), TimeSpan.FromHours(1)),
            SchedulerInterval = DurationSetting(values, "scheduler_interval", TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(10)),
            Rollouts = new Core.Scheduling.RolloutTimings(
                DurationSetting(values, "rollout_health_timeout", RolloutDefaults.HealthTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromHours(24)),
                DurationSetting(values, "rollout_drain", RolloutDefaults.Drain, TimeSpan.Zero, TimeSpan.FromHours(1))),
            LogRetention = DurationSetting(values, "log_retention", TimeSpan.FromDays(7), TimeSpan.FromMinutes(1), TimeSpan.FromDays(3650)),
            LogMaxLinesPerEnv = values.GetValueOrDefault("log_max_lines_per_env") is { } cap
                ? int.TryParse(cap, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var lines) && lines is >= 1 and <= 100_000_000
                    ? lines
                    : throw Setting("log_max_lines_per_env", $"\"{TomlKeys.Printable(cap, 40)}\" is not a whole number from 1 to 100000000")
                : 100_000,
            Policy = policy,
            MaxRequestBodyBytes = maxBody,
        };
    }

    // Kestrel takes URLs; "HOST:PORT" is what people type, so it means http://HOST:PORT. Anything
    // else that is not an http(s) URL with a port is refused here, naming the setting, rather than
    // failing inside Kestrel at startup.
    private static string ListenSetting(string value)
    {
        var url = value.Contains("://", StringComparison.Ordinal) ? value : "http://" + value;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/" || uri.Query.Length > 0
            || !url.AsSpan(url.IndexOf("://", StringComparison.Ordinal) + 3).Contains(':'))
        {
            throw Setting("listen", $"\"{TomlKeys.Printable(value, 80)}\" is not an address to listen on: write HOST:PORT or http://HOST:PORT, like 127.0.0.1:7080 or http://[::]:7080");
        }
        return url;
    }

    private static TimeSpan DurationSetting(Dictionary<string, string?> values, string key, TimeSpan fallback, TimeSpan min, TimeSpan max)
    {
        if (values.GetValueOrDefault(key) is not { } text)
        {
            return fallback;
        }
        if (!ServerDurations.TryParse(text, out var value, out var error))
        {
            throw Setting(key, error);
        }
        return value >= min && value <= max ? value : throw Setting(key, $"{text} is out of range ({Duration.Format(min)} to {Duration.Format(max)})");
    }

    private static ServerConfigException Setting(string key, string message) =>
        new($"{key} (config file, TRC_{key.ToUpperInvariant()} or --{key.Replace('_', '-')}): {message}");

    private static (ClusterPolicy Policy, long MaxBody) ReadFile(string file, Dictionary<string, string?> values)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ServerConfigException($"{file}: cannot read the config file: {e.Message}");
        }
        var parsed = Toml.Parse(bytes);
        if (!parsed.IsSuccess)
        {
            throw new ServerConfigException($"{file}:{parsed.Error}");
        }
        var root = parsed.Document!.Root;
        Known(file, root, "", TopKeys);
        foreach (var (key, _) in StringKeys.Where(k => k.Key != "log_max_lines_per_env"))
        {
            if (root.TryGetValue(key, out var v))
            {
                values[key] = v is TomlString s ? s.Value : throw Error(file, v, key, "expected a string");
            }
        }
        if (root.TryGetValue("log_max_lines_per_env", out var maxLines))
        {
            values["log_max_lines_per_env"] = maxLines is TomlInteger n ? n.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) : throw Error(file, maxLines, "log_max_lines_per_env", "expected a whole number");
        }
        long maxBody = 1 << 20;
        if (root.TryGetValue("max_request_body", out var mb))
        {
            maxBody = mb is TomlString size && ByteSize.TryParse(size.Value, out var b, out _) ? b : throw Error(file, mb, "max_request_body", "expected a size like \"1Mi\"");
        }
        var policy = ClusterPolicy.Default;
        if (root.TryGetValue("policy", out var p))
        {
            var table = p as TomlTable ?? throw Error(file, p, "policy", "expected a table");
            Known(file, table, "policy.", PolicyKeys);
            if (table.TryGetValue("allowed_ports", out var allowed))
            {
                policy = policy with { AllowedPorts = Ports(file, allowed, "policy.allowed_ports") };
            }
            if (table.TryGetValue("denied_ports", out var denied))
            {
                policy = policy with { DeniedPorts = Ports(file, denied, "policy.denied_ports") };
            }
            if (table.TryGetValue("ipv4_pool", out var pool))
            {
                policy = policy with { Ipv4Pool = Pool(file, pool) };
            }
            if (table.TryGetValue("ipv4_extra_ports", out var extra))
            {
                policy = policy with { Ipv4ExtraPorts = extra is TomlInteger { Value: >= 0 and <= 100 } n ? (int)n.Value : throw Error(file, extra, "policy.ipv4_extra_ports", "expected an integer from 0 to 100") };
            }
            if (table.TryGetValue("cpu_overcommit", out var cpu))
            {
                var ratio = cpu switch { TomlInteger i => i.Value, TomlFloat f => f.Value, _ => double.NaN };
                policy = policy with { CpuOvercommit = ratio is >= 1 and <= 64 ? ratio : throw Error(file, cpu, "policy.cpu_overcommit", "expected a number from 1 to 64") };
            }
            if (table.TryGetValue("memory_buffer_percent", out var buffer))
            {
                policy = policy with { MemoryBufferPercent = buffer is TomlInteger { Value: >= 0 and <= 50 } b ? (int)b.Value : throw Error(file, buffer, "policy.memory_buffer_percent", "expected an integer from 0 to 50") };
            }
            if (table.TryGetValue("default_quotas", out var q))
            {
                policy = policy with { DefaultQuotas = Quotas(file, q, policy.DefaultQuotas) };
            }
        }
        return (policy, maxBody);
    }

    private static HashSet<int> Ports(string file, TomlValue value, string path)
    {
        if (value is not TomlArray array)
        {
            throw Error(file, value, path, "expected an array of ports");
        }
        return array.Select((v, i) => v is TomlInteger { Value: >= 1 and <= 65535 } n ? (int)n.Value : throw Error(file, v, $"{path}[{i}]", "expected a port from 1 to 65535")).ToHashSet();
    }

    private static List<IPAddress> Pool(string file, TomlValue value)
    {
        if (value is not TomlArray array)
        {
            throw Error(file, value, "policy.ipv4_pool", "expected an array of IPv4 addresses or CIDR blocks");
        }
        var pool = new List<IPAddress>();
        for (var i = 0; i < array.Count; i++)
        {
            var text = (array[i] as TomlString)?.Value;
            if (text is not null && IPAddress.TryParse(text, out var address) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !text.Contains('/', StringComparison.Ordinal))
            {
                pool.Add(address);
            }
            else if (text is not null && IPNetwork.TryParse(text, out var network) && network.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && network.PrefixLength >= 16)
            {
                var start = (uint)IPAddress.NetworkToHostOrder(BitConverter.ToInt32(network.BaseAddress.GetAddressBytes()));
                for (uint n = 0; n < 1u << (32 - network.PrefixLength); n++)
                {
                    pool.Add(new IPAddress(BitConverter.GetBytes(IPAddress.HostToNetworkOrder((int)(start + n)))));
                }
            }
            else
            {
                throw Error(file, array[i], $"policy.ipv4_pool[{i}]", "expected an IPv4 address or a CIDR block of /16 or smaller");
            }
        }
        return pool;
    }

    private static Quotas Quotas(string file, TomlValue value, Quotas defaults)
    {
        var table = value as TomlTable ?? throw Error(file, value, "policy.default_quotas", "expected a table");
        Known(file, table, "policy.default_quotas.", QuotaKeys);
        var memory = defaults.MemoryBytes;
        if (table.TryGetValue("memory", out var m))
        {
            memory = m is TomlString s && ByteSize.TryParse(s.Value, out var bytes, out _) ? bytes : throw Error(file, m, "policy.default_quotas.memory", "expected a size like \"64Gi\"");
        }
        int Count(string key, int fallback) => table.TryGetValue(key, out var v)
            ? v is TomlInteger { Value: >= 0 and <= 1_000_000 } n ? (int)n.Value : throw Error(file, v, "policy.default_quotas." + key, "expected a whole number from 0 to 1000000")
            : fallback;
        return new Quotas(memory, Count("instances", defaults.Instances), Count("routes", defaults.Routes), Count("ipv4_addresses", defaults.Ipv4Addresses));
    }

    private static void Known(string file, TomlTable table, string prefix, string[] keys)
    {
        foreach (var key in table.Keys.Where(k => !keys.Contains(k)))
        {
            var position = table.GetKeyPosition(key);
            throw new ServerConfigException($"{file}:{position.Line}:{position.Column}: {prefix}{TomlKeys.Join([key])}: unknown key; known keys here: {string.Join(", ", keys)}");
        }
    }

    private static ServerConfigException Error(string file, TomlValue value, string path, string message) =>
        new($"{file}:{value.Position.Line}:{value.Position.Column}: {path}: {message}");
}

/// <summary>The rollout defaults, as the config file's settings name them.</summary>
internal static class RolloutDefaults
{
    public static TimeSpan HealthTimeout => Core.Scheduling.RolloutTimings.Default.HealthTimeout;

    public static TimeSpan Drain => Core.Scheduling.RolloutTimings.Default.Drain;
}
