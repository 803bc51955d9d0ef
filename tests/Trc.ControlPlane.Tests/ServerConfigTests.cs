using Trc.Core.Domain;

namespace Trc.ControlPlane.Tests;

/// <summary>The node, overlay and log settings: file, then environment, then flags.</summary>
public sealed class ServerConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("trc-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly Dictionary<string, string?> None = [];

    private string File(string toml)
    {
        var path = Path.Combine(_dir, "server.toml");
        System.IO.File.WriteAllText(path, toml);
        return path;
    }

    [Fact]
    public void The_defaults_are_a_15s_lease_7_days_of_logs_and_the_trc_overlay()
    {
        var options = ServerConfig.Load(null, None, None, _dir);
        Assert.Equal((TimeSpan.FromSeconds(15), TimeSpan.FromDays(7), 100_000, "fd74:7263::/48", null),
            (options.NodeLease, options.LogRetention, options.LogMaxLinesPerEnv, options.OverlayPrefix.Text, options.NodeTokenFile));
    }

    [Fact]
    public void The_file_sets_them_and_the_environment_and_flags_override_it()
    {
        var file = File("""
            node_token_file = "/etc/trc/node.token"
            overlay_prefix = "fd00:1:2::/48"
            node_lease = "30s"
            log_retention = "14d"
            log_max_lines_per_env = 5000
            """);
        var fromFile = ServerConfig.Load(file, None, None, _dir);
        Assert.Equal(("/etc/trc/node.token", "fd00:1:2::/48", TimeSpan.FromSeconds(30), TimeSpan.FromDays(14), 5000),
            (fromFile.NodeTokenFile, fromFile.OverlayPrefix.Text, fromFile.NodeLease, fromFile.LogRetention, fromFile.LogMaxLinesPerEnv));

        var environment = new Dictionary<string, string?> { ["TRC_NODE_LEASE"] = "1m", ["TRC_LOG_RETENTION"] = "2h", ["TRC_NODE_TOKEN_FILE"] = "/run/node.token" };
        var flags = new Dictionary<string, string?> { ["overlay_prefix"] = "fd00:9::/48", ["node_lease"] = "5s" };
        var overridden = ServerConfig.Load(file, environment, flags, _dir);
        Assert.Equal(("/run/node.token", "fd00:9::/48", TimeSpan.FromSeconds(5), TimeSpan.FromHours(2), 5000),
            (overridden.NodeTokenFile, overridden.OverlayPrefix.Text, overridden.NodeLease, overridden.LogRetention, overridden.LogMaxLinesPerEnv));
    }

    [Theory]
    [InlineData("overlay_prefix", "2001:db8::/48", "unique local")]
    [InlineData("overlay_prefix", "fd00::/32", "/48")]
    [InlineData("node_lease", "15", "not a duration")]
    [InlineData("node_lease", "2d", "out of range")]
    [InlineData("log_retention", "30s", "out of range")]
    [InlineData("log_max_lines_per_env", "0", "whole number")]
    [InlineData("overlay_prefix", "", "not an IPv6 prefix")]
    [InlineData("overlay_prefix", "fd74:7263::1/48", "bits set")]
    [InlineData("overlay_prefix", "fd74:7263::/48/1", "not an IPv6 prefix")]
    [InlineData("overlay_prefix", "fd74:7263::%eth0/48", "not an IPv6 prefix")]
    [InlineData("overlay_prefix", "10.0.0.0/8", "not an IPv6 prefix")]
    [InlineData("overlay_prefix", "fd74:7263::\u001b[2J/48", "not an IPv6 prefix")]
    [InlineData("node_lease", "", "not a duration")]
    [InlineData("node_lease", "-5s", "not a duration")]
    [InlineData("node_lease", "1.5s", "not a duration")]
    [InlineData("node_lease", "15 s", "not a duration")]
    [InlineData("node_lease", "15S", "not a duration")]
    [InlineData("node_lease", "999999999h", "not a duration")]
    [InlineData("node_lease", "500ms", "out of range")]
    [InlineData("log_retention", "0d", "not a duration")]
    [InlineData("log_retention", "07d", "not a duration")]
    [InlineData("log_retention", "36501d", "not a duration")]
    [InlineData("log_retention", "3651d", "out of range")]
    [InlineData("log_retention", "1w", "not a duration")]
    [InlineData("log_max_lines_per_env", "-1", "whole number")]
    [InlineData("log_max_lines_per_env", "1e6", "whole number")]
    [InlineData("log_max_lines_per_env", "100000001", "whole number")]
    [InlineData("log_max_lines_per_env", "99999999999999999999", "whole number")]
    public void A_bad_value_names_its_setting(string key, string value, string message)
    {
        var e = Assert.Throws<ServerConfigException>(() => ServerConfig.Load(null, None, new Dictionary<string, string?> { [key] = value }, _dir));
        Assert.StartsWith(key + " ", e.Message, StringComparison.Ordinal);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(e.Message, char.IsControl);
    }

    [Theory]
    [InlineData("overlay_prefix")]
    [InlineData("node_lease")]
    [InlineData("log_retention")]
    [InlineData("log_max_lines_per_env")]
    public void An_oversized_value_is_refused_without_echoing_it_whole(string key)
    {
        var value = new string('9', 100_000);
        var e = Assert.Throws<ServerConfigException>(() => ServerConfig.Load(null, None, new Dictionary<string, string?> { [key] = value }, _dir));
        Assert.StartsWith(key + " ", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Length < 500, e.Message);
    }

    [Theory]
    [InlineData("node_lease = 15\n", "node_lease", "expected a string")]
    [InlineData("log_retention = 7.0\n", "log_retention", "expected a string")]
    [InlineData("overlay_prefix = [\"fd00::/48\"]\n", "overlay_prefix", "expected a string")]
    [InlineData("node_token_file = true\n", "node_token_file", "expected a string")]
    [InlineData("log_max_lines_per_env = 1.5\n", "log_max_lines_per_env", "expected a whole number")]
    [InlineData("node_leases = \"15s\"\n", "node_leases", "unknown key")]
    [InlineData("node_lease = \"15s\"\nnode_lease = \"20s\"\n", "node_lease", "")]
    public void A_wrongly_typed_or_unknown_node_or_log_key_in_the_file_names_it_and_its_line(string toml, string key, string message)
    {
        var e = Assert.Throws<ServerConfigException>(() => ServerConfig.Load(File(toml), None, None, _dir));
        Assert.Matches(@"server\.toml:\d+:\d+", e.Message);
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrongly_typed_key_in_the_file_names_its_line()
    {
        var e = Assert.Throws<ServerConfigException>(() => ServerConfig.Load(File("log_max_lines_per_env = \"many\"\n"), None, None, _dir));
        Assert.Contains(":1:", e.Message, StringComparison.Ordinal);
        Assert.Contains("log_max_lines_per_env", e.Message, StringComparison.Ordinal);
        Assert.Equal(OverlayNetwork.Default, ServerConfig.Load(null, None, None, _dir).OverlayPrefix);
    }

    [Theory]
    [InlineData("127.0.0.1:7080", "http://127.0.0.1:7080")]
    [InlineData("http://[::]:7080", "http://[::]:7080")]
    [InlineData("https://0.0.0.0:443", "https://0.0.0.0:443")]
    public void Listen_takes_a_url_or_host_and_port(string value, string url)
    {
        var flags = new Dictionary<string, string?> { ["listen"] = value };
        Assert.Equal(url, ServerConfig.Load(null, None, flags, _dir).Listen);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("ftp://127.0.0.1:21")]
    [InlineData("http://127.0.0.1:7080/api")]
    [InlineData("not an address")]
    [InlineData("http://127.0.0.1:99999")]
    public void A_listen_address_that_is_not_one_is_refused_naming_the_setting(string value)
    {
        var flags = new Dictionary<string, string?> { ["listen"] = value };
        var e = Assert.Throws<ServerConfigException>(() => ServerConfig.Load(null, None, flags, _dir));
        Assert.Contains("listen", e.Message);
    }
}
