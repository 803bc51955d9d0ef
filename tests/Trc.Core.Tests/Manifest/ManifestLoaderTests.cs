using System.Text;
using Trc.Core.Manifest;

namespace Trc.Core.Tests.Manifest;

public sealed class ManifestLoaderTests
{
    internal static string ExamplePath => Path.Combine(SharedTestData.RepositoryRoot, "examples", "shop", "trc.toml");

    private const string Minimal = """
        app = "shop"
        [processes.web]
        memory = "512Mi"
        """;

    [Fact]
    public void The_example_manifest_is_valid()
    {
        var result = ManifestLoader.Load(File.ReadAllBytes(ExamplePath));
        Assert.True(result.IsValid, string.Join("\n", result.Diagnostics));
        var web = result.Manifest!.FindProcess("web")!;
        Assert.Equal(["/app/server", "--port", "8443"], web.Command);
        Assert.Equal(512L << 20, web.MemoryBytes);
        Assert.Equal(0.5m, web.Cpu);
        Assert.Equal(new HealthcheckSpec(HealthcheckKind.Tcp, 8443, null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2)), web.Healthcheck);
        Assert.Equal("/mnt/volumes/data", result.Manifest.Volumes[0].MountPath);
    }

    [Fact]
    public void Defaults_are_filled()
    {
        var manifest = Load(Minimal + """

            ports = [8443]
            [[routes]]
            hostname = "shop.example.com"
            backend_port = 8443
            [[volumes]]
            name = "data"
            size = "1Gi"
            """);
        var web = manifest.Processes.Single();
        Assert.Null(web.Command);
        Assert.Equal(1m, web.Cpu);
        Assert.Null(web.User);
        Assert.Equal(new ScalingSpec(1, 1), web.Scaling);
        Assert.Null(web.Healthcheck);
        Assert.Equal(new RouteSpec("shop.example.com", 443, RouteProtocol.TlsPassthrough, "web", 8443, ProxyProtocolMode.Off, false, false), manifest.Routes.Single());
        Assert.Equal(new VolumeSpec("data", 1L << 30, "web", true), manifest.Volumes.Single());
    }

    [Theory]
    [InlineData("min = 3", 3, 3)]
    [InlineData("max = 4", 1, 4)]
    [InlineData("min = 0", 0, 1)]
    [InlineData("min = 0\nmax = 5", 0, 5)]
    public void Scaling_max_defaults_to_min_and_at_least_one(string scaling, int min, int max)
    {
        var manifest = Load(Minimal + "\n[processes.web.scaling]\n" + scaling + "\n");
        Assert.Equal(new ScalingSpec(min, max), manifest.Processes.Single().Scaling);
    }

    [Fact]
    public void Health_check_defaults_apply_to_http_checks()
    {
        var manifest = Load(Minimal + "\nports = [80]\nhealthcheck.http = { port = 80 }\n");
        Assert.Equal(new HealthcheckSpec(HealthcheckKind.Http, 80, "/", TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(2)), manifest.Processes.Single().Healthcheck);
    }

    [Fact]
    public void Processes_are_ordered_web_first_then_by_name()
    {
        var manifest = Load("""
            app = "a"
            processes.zeta.memory = "128Mi"
            processes.alpha.memory = "128Mi"
            processes.web.memory = "128Mi"
            """);
        Assert.Equal(["web", "alpha", "zeta"], manifest.Processes.Select(p => p.Name));
    }

    // Each case: a manifest fragment appended to a valid base, the path and a piece of the message expected.
    [Theory]
    [InlineData("app = \"shop\"\n", "processes", "is required")]
    [InlineData("app = \"Shop\"\n[processes.web]\nmemory = \"1Gi\"\n", "app", "is not a valid name")]
    [InlineData("app = 7\n[processes.web]\nmemory = \"1Gi\"\n", "app", "expected a string, found an integer")]
    [InlineData("app = \"a\"\nprocesses = {}\n", "processes", "needs at least 1 entry")]
    [InlineData("app = \"a\"\n[processes.Web]\nmemory = \"1Gi\"\n", "processes.Web", "is not a valid name")]
    [InlineData("app = \"a\"\n[processes.web]\ncpu = 1\n", "processes.web.memory", "is required")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"512\"\n", "processes.web.memory", "write a whole number and a unit")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"512MB\"\n", "processes.web.memory", "units: Ki, Mi, Gi, Ti")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Mi\"\n", "processes.web.memory", "must be between 128Mi and 1Ti")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"2Ti\"\n", "processes.web.memory", "must be between 128Mi and 1Ti")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = 512\n", "processes.web.memory", "expected a string, found an integer")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncpu = -1\n", "processes.web.cpu", "must be greater than 0 and at most 64")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncpu = 0.0001\n", "processes.web.cpu", "at most 3 decimal places")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncpu = \"1\"\n", "processes.web.cpu", "expected a number, found a string")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncpu = nan\n", "processes.web.cpu", "is not a usable number")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [8443.0]\n", "processes.web.ports[0]", "expected an integer, found a float")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [0]\n", "processes.web.ports[0]", "between 1 and 65535")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80, 80]\n", "processes.web.ports[1]", "listed twice")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = 80\n", "processes.web.ports", "expected an array, found an integer")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncommand = []\n", "processes.web.command", "must not be empty")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncommand = [\"\"]\n", "processes.web.command[0]", "the program to run must not be empty")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncommand = \"/bin/app\"\n", "processes.web.command", "expected an array, found a string")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncommand = [\"a\\u0000b\"]\n", "processes.web.command[0]", "NUL")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nuser = \"root user\"\n", "processes.web.user", "is not a user")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nmemroy = \"1Gi\"\n", "processes.web.memroy", "did you mean memory?")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nscaling = { min = 3, max = 2 }\n", "processes.web.scaling.min", "min (3) is greater than max (2)")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nscaling.max = 0\n", "processes.web.scaling.max", "between 1 and 1000")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80]\nhealthcheck = { interval = \"5s\" }\n", "processes.web.healthcheck", "needs one of tcp or http")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80]\nhealthcheck = { tcp = 80, http = { port = 80 } }\n", "processes.web.healthcheck", "set only one of tcp or http")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80]\nhealthcheck.tcp = 81\n", "processes.web.healthcheck.tcp", "port 81 is not one of the process's ports (80)")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nhealthcheck.http = { port = 80 }\n", "processes.web.healthcheck.http.port", "none declared")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80]\nhealthcheck.http = { port = 80, path = \"healthz\" }\n", "processes.web.healthcheck.http.path", "must start with '/'")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80]\nhealthcheck = { tcp = 80, interval = \"1s\", timeout = \"2s\" }\n", "processes.web.healthcheck.timeout", "longer than the interval")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80]\nhealthcheck = { tcp = 80, interval = \"0s\" }\n", "processes.web.healthcheck.interval", "is not a duration")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80]\nhealthcheck = { tcp = 80, interval = \"2h\" }\n", "processes.web.healthcheck.interval", "between 1s and 1h")]
    public void Each_rule_is_reported_with_its_path(string toml, string path, string message)
    {
        var result = ManifestLoader.Load(toml);
        Assert.False(result.IsValid);
        Assert.True(result.Diagnostics.Any(d => d.Path == path && d.Message.Contains(message, StringComparison.Ordinal)),
            $"expected {path}: ...{message}..., got:\n{string.Join("\n", result.Diagnostics)}");
    }

    private const string WebWithPorts = "app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [8443, 5432]\n";

    [Theory]
    [InlineData("[[routes]]\nbackend_port = 8443\n", "routes[0].hostname", "is required")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\n", "routes[0].backend_port", "is required")]
    [InlineData("[[routes]]\nhostname = \"Shop.example.com\"\nbackend_port = 8443\n", "routes[0].hostname", "lower-case hostname")]
    [InlineData("[[routes]]\nhostname = \"localhost\"\nbackend_port = 8443\n", "routes[0].hostname", "fully qualified")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com.\"\nbackend_port = 8443\n", "routes[0].hostname", "fully qualified")]
    [InlineData("[[routes]]\nhostname = \"10.0.0.1\"\nbackend_port = 8443\n", "routes[0].hostname", "fully qualified")]
    [InlineData("[[routes]]\nhostname = \"a.*.example.com\"\nbackend_port = 8443\n", "routes[0].hostname", "fully qualified")]
    [InlineData("[[routes]]\nhostname = \"-a.example.com\"\nbackend_port = 8443\n", "routes[0].hostname", "fully qualified")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\nprotocol = \"tcp\"\n", "routes[0].protocol", "is not one of \"tls_passthrough\", \"tcp_raw\"")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\nprotocol = \"tls_passthru\"\n", "routes[0].protocol", "did you mean \"tls_passthrough\"?")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\nproxy_protocol = \"v1\"\n", "routes[0].proxy_protocol", "is not one of \"off\", \"v2\"")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\nproxy_protocol = \"v2\"\n", "routes[0].backend_expects_proxy_protocol", "set backend_expects_proxy_protocol = true")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\nproxy_protocol = \"v2\"\nbackend_expects_proxy_protocol = false\n", "routes[0].backend_expects_proxy_protocol", "set backend_expects_proxy_protocol = true")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\nlisten_port = 70000\n", "routes[0].listen_port", "between 1 and 65535")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 9999\n", "routes[0].backend_port", "port 9999 is not one of process web's ports (8443, 5432)")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\nprocess = \"api\"\n", "routes[0].process", "there is no process named \"api\" (processes: web)")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\nipv4_required = \"yes\"\n", "routes[0].ipv4_required", "expected a boolean")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\n[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 5432\n", "routes[1].hostname", "shop.example.com:443 is already routed by routes[0]")]
    [InlineData("[[routes]]\nhostname = \"db.example.com\"\nprotocol = \"tcp_raw\"\nlisten_port = 5432\nbackend_port = 5432\n[[routes]]\nhostname = \"db2.example.com\"\nprotocol = \"tcp_raw\"\nlisten_port = 5432\nbackend_port = 5432\n", "routes[1].listen_port", "needs a listen_port of its own")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\n[[routes]]\nhostname = \"db.example.com\"\nprotocol = \"tcp_raw\"\nbackend_port = 5432\n", "routes[1].listen_port", "port 443 is also used by routes[0]")]
    [InlineData("[[routes]]\nhostname = \"shop.example.com\"\nbackend_port = 8443\ncolour = \"blue\"\n", "routes[0].colour", "unknown key")]
    [InlineData("[[volumes]]\nname = \"data\"\n", "volumes[0].size", "is required")]
    [InlineData("[[volumes]]\nsize = \"1Gi\"\n", "volumes[0].name", "is required")]
    [InlineData("[[volumes]]\nname = \"data\"\nsize = \"1Ki\"\n", "volumes[0].size", "between 16Mi and 16Ti")]
    [InlineData("[[volumes]]\nname = \"data\"\nsize = \"1Gi\"\nprocess = \"db\"\n", "volumes[0].process", "there is no process named \"db\"")]
    [InlineData("[[volumes]]\nname = \"data\"\nsize = \"1Gi\"\n[[volumes]]\nname = \"data\"\nsize = \"2Gi\"\n", "volumes[1].name", "volumes[0] is also named \"data\"")]
    [InlineData("[[volumes]]\nname = \"data\"\nsize = \"1Gi\"\nbackup_enabled = 1\n", "volumes[0].backup_enabled", "expected a boolean")]
    [InlineData("[processes.web.scaling]\nmax = 3\n[[volumes]]\nname = \"data\"\nsize = \"1Gi\"\n", "volumes[0].process", "a volume attaches to one instance")]
    [InlineData("routes = \"none\"\n", "routes", "expected an array, found a string")]
    [InlineData("region = \"eu\"\n", "region", "unknown key")]
    public void Each_route_and_volume_rule_is_reported_with_its_path(string tail, string path, string message)
    {
        var toml = tail.StartsWith("routes = ", StringComparison.Ordinal) || tail.StartsWith("region", StringComparison.Ordinal)
            ? tail + WebWithPorts
            : WebWithPorts + tail;
        Each_rule_is_reported_with_its_path(toml, path, message);
    }

    [Fact]
    public void All_problems_are_reported_at_once_in_position_order()
    {
        var result = ManifestLoader.Load("""
            app = "Bad"
            [processes.web]
            memory = "lots"
            cpu = 0
            [[routes]]
            hostname = "x"
            backend_port = 1
            process = "nope"
            """);
        var paths = result.Diagnostics.Select(d => d.Path).ToList();
        Assert.Equal(["app", "processes.web.memory", "processes.web.cpu", "routes[0].hostname", "routes[0].process"], paths);
        Assert.Equal(result.Diagnostics.OrderBy(d => d.Position.Line).ThenBy(d => d.Position.Column), result.Diagnostics);
    }

    [Fact]
    public void A_diagnostic_prints_as_file_line_column_path_message()
    {
        var result = ManifestLoader.Load("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncpu = 0\n");
        Assert.Equal("trc.toml:4:7: processes.web.cpu: 0 is out of range: must be greater than 0 and at most 64", result.Diagnostics.Single().Format("trc.toml"));
    }

    [Fact]
    public void A_toml_syntax_error_is_one_positioned_diagnostic()
    {
        var result = ManifestLoader.Load("app = \"a\"\n[processes.web\n");
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(ManifestDiagnosticKind.Syntax, d.Kind);
        Assert.Equal(2, d.Position.Line);
        Assert.Null(result.Document);
    }

    [Fact]
    public void Unknown_key_positions_point_at_the_key()
    {
        var result = ManifestLoader.Load("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\n  colour = 1\n");
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(new Trc.Core.Toml.TomlPosition(4, 3), d.Position);
    }

    [Fact]
    public void Names_that_need_quotes_are_quoted_in_paths()
    {
        var result = ManifestLoader.Load("app = \"a\"\n[processes.\"my web\"]\nmemory = \"1Gi\"\n");
        Assert.Contains(result.Diagnostics, d => d.Path == "processes.\"my web\"");
    }

    [Fact]
    public void A_valid_manifest_loads_the_same_from_bytes_and_from_text()
    {
        var text = File.ReadAllText(ExamplePath);
        Assert.Equal(
            ManifestJson.Serialize(ManifestLoader.Load(text).Manifest!),
            ManifestJson.Serialize(ManifestLoader.Load(Encoding.UTF8.GetBytes(text)).Manifest!));
    }

    private static AppManifest Load(string toml)
    {
        var result = ManifestLoader.Load(toml);
        Assert.True(result.IsValid, string.Join("\n", result.Diagnostics));
        return result.Manifest!;
    }
}
