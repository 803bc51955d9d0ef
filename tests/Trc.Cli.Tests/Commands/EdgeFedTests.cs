using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Trc.Cli.Tests.Commands;

/// <summary>
/// <c>trc edge --control-plane</c> against a real server: the edge opens listeners for the routes the
/// control plane has, follows route changes as they are made, and routes by SNI with them. No agent
/// runs here, so the route has no instance and a routed connection ends as backend_unavailable; a
/// name with no route ends as no_route, which tells the two apart.
/// </summary>
public sealed class EdgeFedTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task The_edge_follows_route_changes_from_the_control_plane()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var host = CliServerFixture.NewName("h") + ".example.com";
        await user.OkAsync("routes", "create", "--hostname", host, "--backend-port", "8443");

        using var admin = server.NewSession();
        var tokenFile = admin.WriteFile("admin.token", server.AdminToken + "\n");
        var (tls, other, metricsPort) = (FreePort(), FreePort(), FreePort());
        using var stop = new CancellationTokenSource();
        var edge = admin.RunWithInputAsync(
            ["edge", "--control-plane", server.Url.ToString(), "--token-file", tokenFile, "--listen", "127.0.0.1",
             "--port-map", $"443={tls}", "--port-map", $"8443={other}", "--metrics", $"127.0.0.1:{metricsPort}"],
            null, stop.Token);
        try
        {
            await Until(() => Task.FromResult(Accepts(tls)), "the listener for the existing route opens");
            // The metrics listener starts on its own; the route listener being up says nothing about it.
            await Until(() => Task.FromResult(Accepts(metricsPort)), "the metrics listener opens");
            var before = await Closed(metricsPort, "backend_unavailable");
            await HelloAsync(tls, host);
            await Until(async () => await Closed(metricsPort, "backend_unavailable") > before, "a connection for the route's name is routed (and finds no instance)");
            var noRoute = await Closed(metricsPort, "no_route");
            await HelloAsync(tls, "nobody-" + host);
            await Until(async () => await Closed(metricsPort, "no_route") > noRoute, "a name without a route is refused");
            Assert.Contains($"route=\"{user.Environment["TRC_ORG"]}/shop/prod/{host}:443\"", await MetricsAsync(metricsPort));

            // A new route on another port: a listener opens. Removing the first closes its listener.
            Assert.False(Accepts(other));
            await user.OkAsync("routes", "create", "--hostname", host, "--port", "8443", "--backend-port", "8443");
            await Until(() => Task.FromResult(Accepts(other)), "a route created after the start is served");
            await user.OkAsync("routes", "delete", host);
            await Until(() => Task.FromResult(!Accepts(tls)), "a deleted route's listener closes");
            Assert.True(Accepts(other));
        }
        finally
        {
            await stop.CancelAsync();
            var result = await edge;
            Assert.DoesNotContain(server.AdminToken, result.Stderr + result.Stdout, StringComparison.Ordinal);
            Assert.Contains($"following {server.Url}", result.Stdout);
        }
    }

    [Fact]
    public async Task A_token_that_is_not_the_admins_is_exit_4_and_never_printed()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var token = user.Environment["TRC_TOKEN"]!;
        var file = user.WriteFile("org.token", token);
        var result = await user.RunAsync("edge", "--control-plane", server.Url.ToString(), "--token-file", file, "--listen", "127.0.0.1");
        Assert.Equal(ExitCodes.NotAuthorized, result.ExitCode);
        Assert.Contains("refused the token (403)", result.Stderr);
        Assert.DoesNotContain(token, result.Stderr + result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_route_port_that_is_taken_at_start_is_exit_3_naming_it()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var host = CliServerFixture.NewName("h") + ".example.com";
        await user.OkAsync("routes", "create", "--hostname", host, "--backend-port", "8443");
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var taken = ((IPEndPoint)squatter.LocalEndpoint).Port;
        using var admin = server.NewSession();
        var tokenFile = admin.WriteFile("admin.token", server.AdminToken);
        // Every port a route of this shared server may use is mapped, so only the squatted one can clash.
        var result = await admin.RunAsync(
            "edge", "--control-plane", server.Url.ToString(), "--token-file", tokenFile, "--listen", "127.0.0.1",
            "--port-map", $"443={taken}", "--port-map", $"80={FreePort()}", "--port-map", $"8443={FreePort()}",
            "--port-map", $"5432={FreePort()}", "--port-map", $"2222={FreePort()}");
        // The other test of this class counts on owning port 443 of the shared server.
        await user.OkAsync("routes", "delete", host);
        Assert.Equal(ExitCodes.IoError, result.ExitCode);
        Assert.Contains($"cannot listen on 127.0.0.1:{taken}", result.Stderr);
    }

    [Theory]
    [InlineData(new[] { "--control-plane", "http://127.0.0.1:1" }, "needs --token-file")]
    [InlineData(new[] { "--routes", "r.toml", "--control-plane", "http://127.0.0.1:1" }, "one of the two")]
    [InlineData(new string[0], "one of the two")]
    [InlineData(new[] { "--routes", "r.toml", "--listen", "::" }, "are for --control-plane")]
    [InlineData(new[] { "--control-plane", "http://127.0.0.1:1", "--token-file", "TOKEN", "--listen", "localhost" }, "--listen \"localhost\": not an IP address")]
    [InlineData(new[] { "--control-plane", "http://127.0.0.1:1", "--token-file", "TOKEN", "--port-map", "443" }, "expected PUBLIC=LOCAL")]
    [InlineData(new[] { "--control-plane", "http://127.0.0.1:1", "--token-file", "TOKEN", "--port-map", "443=70000" }, "expected PUBLIC=LOCAL")]
    [InlineData(new[] { "--control-plane", "http://127.0.0.1:1", "--token-file", "TOKEN", "--port-map", "443=1", "--port-map", "443=2" }, "mapped twice")]
    [InlineData(new[] { "--control-plane", "ftp://x", "--token-file", "TOKEN" }, "not an http:// or https:// URL")]
    public async Task Wrong_fed_options_are_usage_errors_naming_the_option(string[] options, string message)
    {
        using var session = server.NewSession();
        var token = session.WriteFile("TOKEN", "trc_abc");
        var args = new[] { "edge" }.Concat(options.Select(o => o == "TOKEN" ? token : o)).ToArray();
        var result = await session.RunAsync(args);
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains(message, result.Stderr);
    }

    [Fact]
    public async Task A_token_file_with_two_words_is_refused_without_echoing_it()
    {
        using var session = server.NewSession();
        var file = session.WriteFile("token", "secret-one secret-two");
        var result = await session.RunAsync("edge", "--control-plane", "http://127.0.0.1:1", "--token-file", file);
        Assert.Equal(ExitCodes.Invalid, result.ExitCode);
        Assert.DoesNotContain("secret-one", result.Stderr);
    }

    private static int FreePort() => CliServerFixture.ClosedPort();

    private static bool Accepts(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Sends a real TLS ClientHello for <paramref name="name"/>; the edge closes the connection, so the handshake fails.</summary>
    private static async Task HelloAsync(int port, string name)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        await using var tls = new SslStream(client.GetStream());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAnyAsync<Exception>(() => tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = name }, timeout.Token));
    }

    private static async Task<string> MetricsAsync(int port)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
    }

    private static async Task<long> Closed(int port, string cause)
    {
        var m = Regex.Match(await MetricsAsync(port), $"(?m)^trc_edge_connections_closed_total\\{{cause=\"{cause}\"\\}} (\\d+)$");
        Assert.True(m.Success, $"no closed counter for {cause}");
        return long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task Until(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {Patience.TotalSeconds} s: {what}");
            await Task.Delay(50);
        }
    }
}
