using Trc.Core.Manifest.Schema;
using Trc.Core.Toml;

namespace Trc.Core.Manifest;

/// <summary>The outcome of loading a manifest: the model when valid, and every problem found.</summary>
public sealed class ManifestLoadResult
{
    internal ManifestLoadResult(AppManifest? manifest, TomlDocument? document, IReadOnlyList<ManifestDiagnostic> diagnostics)
    {
        Manifest = manifest;
        Document = document;
        Diagnostics = diagnostics;
    }

    /// <summary>The manifest, set only when there is no diagnostic at all.</summary>
    public AppManifest? Manifest { get; }

    /// <summary>The parsed TOML (with comments), when the file is valid TOML.</summary>
    public TomlDocument? Document { get; }

    /// <summary>Every problem, ordered by position.</summary>
    public IReadOnlyList<ManifestDiagnostic> Diagnostics { get; }

    /// <summary>True when the manifest has no problem.</summary>
    public bool IsValid => Manifest is not null;

    /// <summary>
    /// True when the file is TOML and has the manifest's shape (known keys, right types), even if
    /// other rules fail: enough for <c>trc fmt</c> to rewrite it without losing anything.
    /// </summary>
    public bool HasValidShape => Document is not null && Diagnostics.All(d => d.Kind == ManifestDiagnosticKind.Rule);
}

/// <summary>Reads and validates <c>trc.toml</c>, reporting every problem at once.</summary>
public static class ManifestLoader
{
    /// <summary>Largest manifest accepted. Real manifests are a few kilobytes.</summary>
    public const int MaxFileBytes = 1 << 20;

    /// <summary>Loads a manifest from UTF-8 bytes.</summary>
    public static ManifestLoadResult Load(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxFileBytes)
        {
            return TooLarge(utf8.Length);
        }
        var parsed = Toml.Toml.Parse(utf8);
        return parsed.IsSuccess ? Validate(parsed.Document!) : SyntaxError(parsed.Error!);
    }

    /// <summary>Loads a manifest from text.</summary>
    public static ManifestLoadResult Load(string text)
    {
        if (text.Length > MaxFileBytes)
        {
            return TooLarge(text.Length);
        }
        var parsed = Toml.Toml.Parse(text);
        return parsed.IsSuccess ? Validate(parsed.Document!) : SyntaxError(parsed.Error!);
    }

    /// <summary>Validates an already parsed document.</summary>
    public static ManifestLoadResult Validate(TomlDocument document)
    {
        var context = new ValidationContext();
        ManifestSchema.Root.Validate(document.Root, "", context);
        var reader = new ModelReader(context);
        var manifest = reader.Read(document.Root);
        new CrossFieldRules(manifest, reader, context).Check();

        var diagnostics = context.Diagnostics
            .Distinct()
            .OrderBy(d => d.Position.Line).ThenBy(d => d.Position.Column).ThenBy(d => d.Path, StringComparer.Ordinal)
            .ToList();
        return new ManifestLoadResult(diagnostics.Count == 0 ? manifest : null, document, diagnostics);
    }

    private static ManifestLoadResult SyntaxError(TomlError error) =>
        new(null, null, [new ManifestDiagnostic(error.Position, "", error.Message, ManifestDiagnosticKind.Syntax)]);

    private static ManifestLoadResult TooLarge(int length) =>
        new(null, null, [new ManifestDiagnostic(new TomlPosition(1, 1), "", $"the manifest is {length} bytes; at most {MaxFileBytes} are accepted", ManifestDiagnosticKind.Syntax)]);

    /// <summary>
    /// Builds the model leniently: a value of the wrong type (already reported by the schema) reads as
    /// its default, so the cross-field rules can still run and every error is reported at once. It
    /// remembers where each value was, for the rules' messages.
    /// </summary>
    internal sealed class ModelReader(ValidationContext context)
    {
        private readonly Dictionary<string, TomlPosition> _positions = new(StringComparer.Ordinal);

        /// <summary>Where the value at a path was written, or its nearest written parent.</summary>
        public TomlPosition PositionOf(string path)
        {
            while (true)
            {
                if (_positions.TryGetValue(path, out var position))
                {
                    return position;
                }
                var cut = Math.Max(path.LastIndexOf('.'), path.LastIndexOf('['));
                if (cut <= 0)
                {
                    return _positions.GetValueOrDefault("", new TomlPosition(1, 1));
                }
                path = path[..cut];
            }
        }

        /// <summary>Whether the schema already reported a problem exactly at this path.</summary>
        public bool HasErrorExactlyAt(string path) => context.Diagnostics.Any(d => d.Path == path);

        /// <summary>Whether the schema already reported a problem at or under this path.</summary>
        public bool HasErrorAt(string path) => context.Diagnostics.Any(d =>
            d.Path == path || d.Path.StartsWith(path + ".", StringComparison.Ordinal) || d.Path.StartsWith(path + "[", StringComparison.Ordinal));

        public AppManifest Read(TomlTable root)
        {
            _positions[""] = root.Position;
            var processes = new List<ProcessSpec>();
            if (Table(root, "processes", "processes") is { } processTable)
            {
                var names = processTable.Keys
                    .OrderBy(n => n == ManifestSchema.DefaultProcess ? 0 : 1)
                    .ThenBy(n => n, StringComparer.Ordinal);
                foreach (var name in names)
                {
                    var path = Paths.Child("processes", name);
                    Remember(path, processTable, name);
                    processes.Add(ReadProcess(name, processTable[name] as TomlTable, path));
                }
            }
            var routes = Tables(root, "routes").Select((t, i) => ReadRoute(t, $"routes[{i}]")).ToList();
            var volumes = Tables(root, "volumes").Select((t, i) => ReadVolume(t, $"volumes[{i}]")).ToList();
            return new AppManifest(String(root, "app", "app", "") ?? "", processes, routes, volumes);
        }

        private ProcessSpec ReadProcess(string name, TomlTable? t, string path)
        {
            t ??= EmptyTable;
            var command = t.TryGetValue("command", out var c) && c is TomlArray commandArray
                ? commandArray.OfType<TomlString>().Select(s => s.Value).ToList()
                : null;
            Remember(Paths.Child(path, "command"), t, "command");
            var ports = t.TryGetValue("ports", out var p) && p is TomlArray portArray
                ? portArray.OfType<TomlInteger>().Select(i => (int)Math.Clamp(i.Value, 0, 65535)).ToList()
                : [];
            Remember(Paths.Child(path, "ports"), t, "ports");
            var cpu = t.TryGetValue("cpu", out var cpuValue) ? cpuValue switch
            {
                TomlInteger i => (decimal)i.Value,
                TomlFloat f when double.IsFinite(f.Value) && Math.Abs(f.Value) < 1e15 => (decimal)f.Value,
                _ => 1m,
            } : (decimal)ManifestSchema.Process.FindField("cpu")!.Default!;
            var memoryText = String(t, "memory", Paths.Child(path, "memory"), null);
            var memory = memoryText is not null && ByteSize.TryParse(memoryText, out var bytes, out _) ? bytes : 0;
            var user = String(t, "user", Paths.Child(path, "user"), null);

            var scalingTable = Table(t, "scaling", Paths.Child(path, "scaling")) ?? EmptyTable;
            var min = (int)Integer(scalingTable, "min", Paths.Child(Paths.Child(path, "scaling"), "min"), 1);
            var max = (int)Integer(scalingTable, "max", Paths.Child(Paths.Child(path, "scaling"), "max"), Math.Max(min, 1));

            HealthcheckSpec? health = null;
            if (Table(t, "healthcheck", Paths.Child(path, "healthcheck")) is { } h)
            {
                var hp = Paths.Child(path, "healthcheck");
                var interval = Duration.TryParse(String(h, "interval", Paths.Child(hp, "interval"), "10s")!, out var iv, out _) ? iv : TimeSpan.FromSeconds(10);
                var timeout = Duration.TryParse(String(h, "timeout", Paths.Child(hp, "timeout"), "2s")!, out var tv, out _) ? tv : TimeSpan.FromSeconds(2);
                if (Table(h, "http", Paths.Child(hp, "http")) is { } http)
                {
                    var port = (int)Integer(http, "port", Paths.Child(Paths.Child(hp, "http"), "port"), 0);
                    health = new HealthcheckSpec(HealthcheckKind.Http, port, String(http, "path", Paths.Child(Paths.Child(hp, "http"), "path"), "/"), interval, timeout);
                }
                else
                {
                    health = new HealthcheckSpec(HealthcheckKind.Tcp, (int)Integer(h, "tcp", Paths.Child(hp, "tcp"), 0), null, interval, timeout);
                }
            }
            return new ProcessSpec(name, command, ports, cpu, memory, user, new ScalingSpec(min, max), health);
        }

        private RouteSpec ReadRoute(TomlTable t, string path)
        {
            _positions[path] = t.HeaderPosition ?? t.Position;
            return new RouteSpec(
                String(t, "hostname", path + ".hostname", "") ?? "",
                (int)Integer(t, "listen_port", path + ".listen_port", 443),
                String(t, "protocol", path + ".protocol", "tls_passthrough") == "tcp_raw" ? RouteProtocol.TcpRaw : RouteProtocol.TlsPassthrough,
                String(t, "process", path + ".process", ManifestSchema.DefaultProcess)!,
                (int)Integer(t, "backend_port", path + ".backend_port", 0),
                String(t, "proxy_protocol", path + ".proxy_protocol", "off") == "v2" ? ProxyProtocolMode.V2 : ProxyProtocolMode.Off,
                Boolean(t, "backend_expects_proxy_protocol", path + ".backend_expects_proxy_protocol", false),
                Boolean(t, "ipv4_required", path + ".ipv4_required", false));
        }

        private VolumeSpec ReadVolume(TomlTable t, string path)
        {
            _positions[path] = t.HeaderPosition ?? t.Position;
            var sizeText = String(t, "size", path + ".size", null);
            var size = sizeText is not null && ByteSize.TryParse(sizeText, out var bytes, out _) ? bytes : 0;
            return new VolumeSpec(
                String(t, "name", path + ".name", "") ?? "",
                size,
                String(t, "process", path + ".process", ManifestSchema.DefaultProcess)!,
                Boolean(t, "backup_enabled", path + ".backup_enabled", true));
        }

        private static readonly TomlTable EmptyTable = Toml.Toml.ParseTable("");

        private void Remember(string path, TomlTable table, string key)
        {
            if (table.ContainsKey(key))
            {
                _positions[path] = table[key].Position;
            }
        }

        private TomlTable? Table(TomlTable t, string key, string path)
        {
            Remember(path, t, key);
            return t.TryGetValue(key, out var v) ? v as TomlTable : null;
        }

        private IEnumerable<TomlTable> Tables(TomlTable t, string key) =>
            t.TryGetValue(key, out var v) && v is TomlArray array ? array.Select(item => item as TomlTable ?? EmptyTable) : [];

        private string? String(TomlTable t, string key, string path, string? fallback)
        {
            Remember(path, t, key);
            return t.TryGetValue(key, out var v) ? (v as TomlString)?.Value ?? fallback : fallback;
        }

        private long Integer(TomlTable t, string key, string path, long fallback)
        {
            Remember(path, t, key);
            return t.TryGetValue(key, out var v) && v is TomlInteger i ? i.Value : fallback;
        }

        private bool Boolean(TomlTable t, string key, string path, bool fallback)
        {
            Remember(path, t, key);
            return t.TryGetValue(key, out var v) && v is TomlBoolean b ? b.Value : fallback;
        }
    }

    /// <summary>Rules between fields, which JSON Schema cannot express. Each skips inputs the schema already rejected.</summary>
    private sealed class CrossFieldRules(AppManifest manifest, ModelReader reader, ValidationContext context)
    {
        public void Check()
        {
            foreach (var process in manifest.Processes)
            {
                CheckProcess(process);
            }
            CheckRoutes();
            CheckVolumes();
        }

        private void CheckProcess(ProcessSpec process)
        {
            var path = Paths.Child("processes", process.Name);
            if (process.Command is [var first, ..] && first.Length == 0 && !reader.HasErrorAt(path + ".command"))
            {
                Report(path + ".command[0]", "the program to run must not be empty");
            }
            var scaling = path + ".scaling";
            if (process.Scaling.Min > process.Scaling.Max && !reader.HasErrorAt(scaling))
            {
                Report(scaling + ".min", $"min ({process.Scaling.Min}) is greater than max ({process.Scaling.Max})");
            }
            if (process.Healthcheck is { } h && !reader.HasErrorAt(path + ".healthcheck") && !reader.HasErrorAt(path + ".ports"))
            {
                var hp = path + ".healthcheck";
                if (!process.Ports.Contains(h.Port))
                {
                    var portPath = h.Kind == HealthcheckKind.Tcp ? hp + ".tcp" : hp + ".http.port";
                    Report(portPath, $"port {h.Port} is not one of the process's ports ({PortList(process)}); add it to {path}.ports");
                }
                if (h.Timeout > h.Interval)
                {
                    Report(hp + ".timeout", $"the timeout ({Duration.Format(h.Timeout)}) is longer than the interval ({Duration.Format(h.Interval)})");
                }
            }
        }

        private void CheckRoutes()
        {
            var byHostAndPort = new Dictionary<(string, int), int>();
            var byPort = new Dictionary<int, List<int>>();
            for (var i = 0; i < manifest.Routes.Count; i++)
            {
                var route = manifest.Routes[i];
                var path = $"routes[{i}]";
                if (reader.HasErrorExactlyAt(path))
                {
                    continue;
                }
                if (!reader.HasErrorAt(path + ".process") && !reader.HasErrorExactlyAt("processes"))
                {
                    var process = manifest.FindProcess(route.Process);
                    if (process is null)
                    {
                        Report(path + ".process", $"there is no process named \"{route.Process}\"{KnownProcesses()}");
                    }
                    else if (!reader.HasErrorAt(path + ".backend_port")
                        && !reader.HasErrorAt(Paths.Child(Paths.Child("processes", process.Name), "ports"))
                        && !process.Ports.Contains(route.BackendPort))
                    {
                        Report(path + ".backend_port", $"port {route.BackendPort} is not one of process {process.Name}'s ports ({PortList(process)})");
                    }
                }
                if (reader.HasErrorAt(path + ".hostname") || reader.HasErrorAt(path + ".listen_port") || reader.HasErrorAt(path + ".protocol"))
                {
                    continue;
                }
                if (!byHostAndPort.TryAdd((route.Hostname, route.ListenPort), i))
                {
                    Report(path + ".hostname", $"{route.Hostname}:{route.ListenPort} is already routed by routes[{byHostAndPort[(route.Hostname, route.ListenPort)]}]");
                }
                if (!byPort.TryGetValue(route.ListenPort, out var onPort))
                {
                    byPort[route.ListenPort] = onPort = [];
                }
                var rawHere = onPort.FirstOrDefault(j => manifest.Routes[j].Protocol == RouteProtocol.TcpRaw, -1);
                if (onPort.Count > 0 && (route.Protocol == RouteProtocol.TcpRaw || rawHere >= 0))
                {
                    var other = rawHere >= 0 ? rawHere : onPort[0];
                    Report(path + ".listen_port", $"port {route.ListenPort} is also used by routes[{other}]; a tcp_raw route is routed by port alone, so it needs a listen_port of its own");
                }
                onPort.Add(i);
            }
        }

        private void CheckVolumes()
        {
            var names = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < manifest.Volumes.Count; i++)
            {
                var volume = manifest.Volumes[i];
                var path = $"volumes[{i}]";
                if (reader.HasErrorExactlyAt(path))
                {
                    continue;
                }
                if (!reader.HasErrorAt(path + ".name") && !names.TryAdd(volume.Name, i))
                {
                    Report(path + ".name", $"volumes[{names[volume.Name]}] is also named \"{volume.Name}\"");
                }
                if (reader.HasErrorAt(path + ".process") || reader.HasErrorExactlyAt("processes"))
                {
                    continue;
                }
                var process = manifest.FindProcess(volume.Process);
                if (process is null)
                {
                    Report(path + ".process", $"there is no process named \"{volume.Process}\"{KnownProcesses()}");
                }
                else if (process.Scaling.Max > 1 && !reader.HasErrorAt(Paths.Child(Paths.Child("processes", process.Name), "scaling")))
                {
                    Report(path + ".process", $"process {process.Name} may run {process.Scaling.Max} instances, but a volume attaches to one instance; set its scaling.max to 1");
                }
            }
        }

        private string KnownProcesses() =>
            manifest.Processes.Count == 0 ? "" : $" (processes: {string.Join(", ", manifest.Processes.Select(p => p.Name))})";

        private static string PortList(ProcessSpec process) =>
            process.Ports.Count == 0 ? "none declared" : string.Join(", ", process.Ports);

        private void Report(string path, string message) =>
            context.Report(reader.PositionOf(path), path, message, ManifestDiagnosticKind.Rule);
    }
}
