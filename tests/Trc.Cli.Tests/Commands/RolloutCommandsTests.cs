using System.Diagnostics;
using Trc.ControlPlane;
using Trc.Testing;

namespace Trc.Cli.Tests.Commands;

/// <summary>A server whose rollouts move fast: a 4 s health timeout, 200 ms passes, 200 ms drain.</summary>
public sealed class FastRolloutServer : CliServerFixture
{
    protected override ServerOptions Configure(ServerOptions options) =>
        TestControlPlane.WithScheduler(options, TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(4), TimeSpan.FromMilliseconds(200));
}

/// <summary>
/// trc deploy following its rollout, trc deployments, rollback, restart, scale and nodes
/// drain/undrain, against a real server and (where instances must run) a real <c>trc agent</c>
/// with the fake driver.
/// </summary>
public sealed class RolloutCommandsTests(FastRolloutServer server) : IClassFixture<FastRolloutServer>
{
    private const string Image = "registry.example.com/shop@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    private const string Manifest = "app = \"shop\"\n\n[processes.web]\nmemory = \"128Mi\"\n\n[processes.web.scaling]\nmin = 1\nmax = 3\n";

    [Fact]
    public async Task A_rollout_that_never_gets_ready_fails_with_exit_6_and_says_why()
    {
        // Its own server would be cleaner, but no node of this class's server runs instances of this
        // org: a registered agent may be ready, so the manifest asks for more memory than any fake node offers.
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        user.WriteFile("trc.toml", "app = \"shop\"\n\n[processes.web]\nmemory = \"32Gi\"\n");
        var watch = Stopwatch.StartNew();
        var deploy = await user.RunAsync("deploy", "--image", Image);
        Assert.Equal(6, deploy.ExitCode);
        Assert.Contains("Rolling out", deploy.Stdout);
        Assert.Contains("Deployment 1 failed: not ready within 4s: 0 of 1 web ready", deploy.Stderr);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60));

        var list = await user.OkAsync("deployments");
        Assert.Matches(@"(?m)^1\s+1\s+deploy\s+failed\s+.*not ready within 4s", list.Stdout);
        var json = await user.OkAsync("deployments", "--json");
        Assert.Contains("\"status\": \"failed\"", json.Stdout);
        var detached = await user.OkAsync("deploy", "--image", Image, "--detach");
        Assert.Contains("as deployment 2", detached.Stdout);
        Assert.DoesNotContain("Rolling out", detached.Stdout);
    }

    [Fact]
    public async Task Deploy_scale_restart_rollback_and_drain_with_a_running_agent()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        using var agentSession = server.NewSession();
        using var admin = server.NewSession().As(server.AdminToken);
        var tokenFile = agentSession.WriteFile("node.token", server.NodeToken + "\n");
        var name = CliServerFixture.NewName("node-");
        using var stop = new CancellationTokenSource();
        var agent = agentSession.RunWithInputAsync(
            ["agent", "--server", server.Url.ToString(), "--token-file", tokenFile, "--driver", "fake", "--name", name, "--memory", "8Gi",
             "--data-dir", Path.Combine(agentSession.Root, "agent")], null, stop.Token);
        try
        {
            user.WriteFile("trc.toml", Manifest);
            var first = await user.OkAsync("deploy", "--image", Image);
            Assert.Contains("as deployment 1", first.Stdout);
            Assert.Matches(@"instance [0-9a-f]{8} web on \S+: running", first.Stdout);
            Assert.Contains("traffic switched to release 1", first.Stdout);
            Assert.Contains("Deployment 1 completed: release 1 serves.", first.Stdout);

            var second = await user.OkAsync("deploy", "--image", Image);
            Assert.Contains("Deployment 2 completed: release 2 serves.", second.Stdout);
            var list = await user.OkAsync("deployments");
            Assert.Matches(@"(?m)^2\s+2\s+deploy\s+completed\s", list.Stdout);
            Assert.Matches(@"(?m)^1\s+1\s+deploy\s+replaced\s", list.Stdout);

            var scaled = await user.OkAsync("scale", "3");
            Assert.Contains("web runs 3 instances from now on", scaled.Stdout);
            await Until(user, "ps", s => s.Split('\n').Count(l => l.Contains(" running ", StringComparison.Ordinal)) == 3, "three running instances");
            var tooMany = await user.RunAsync("scale", "4");
            Assert.Equal(1, tooMany.ExitCode);
            Assert.Contains("scales from 1 to 3 instances", tooMany.Stderr);

            var restart = await user.OkAsync("restart");
            Assert.Contains("Deployment 3 of", restart.Stdout);
            Assert.Contains("(restart)", restart.Stdout);
            Assert.Contains("Deployment 3 completed: release 2 serves.", restart.Stdout);

            var rollback = await user.OkAsync("rollback");
            Assert.Contains("release 3 (rollback): trc rollback: release 1's image", rollback.Stdout);
            Assert.Contains("Deployment 4 completed: release 3 serves.", rollback.Stdout);
            var nowhere = await user.RunAsync("rollback", "--to", "99");
            Assert.Equal(1, nowhere.ExitCode);
            Assert.Contains("has no release 99", nowhere.Stderr);

            var drained = await admin.OkAsync("nodes", "drain", name, "--reason", "kernel upgrade");
            Assert.Contains($"Node {name}: draining", drained.Stdout);
            var shown = await admin.OkAsync("nodes", "show", name);
            Assert.Contains("draining (kernel upgrade)", shown.Stdout);
            Assert.Contains($"Node {name}: ready", (await admin.OkAsync("nodes", "undrain", name)).Stdout);
            var refused = await user.RunAsync("nodes", "drain", name);
            Assert.Equal(4, refused.ExitCode);
        }
        finally
        {
            await stop.CancelAsync();
        }
        Assert.Equal(0, (await agent).ExitCode);
    }

    private static async Task Until(CliSession user, string command, Func<string, bool> condition, string what)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var result = await user.OkAsync(command);
            if (condition(result.Stdout))
            {
                return;
            }
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"not within 30 s: {what}\n{result.Stdout}");
            await Task.Delay(200);
        }
    }
}
