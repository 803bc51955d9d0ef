using System.Globalization;
using System.Text;
using Trc.Core.Toml;

namespace Trc.Core.Tests.Manifest;

/// <summary>
/// Generates valid manifests from a seed and writes each in a random TOML authoring style: tables
/// under headers, dotted keys at the root, inline tables, static arrays of inline tables, shuffled
/// keys, comments and blank lines. The same manifest written two ways must load the same.
/// </summary>
public sealed class ManifestGenerator(int seed)
{
    private static readonly string[] ProcessNames = ["web", "worker", "cron", "api-2", "z"];
    private static readonly string[] Args = ["/app/server", "--port", "8443", "a\"b", @"C:\path", "tab\there", "é ü", "", "x'y", "line\nbreak"];
    private static readonly int[] PortPool = [80, 443, 8080, 8443, 9090, 5432];

    private readonly Random _random = new(seed);
    private int _commentCounter;

    /// <summary>The comments written into the last generated text.</summary>
    public List<string> Comments { get; } = [];

    /// <summary>A new random valid manifest, as TOML text.</summary>
    public string Next()
    {
        Comments.Clear();
        var spec = NextSpec();
        return Render(spec);
    }

    // ---- the manifest, as plain data ------------------------------------------------------------

    private sealed record Proc(string Name, List<(string Key, string Toml)> Keys, List<(string Key, List<(string Key, string Toml)> Fields)> Subtables);

    private sealed record Spec(string App, List<Proc> Processes, List<List<(string Key, string Toml)>> Routes, List<List<(string Key, string Toml)>> Volumes);

    private Spec NextSpec()
    {
        var names = ProcessNames.Where(_ => _random.Next(3) > 0).ToList();
        if (names.Count == 0)
        {
            names.Add("web");
        }
        var processes = new List<Proc>();
        var portsByProcess = new Dictionary<string, List<int>>();
        var singleInstance = new HashSet<string>();
        foreach (var name in names)
        {
            var keys = new List<(string, string)>();
            var subtables = new List<(string, List<(string, string)>)>();
            if (Chance(2))
            {
                var argv = Enumerable.Range(0, _random.Next(1, 5)).Select(i => i == 0 ? "/bin/app" : Pick(Args)).ToList();
                keys.Add(("command", "[" + string.Join(", ", argv.Select(Str)) + "]"));
            }
            var ports = PortPool.Where(_ => Chance(3)).ToList();
            portsByProcess[name] = ports;
            if (ports.Count > 0 || Chance(4))
            {
                keys.Add(("ports", "[" + string.Join(", ", ports) + "]"));
            }
            if (Chance(2))
            {
                keys.Add(("cpu", Pick(new[] { "1", "2", "0.5", "0.25", "1.125", "64", "0.001" })));
            }
            keys.Add(("memory", Str(Pick(new[] { "128Mi", "512Mi", "1Gi", "2Gi", "1048576Ki" }))));
            if (Chance(3))
            {
                keys.Add(("user", Str(Pick(new[] { "app", "1000", "app:staff", "1000:1000", "_svc" }))));
            }
            var max = _random.Next(1, 4);
            if (Chance(2))
            {
                var scaling = new List<(string, string)>();
                var min = _random.Next(0, max + 1);
                if (Chance(2))
                {
                    scaling.Add(("min", min.ToString(CultureInfo.InvariantCulture)));
                }
                else
                {
                    max = Math.Max(max, 1);
                }
                scaling.Add(("max", max.ToString(CultureInfo.InvariantCulture)));
                subtables.Add(("scaling", scaling));
            }
            else
            {
                max = 1;
            }
            if (max <= 1)
            {
                singleInstance.Add(name);
            }
            if (ports.Count > 0 && Chance(2))
            {
                var health = new List<(string, string)>();
                if (Chance(2))
                {
                    health.Add(("tcp", Pick(ports).ToString(CultureInfo.InvariantCulture)));
                }
                else
                {
                    health.Add(("http", $"{{ port = {Pick(ports)}, path = {Str(Pick(new[] { "/", "/healthz", "/a/b?c=d" }))} }}"));
                }
                if (Chance(2))
                {
                    health.Add(("interval", Str(Pick(new[] { "5s", "10s", "1m" }))));
                }
                if (Chance(2))
                {
                    health.Add(("timeout", Str(Pick(new[] { "100ms", "2s", "5s" }))));
                }
                subtables.Add(("healthcheck", health));
            }
            processes.Add(new Proc(name, keys, subtables));
        }

        var routes = new List<List<(string, string)>>();
        var rawPort = 10000;
        foreach (var (process, ports) in portsByProcess.Where(p => p.Value.Count > 0).Take(3))
        {
            var route = new List<(string, string)>
            {
                ("hostname", Str($"{process}.r{routes.Count}.example.com")),
                ("backend_port", Pick(ports).ToString(CultureInfo.InvariantCulture)),
            };
            if (process != "web" || Chance(2))
            {
                route.Add(("process", Str(process)));
            }
            if (Chance(3))
            {
                route.Add(("protocol", Str("tcp_raw")));
                route.Add(("listen_port", (rawPort++).ToString(CultureInfo.InvariantCulture)));
            }
            else if (Chance(3))
            {
                route.Add(("listen_port", "443"));
            }
            if (Chance(3))
            {
                route.Add(("proxy_protocol", Str("v2")));
                route.Add(("backend_expects_proxy_protocol", "true"));
            }
            if (Chance(4))
            {
                route.Add(("ipv4_required", "true"));
            }
            routes.Add(route);
        }

        var volumes = new List<List<(string, string)>>();
        foreach (var process in singleInstance.Take(2))
        {
            var volume = new List<(string, string)>
            {
                ("name", Str("v" + volumes.Count)),
                ("size", Str(Pick(new[] { "16Mi", "1Gi", "10Gi" }))),
            };
            if (process != "web" || Chance(2))
            {
                volume.Add(("process", Str(process)));
            }
            if (Chance(3))
            {
                volume.Add(("backup_enabled", Chance(2) ? "true" : "false"));
            }
            volumes.Add(volume);
        }
        return new Spec("app-" + _random.Next(100), processes, routes, volumes);
    }

    // ---- writing it in a random style ---------------------------------------------------------------

    private string Render(Spec spec)
    {
        var rootLines = new List<string> { Line("app", Str(spec.App)) };
        var sections = new List<List<string>>();
        var routeSections = new List<List<string>>();
        var volumeSections = new List<List<string>>();

        foreach (var p in spec.Processes)
        {
            var prefix = "processes." + TomlKeys.Quote(p.Name);
            if (Chance(4))
            {
                // Everything as dotted keys at the root.
                rootLines.AddRange(Shuffle(p.Keys).Select(k => Line(prefix + "." + k.Key, k.Toml)));
                foreach (var (key, fields) in p.Subtables)
                {
                    if (Chance(2))
                    {
                        rootLines.Add(Line(prefix + "." + key, Inline(fields)));
                    }
                    else
                    {
                        rootLines.AddRange(fields.Select(f => Line(prefix + "." + key + "." + f.Key, f.Toml)));
                    }
                }
                continue;
            }
            var section = new List<string> { Header($"[{prefix}]") };
            section.AddRange(Shuffle(p.Keys).Select(k => Line(k.Key, k.Toml)));
            foreach (var (key, fields) in p.Subtables)
            {
                switch (_random.Next(3))
                {
                    case 0:
                        section.Add(Line(key, Inline(fields)));
                        break;
                    case 1:
                        section.AddRange(fields.Select(f => Line(key + "." + f.Key, f.Toml)));
                        break;
                    default:
                        var sub = new List<string> { Header($"[{prefix}.{key}]") };
                        sub.AddRange(Shuffle(fields).Select(f => Line(f.Key, f.Toml)));
                        sections.Add(sub);
                        break;
                }
            }
            sections.Add(section);
        }

        RenderArray("routes", spec.Routes, rootLines, routeSections);
        RenderArray("volumes", spec.Volumes, rootLines, volumeSections);

        var sb = new StringBuilder();
        if (Chance(3))
        {
            sb.Append(Comment()).Append("\n\n");
        }
        foreach (var line in Shuffle(rootLines))
        {
            sb.Append(line);
        }
        // Sections in random order, but each array's elements keep their relative order.
        var queue = Shuffle(sections).Select(s => (s, 0)).ToList();
        var ordered = new List<List<string>>();
        var r = 0;
        var v = 0;
        foreach (var (section, _) in queue)
        {
            while (r < routeSections.Count && Chance(2))
            {
                ordered.Add(routeSections[r++]);
            }
            while (v < volumeSections.Count && Chance(2))
            {
                ordered.Add(volumeSections[v++]);
            }
            ordered.Add(section);
        }
        ordered.AddRange(routeSections.Skip(r));
        ordered.AddRange(volumeSections.Skip(v));
        foreach (var section in ordered)
        {
            if (Chance(2))
            {
                sb.Append('\n');
            }
            foreach (var line in section)
            {
                sb.Append(line);
            }
        }
        if (Chance(3))
        {
            sb.Append('\n').Append(Comment()).Append('\n');
        }
        return sb.ToString();
    }

    private void RenderArray(string name, List<List<(string Key, string Toml)>> elements, List<string> rootLines, List<List<string>> sections)
    {
        if (elements.Count == 0)
        {
            return;
        }
        if (Chance(3))
        {
            var sb = new StringBuilder();
            sb.Append(name).Append(" = [");
            foreach (var element in elements)
            {
                sb.Append("\n  ");
                if (Chance(4))
                {
                    sb.Append(Comment()).Append("\n  ");
                }
                sb.Append(Inline(element)).Append(',');
                if (Chance(4))
                {
                    sb.Append(' ').Append(Comment());
                }
            }
            sb.Append("\n]\n");
            rootLines.Add(sb.ToString());
            return;
        }
        foreach (var element in elements)
        {
            var section = new List<string> { Header($"[[{name}]]") };
            section.AddRange(Shuffle(element).Select(f => Line(f.Key, f.Toml)));
            sections.Add(section);
        }
    }

    private string Header(string header)
    {
        var lead = Chance(5) ? Comment() + "\n" : "";
        var trail = Chance(5) ? " " + Comment() : "";
        return lead + header + trail + "\n";
    }

    private string Line(string key, string value)
    {
        var lead = Chance(6) ? Comment() + "\n" : "";
        var trail = Chance(6) ? "  " + Comment() : "";
        var spacing = Chance(5) ? " =  " : " = ";
        return lead + key + spacing + value + trail + "\n";
    }

    private static string Inline(IEnumerable<(string Key, string Toml)> fields) =>
        "{ " + string.Join(", ", fields.Select(f => f.Key + " = " + f.Toml)) + " }";

    private string Comment()
    {
        var text = $" note {++_commentCounter}";
        Comments.Add(text);
        return "#" + text;
    }

    private string Str(string value) =>
        Chance(3) && !value.Contains('\'') && !value.Any(c => c < 0x20) ? "'" + value + "'" : TomlStrings.QuoteBasic(value);

    private bool Chance(int oneIn) => _random.Next(oneIn) == 0;

    private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

    private List<T> Shuffle<T>(IEnumerable<T> items) => items.OrderBy(_ => _random.Next()).ToList();
}
