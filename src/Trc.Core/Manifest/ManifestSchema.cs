using System.Text.Encodings.Web;
using System.Text.Json;
using Trc.Core.Manifest.Schema;

namespace Trc.Core.Manifest;

/// <summary>
/// The one definition of <c>trc.toml</c>'s shape. <see cref="ManifestLoader"/> validates with it,
/// <see cref="ManifestFormatter"/> takes its key order from it, and <see cref="ToJsonSchema"/> prints
/// it as the JSON Schema checked in at <c>docs/manifest.schema.json</c>.
/// </summary>
public static class ManifestSchema
{
    /// <summary>Names of apps, processes and volumes: a DNS label of at most 32 characters.</summary>
    public const string NamePattern = "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$";

    /// <summary>A lower-case fully qualified hostname, optionally <c>*.</c> then a name; the last label starts with a letter.</summary>
    public const string HostnamePattern = @"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$";

    /// <summary>A user, or user:group, by name or numeric id.</summary>
    public const string UserPattern = "^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})(:([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10}))?$";

    /// <summary>The default process type routes and volumes refer to.</summary>
    public const string DefaultProcess = "web";

    /// <summary>
    /// Smallest memory cap: the stock guest kernel (Debian's, 66 MB uncompressed) does not boot in
    /// 80 MiB (it panics out of memory, or hangs without a word at 64 MiB); 128 MiB leaves the app
    /// about 40 MiB (ADR 0014).
    /// </summary>
    public const long MinMemoryBytes = 128L << 20;

    /// <summary>Largest memory cap.</summary>
    public const long MaxMemoryBytes = 1L << 40;

    /// <summary>Smallest volume.</summary>
    public const long MinVolumeBytes = 16L << 20;

    /// <summary>Largest volume.</summary>
    public const long MaxVolumeBytes = 16L << 40;

    private const string NameMessage = "\"{0}\" is not a valid name: use 1-32 lower-case letters, digits and '-', starting with a letter and not ending with '-'";

    private static readonly IntegerNode Port = new() { Minimum = 1, Maximum = 65535, Description = "A TCP port." };

    /// <summary><c>[processes.NAME.healthcheck]</c>.</summary>
    public static ObjectNode Healthcheck { get; } = new()
    {
        Description = "How instances are checked. Exactly one of tcp or http.",
        Fields =
        [
            new Field("tcp", Port),
            new Field("http", new ObjectNode
            {
                Description = "An HTTP GET that must answer 2xx or 3xx.",
                Fields =
                [
                    new Field("port", Port) { Required = true },
                    new Field("path", new StringNode
                    {
                        Pattern = "^/[!-~]*$",
                        PatternMessage = "\"{0}\" is not a path: it must start with '/' and hold only printable ASCII without spaces",
                        MaxLength = 1024,
                        Description = "The path requested.",
                    }) { Default = "/" },
                ],
            }),
            new Field("interval", DurationNode("Time between checks.", TimeSpan.FromSeconds(1), TimeSpan.FromHours(1))) { Default = "10s" },
            new Field("timeout", DurationNode("How long one check may take.", TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(5))) { Default = "2s" },
        ],
        ExactlyOneOf = ["tcp", "http"],
    };

    /// <summary><c>[processes.NAME.scaling]</c>.</summary>
    public static ObjectNode Scaling { get; } = new()
    {
        Description = "Instance count bounds. max defaults to min (and at least 1).",
        Fields =
        [
            new Field("min", new IntegerNode { Minimum = 0, Maximum = 1000, Description = "Fewest instances." }) { Default = 1L },
            new Field("max", new IntegerNode { Minimum = 1, Maximum = 1000, Description = "Most instances." }),
        ],
    };

    /// <summary><c>[processes.NAME]</c>.</summary>
    public static ObjectNode Process { get; } = new()
    {
        Description = "A process type. Each instance is one microVM running this one command.",
        Fields =
        [
            new Field("command", new ArrayNode
            {
                Description = "The argv to run. Defaults to the image's Entrypoint and Cmd.",
                Items = new StringNode { Rule = s => s.Contains('\0', StringComparison.Ordinal) ? "must not contain a NUL character" : null },
                MinItems = 1,
                MaxItems = 256,
            }),
            new Field("ports", new ArrayNode { Description = "TCP ports the process listens on.", Items = Port, UniqueItems = true, MaxItems = 64 }),
            new Field("cpu", new NumberNode
            {
                Description = "Requested vCPUs: a soft share (cgroup weight), never a limit. At most 3 decimal places.",
                ExclusiveMinimum = 0,
                Maximum = 64,
                Rule = cpu => decimal.Round(cpu, 3) != cpu ? "use at most 3 decimal places (0.001 vCPU steps)" : null,
            }) { Default = 1m },
            new Field("memory", SizeNode("The hard memory cap and the microVM's RAM, like \"512Mi\" or \"2Gi\".", MinMemoryBytes, MaxMemoryBytes)) { Required = true },
            new Field("user", new StringNode
            {
                Description = "Run as this user (name or uid, optionally :group). Root when absent.",
                Pattern = UserPattern,
                PatternMessage = "\"{0}\" is not a user: use a name or a numeric uid, optionally followed by :group",
            }),
            new Field("scaling", Scaling),
            new Field("healthcheck", Healthcheck),
        ],
    };

    /// <summary>One element of <c>[[routes]]</c>.</summary>
    public static ObjectNode Route { get; } = new()
    {
        Description = "A public route: a hostname and port on the edge, forwarded to a process's port.",
        Fields =
        [
            new Field("hostname", new StringNode
            {
                Description = "Fully qualified, lower-case hostname; \"*.\" may replace the first label.",
                Pattern = HostnamePattern,
                PatternMessage = "\"{0}\" is not a fully qualified lower-case hostname (like \"shop.example.com\" or \"*.example.com\")",
                MaxLength = 253,
            }) { Required = true },
            new Field("listen_port", Port) { Default = 443L },
            new Field("protocol", new StringNode
            {
                Description = "tls_passthrough routes TLS by SNI without terminating it; tcp_raw routes by port alone.",
                Enum = ["tls_passthrough", "tcp_raw"],
            }) { Default = "tls_passthrough" },
            new Field("process", new StringNode { Description = "The process type that receives the connections.", Pattern = NamePattern, PatternMessage = NameMessage }) { Default = DefaultProcess },
            new Field("backend_port", Port) { Required = true },
            new Field("proxy_protocol", new StringNode { Description = "v2 prepends a PROXY protocol v2 header with the client's address.", Enum = ["off", "v2"] }) { Default = "off" },
            new Field("backend_expects_proxy_protocol", new BooleanNode { Description = "Must be true when proxy_protocol is v2: the backend parses the header." }) { Default = false },
            new Field("ipv4_required", new BooleanNode { Description = "Also serve the route on the env's dedicated IPv4 address (needs the IPv4 add-on)." }) { Default = false },
        ],
        Implications =
        [
            new Implication("proxy_protocol", "v2", "backend_expects_proxy_protocol", true,
                "proxy_protocol = \"v2\" puts a PROXY header in front of every connection; set backend_expects_proxy_protocol = true to confirm the backend parses it"),
        ],
    };

    /// <summary>One element of <c>[[volumes]]</c>.</summary>
    public static ObjectNode Volume { get; } = new()
    {
        Description = "A persistent volume, mounted at /mnt/volumes/NAME in the process's instance.",
        Fields =
        [
            new Field("name", new StringNode { Description = "The volume's name.", Pattern = NamePattern, PatternMessage = NameMessage }) { Required = true },
            new Field("size", SizeNode("The volume's size, like \"10Gi\".", MinVolumeBytes, MaxVolumeBytes)) { Required = true },
            new Field("process", new StringNode { Description = "The process type it attaches to.", Pattern = NamePattern, PatternMessage = NameMessage }) { Default = DefaultProcess },
            new Field("backup_enabled", new BooleanNode { Description = "Back the volume up on the platform's schedule." }) { Default = true },
        ],
    };

    /// <summary>The whole file.</summary>
    public static ObjectNode Root { get; } = new()
    {
        Description = "trc.toml: an app's processes, routes and volumes.",
        Fields =
        [
            new Field("app", new StringNode { Description = "The app's name.", Pattern = NamePattern, PatternMessage = NameMessage }) { Required = true },
            new Field("processes", new MapNode(NamePattern, NameMessage, Process)
            {
                Description = "Process types by name; routes and volumes default to \"web\".",
                MinProperties = 1,
            }) { Required = true },
            new Field("routes", new ArrayNode { Description = "Public routes.", Items = Route, MaxItems = 64 }),
            new Field("volumes", new ArrayNode { Description = "Persistent volumes.", Items = Volume, MaxItems = 16 }),
        ],
    };

    /// <summary>The schema as a JSON Schema (draft 2020-12) document, indented, ending with a newline.</summary>
    public static string ToJsonSchema()
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            // Root.WriteSchema writes one object; re-open it to put the header keywords first.
            using var inner = new MemoryStream();
            using (var innerWriter = new Utf8JsonWriter(inner))
            {
                Root.WriteSchema(innerWriter);
            }
            using var doc = JsonDocument.Parse(inner.ToArray());
            writer.WriteStartObject();
            writer.WriteString("$schema", "https://json-schema.org/draft/2020-12/schema");
            writer.WriteString("title", "trc.toml");
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                property.WriteTo(writer);
            }
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static StringNode SizeNode(string description, long min, long max) => new()
    {
        Description = description,
        Pattern = ByteSize.Pattern,
        PatternMessage = "\"{0}\" is not a size: write a whole number and a unit, like \"512Mi\" or \"2Gi\" (units: Ki, Mi, Gi, Ti)",
        Rule = s =>
        {
            if (!ByteSize.TryParse(s, out var bytes, out var error))
            {
                return error;
            }
            return bytes < min || bytes > max ? $"{s} is out of range: must be between {ByteSize.Format(min)} and {ByteSize.Format(max)}" : null;
        },
    };

    private static StringNode DurationNode(string description, TimeSpan min, TimeSpan max) => new()
    {
        Description = description,
        Pattern = Duration.Pattern,
        PatternMessage = "\"{0}\" is not a duration: write a positive whole number and a unit, like \"500ms\", \"5s\", \"2m\" or \"1h\"",
        Rule = s =>
        {
            if (!Duration.TryParse(s, out var value, out var error))
            {
                return error;
            }
            return value < min || value > max ? $"{s} is out of range: must be between {Duration.Format(min)} and {Duration.Format(max)}" : null;
        },
    };
}
