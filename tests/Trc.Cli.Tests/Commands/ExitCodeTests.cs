using System.Net;
using System.Net.Sockets;
using System.Text;
using Trc.Core.Domain;
using Trc.Testing;

namespace Trc.Cli.Tests.Commands;

/// <summary>How failures reach the shell: exit codes and messages on stderr (see docs/cli.md).</summary>
public sealed class ExitCodeTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    [Fact]
    public async Task A_refused_token_is_exit_4_and_the_token_is_not_printed()
    {
        using var user = server.NewSession().As("trc_0123456789abcdef0123456789abcdef_" + new string('s', 43));
        user.Environment["TRC_ORG"] = "acme";
        var result = await user.RunAsync("apps");
        Assert.Equal(4, result.ExitCode);
        Assert.Contains("(401 unauthenticated)", result.Stderr);
        Assert.Contains("trc login", result.Stderr);
        Assert.DoesNotContain("sssssss", result.Stderr + result.Stdout);
    }

    [Fact]
    public async Task A_role_too_weak_is_exit_4()
    {
        var org = CliServerFixture.NewName();
        using var viewer = await CliSession.NewOrgAsync(server, org, Roles.Viewer);
        var result = await viewer.RunAsync("apps", "create", "shop");
        Assert.Equal(4, result.ExitCode);
        Assert.Contains("(403 forbidden)", result.Stderr);
        Assert.Contains("needs the deployer role", result.Stderr);
    }

    [Fact]
    public async Task A_quota_refusal_is_a_403_but_exit_1_not_an_auth_failure()
    {
        var org = CliServerFixture.NewName();
        using var owner = await CliSession.NewEnvAsync(server, org);
        using var admin = server.NewSession().As(server.AdminToken);
        await admin.OkAsync("quotas", "set", "--org", org, "--routes", "0");

        var result = await owner.RunAsync("routes", "create", "--hostname", CliServerFixture.NewName("h") + ".example.com", "--backend-port", "8443");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("(403 quota_exceeded)", result.Stderr);
    }

    [Fact]
    public async Task Not_found_is_exit_1_with_the_problems_detail()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        var result = await user.RunAsync("envs", "--app", "nope");
        Assert.Equal(1, result.ExitCode);
        Assert.Equal("trc: app nope not found\n  (404 not_found)\n", result.Stderr);
        Assert.Empty(result.StdoutBytes);
    }

    [Fact]
    public async Task A_conflict_is_exit_1_naming_the_field()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        await user.OkAsync("apps", "create", "shop");
        var result = await user.RunAsync("apps", "create", "shop");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("already has an app named shop", result.Stderr);
        Assert.Contains("  field: name\n", result.Stderr);
        Assert.Contains("(409 app_exists)", result.Stderr);
    }

    [Fact]
    public async Task An_invalid_value_is_exit_1_naming_the_field()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var result = await user.RunAsync("volumes", "create", "data", "--size", "10GB");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("  field: size\n", result.Stderr);
        Assert.Contains("(422 invalid_size)", result.Stderr);
    }

    [Fact]
    public async Task An_unreachable_server_is_exit_5_naming_the_url()
    {
        using var user = server.NewSession();
        var url = $"http://127.0.0.1:{CliServerFixture.ClosedPort()}";
        user.Environment["TRC_URL"] = url;
        user.Environment["TRC_TOKEN"] = server.AdminToken;
        var result = await user.RunAsync("orgs");
        Assert.Equal(5, result.ExitCode);
        Assert.StartsWith($"trc: cannot reach the trc server at {url}/", result.Stderr);
        Assert.DoesNotContain(server.AdminToken, result.Stderr);
    }

    [Fact]
    public async Task A_proxy_error_page_is_exit_5_and_says_what_answered()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var answer = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var buffer = new byte[8192];
            var request = "";
            while (!request.Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                request += Encoding.ASCII.GetString(buffer, 0, await stream.ReadAsync(buffer));
            }
            const string body = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}"));
        });
        using var user = server.NewSession();
        user.Environment["TRC_URL"] = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
        user.Environment["TRC_TOKEN"] = server.AdminToken;

        var result = await user.RunAsync("orgs");
        await answer;

        Assert.Equal(5, result.ExitCode);
        Assert.Contains("HTTP 502", result.Stderr);
        Assert.Contains("text/html", result.Stderr);
        Assert.Contains("\"502 Bad Gateway\"", result.Stderr);
    }

    [Fact]
    public async Task A_hostile_servers_problem_cannot_put_control_characters_on_the_terminal()
    {
        const string problem = """
            {"type":"x","title":"Conflict","status":409,"detail":"evil\u001b[2J\ntrc: forged line","code":"c\u001b[31m","field":"f\r\u0007","errors":["e\u001b]0;title\u0007"]}
            """;
        await using var hostile = new CannedHttpServer(_ => CannedHttpServer.Response("409 Conflict", "application/problem+json", problem));
        using var user = server.NewSession();
        user.Environment["TRC_URL"] = hostile.Url;
        user.Environment["TRC_TOKEN"] = server.AdminToken;
        user.Environment["TRC_ORG"] = "acme";

        var result = await user.RunAsync("apps", "create", "shop");

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("trc: evil?[2J?trc: forged line\n  field: f??\n  - e?]0;title?\n  (409 c?[31m)\n", result.Stderr);
    }

    [Fact]
    public async Task A_hostile_servers_answer_is_cleaned_in_the_created_line()
    {
        const string app = """{"id":"00000000-0000-0000-0000-000000000001","org":"acme\u001b[2J","name":"shop\nforged","created_at":"2025-01-01T00:00:00Z"}""";
        await using var hostile = new CannedHttpServer(_ => CannedHttpServer.Response("201 Created", "application/json", app));
        using var user = server.NewSession();
        user.Environment["TRC_URL"] = hostile.Url;
        user.Environment["TRC_TOKEN"] = server.AdminToken;
        user.Environment["TRC_ORG"] = "acme";

        var result = await user.RunAsync("apps", "create", "shop");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("Created app shop?forged in org acme?[2J.\n", result.Stdout);
        Assert.DoesNotContain('\u001b', result.Stderr);
    }

    [Fact]
    public async Task A_missing_option_is_exit_2()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        var result = await user.RunAsync("routes", "create", "--env", "prod", "--app", "shop");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--hostname", result.Stderr);
    }
}
