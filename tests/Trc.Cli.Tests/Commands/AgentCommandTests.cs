using System.Diagnostics;

namespace Trc.Cli.Tests.Commands;

/// <summary>
/// <c>trc agent</c>: its options refused with clear errors (never echoing the token), and a real run
/// with the fake driver against a real server: it registers, a deploy's instance runs on it, and a
/// stop ends it cleanly. The QEMU path end to end is in Trc.Agent.Tests (EndToEnd).
/// </summary>
public sealed class AgentCommandTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    private const string Token = "trc_0123456789abcdef0123456789abcdef_secretsecretsecretsecretsecretsecretsecre";

    private static CliResult Agent(CliSession session, params string[] args) =>
        session.RunAsync(["agent", .. args]).GetAwaiter().GetResult();

    [Theory]
    [InlineData(new[] { "--token-file", "t" }, 2, "give --server URL")]
    [InlineData(new[] { "--server", "ftp://example.com", "--token-file", "t" }, 2, "--server: not an http:// or https:// URL")]
    [InlineData(new[] { "--server", "http://127.0.0.1:1" }, 2, "give --token-file FILE")]
    [InlineData(new[] { "--server", "http://127.0.0.1:1", "--token-file", "missing.token" }, 3, "--token-file missing.token:")]
    [InlineData(new[] { "--server", "http://127.0.0.1:1", "--token-file", "t", "--memory", "12GB" }, 2, "--memory 12GB:")]
    [InlineData(new[] { "--server", "http://127.0.0.1:1", "--token-file", "t", "--guest-assets", "no-assets" }, 3, "run scripts/build-guest-assets")]
    [InlineData(new[] { "--server", "http://127.0.0.1:1", "--token-file", "t", "--driver", "xen" }, 2, "xen")]
    [InlineData(new[] { "--server", "http://127.0.0.1:1", "--token-file", "t", "--accel", "hvf" }, 2, "hvf")]
    public void Wrong_options_are_refused_with_a_clear_error(string[] args, int exit, string message)
    {
        using var session = server.NewSession();
        session.WriteFile("t", Token + "\n");
        var result = Agent(session, args);
        Assert.Equal(exit, result.ExitCode);
        Assert.Contains(message, result.Stderr);
        Assert.DoesNotContain("secretsecret", result.Stderr + result.Stdout);
    }

    [Theory]
    [InlineData("")]
    [InlineData("two tokens")]
    [InlineData("trc_abc\u0001def")]
    public void A_token_file_not_holding_one_token_is_refused_without_echoing_it(string content)
    {
        using var session = server.NewSession();
        session.WriteFile("bad.token", content);
        var result = Agent(session, "--server", "http://127.0.0.1:1", "--token-file", "bad.token", "--driver", "fake");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("--token-file bad.token:", result.Stderr);
        if (content.Length > 0)
        {
            Assert.DoesNotContain(content, result.Stderr);
        }
    }

    [Fact]
    public async Task A_refused_node_token_ends_the_agent_with_exit_4()
    {
        using var session = server.NewSession();
        session.WriteFile("node.token", Token);
        var result = await session.RunAsync("agent", "--server", server.Url.ToString(), "--token-file", "node.token", "--driver", "fake",
            "--data-dir", Path.Combine(session.Root, "agent"), "--name", CliServerFixture.NewName("n"));
        Assert.Equal(4, result.ExitCode);
        Assert.Contains("refused the node token (401)", result.Stderr);
        Assert.DoesNotContain("secretsecret", result.Stderr);
    }

    [Fact]
    public async Task A_fake_agent_registers_runs_a_deployed_instance_and_stops_cleanly()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        using var agentSession = server.NewSession();
        var tokenFile = agentSession.WriteFile("node.token", server.NodeToken + "\n");
        var name = CliServerFixture.NewName("node-");
        using var stop = new CancellationTokenSource();
        var agent = agentSession.RunWithInputAsync(
            ["agent", "--server", server.Url.ToString(), "--token-file", tokenFile, "--driver", "fake", "--name", name,
             "--data-dir", Path.Combine(agentSession.Root, "agent")], null, stop.Token);
        try
        {
            user.WriteFile("trc.toml", "app = \"shop\"\n\n[processes.web]\nmemory = \"128Mi\"\n");
            // Followed: the fake VM runs, has no health check, so it takes the traffic and the rollout completes.
            var deploy = await user.OkAsync("deploy", "--image", "registry.example.com/shop@sha256:" + new string('c', 64));
            Assert.Contains("Deployment 1 completed: release 1 serves.", deploy.Stdout);
            Assert.Contains(": running", deploy.Stdout);
            var watch = Stopwatch.StartNew();
            CliResult ps;
            do
            {
                await Task.Delay(200);
                ps = await user.OkAsync("ps");
            }
            while (!ps.Stdout.Contains("running", StringComparison.Ordinal) && watch.Elapsed < TimeSpan.FromSeconds(30));
            Assert.Contains(name, ps.Stdout);
            Assert.Contains("running", ps.Stdout);
        }
        finally
        {
            await stop.CancelAsync();
        }
        var result = await agent;
        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"registered as node {name}", result.Stderr);
        Assert.DoesNotContain(server.NodeToken, result.Stderr + result.Stdout, StringComparison.Ordinal);
    }
}
