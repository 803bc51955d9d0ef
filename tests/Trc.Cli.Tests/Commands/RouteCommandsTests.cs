using System.Text.Json;

namespace Trc.Cli.Tests.Commands;

/// <summary><c>trc routes</c>, <c>trc ipv4</c> and <c>trc volumes</c> against a real server.</summary>
public sealed class RouteCommandsTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    private static string Host() => CliServerFixture.NewName("h") + ".example.com";

    [Fact]
    public async Task A_route_is_created_listed_and_deleted()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var host = Host();

        var created = await user.OkAsync("routes", "create", "--hostname", host, "--backend-port", "8443");
        Assert.Equal($"Created route {host}:443 (tls_passthrough) -> web:8443 in {user.Environment["TRC_ORG"]}/shop/prod.\n", created.Stdout);

        var table = await user.OkAsync("routes");
        Assert.Matches(@"^HOSTNAME\s+PORT\s+PROTOCOL\s+PROCESS\s+BACKEND\s+PROXY\s+IPV4\n", table.Stdout);
        Assert.Matches($@"(?m)^{host.Replace(".", @"\.", StringComparison.Ordinal)}\s+443\s+tls_passthrough\s+web\s+8443\s+off\s+no$", table.Stdout);

        using (var json = JsonDocument.Parse((await user.OkAsync("routes", "list", "--json")).Stdout))
        {
            var route = Assert.Single(json.RootElement.GetProperty("items").EnumerateArray());
            Assert.Equal(host, route.GetProperty("hostname").GetString());
            Assert.Equal(8443, route.GetProperty("backend_port").GetInt32());
        }

        await user.OkAsync("routes", "delete", host);
        Assert.DoesNotContain(host, (await user.OkAsync("routes")).Stdout);

        var again = await user.RunAsync("routes", "delete", host);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("404", again.Stderr);
    }

    [Fact]
    public async Task Route_rules_are_refused_with_the_field_named()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());

        var proxy = await user.RunAsync("routes", "create", "--hostname", Host(), "--backend-port", "8443", "--proxy-protocol", "v2");
        Assert.Equal(1, proxy.ExitCode);
        Assert.Contains("backend_expects_proxy_protocol", proxy.Stderr);

        var port = await user.RunAsync("routes", "create", "--hostname", Host(), "--port", "25", "--protocol", "tcp_raw", "--backend-port", "25");
        Assert.Equal(1, port.ExitCode);
        Assert.Contains("listen_port", port.Stderr);

        var ipv4 = await user.RunAsync("routes", "create", "--hostname", Host(), "--backend-port", "8443", "--ipv4-required");
        Assert.Equal(1, ipv4.ExitCode);
        Assert.Contains("ipv4", ipv4.Stderr);

        var protocol = await user.RunAsync("routes", "create", "--hostname", Host(), "--backend-port", "8443", "--protocol", "udp");
        Assert.Equal(2, protocol.ExitCode);

        Assert.Single((await user.OkAsync("routes")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)); // the header alone
    }

    [Fact]
    public async Task A_hostname_moves_between_envs_only_with_move()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        await user.OkAsync("envs", "create", "staging");
        var host = Host();
        await user.OkAsync("routes", "create", "--hostname", host, "--backend-port", "8443", "--env", "staging");

        var taken = await user.RunAsync("routes", "create", "--hostname", host, "--backend-port", "8443");
        Assert.Equal(1, taken.ExitCode);
        Assert.Contains("409", taken.Stderr);
        Assert.Contains($"hostname {host} is bound to {user.Environment["TRC_ORG"]}/shop/staging", taken.Stderr);
        Assert.Contains("--move", taken.Stderr);
        Assert.Contains(host, (await user.OkAsync("routes", "--env", "staging")).Stdout);

        await user.OkAsync("routes", "create", "--hostname", host, "--backend-port", "8443", "--move");
        Assert.Contains(host, (await user.OkAsync("routes")).Stdout);
        Assert.DoesNotContain(host, (await user.OkAsync("routes", "--env", "staging")).Stdout);
        var audit = await user.OkAsync("events", "--type", "hostname.moved");
        Assert.Matches(@"(?m)^\d+\s+\S+ \S+\s+hostname\.moved\s+hostname/", audit.Stdout); // the move is in the org's audit log
    }

    [Fact]
    public async Task The_ipv4_add_on_takes_an_address_from_the_pool_and_gives_it_back()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());

        var off = await user.RunAsync("ipv4");
        Assert.Equal(1, off.ExitCode);
        Assert.Contains("404", off.Stderr);

        var enabled = await user.OkAsync("ipv4", "enable");
        Assert.Matches(@"^Env prod has the IPv4 address 203\.0\.113\.1[0-2] \(ports [0-9, ]+\)\.\n$", enabled.Stdout);
        var address = enabled.Stdout.Split(' ')[6];

        var shown = await user.OkAsync("ipv4", "show");
        Assert.Matches($@"(?m)^address:\s+{address.Replace(".", @"\.", StringComparison.Ordinal)}$", shown.Stdout);
        using (var json = JsonDocument.Parse((await user.OkAsync("ipv4", "--json")).Stdout))
        {
            Assert.Equal(address, json.RootElement.GetProperty("address").GetString());
        }

        var host = Host();
        await user.OkAsync("routes", "create", "--hostname", host, "--backend-port", "8443", "--ipv4-required");
        var busy = await user.RunAsync("ipv4", "disable");
        Assert.Equal(1, busy.ExitCode);
        Assert.Contains(host, busy.Stderr);

        await user.OkAsync("routes", "delete", host);
        Assert.Equal("Env prod no longer has a dedicated IPv4 address.\n", (await user.OkAsync("ipv4", "disable")).Stdout);
        Assert.Equal(1, (await user.RunAsync("ipv4")).ExitCode);
    }

    [Fact]
    public async Task Volumes_are_declared_listed_and_removed()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());

        var created = await user.OkAsync("volumes", "create", "data", "--size", "10Gi");
        Assert.Equal("Declared volume data (10Gi, process web, mounted at /mnt/volumes/data).\n", created.Stdout);
        await user.OkAsync("volumes", "create", "scratch", "--size", "512Mi", "--process", "worker", "--no-backup");

        var table = await user.OkAsync("volumes");
        Assert.Matches(@"^NAME\s+SIZE\s+PROCESS\s+BACKUP\s+MOUNT\n", table.Stdout);
        Assert.Matches(@"(?m)^data\s+10Gi\s+web\s+yes\s+/mnt/volumes/data$", table.Stdout);
        Assert.Matches(@"(?m)^scratch\s+512Mi\s+worker\s+no\s+/mnt/volumes/scratch$", table.Stdout);

        using (var json = JsonDocument.Parse((await user.OkAsync("volumes", "list", "--json")).Stdout))
        {
            Assert.Equal(2, json.RootElement.GetProperty("items").GetArrayLength());
        }

        var badSize = await user.RunAsync("volumes", "create", "big", "--size", "ten");
        Assert.Equal(1, badSize.ExitCode);
        Assert.Contains("size", badSize.Stderr);
        var twice = await user.RunAsync("volumes", "create", "data", "--size", "1Gi");
        Assert.Equal(1, twice.ExitCode);
        Assert.Contains("409", twice.Stderr);

        Assert.Equal("Removed volume scratch.\n", (await user.OkAsync("volumes", "delete", "scratch")).Stdout);
        Assert.DoesNotContain("scratch", (await user.OkAsync("volumes")).Stdout);
    }
}
