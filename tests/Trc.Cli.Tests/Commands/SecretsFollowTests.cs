using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Trc.ControlPlane;
using Trc.Testing;

namespace Trc.Cli.Tests.Commands;

/// <summary>
/// A server whose rollouts move fast (as <see cref="FastRolloutServer"/>) with one real
/// <c>trc agent --driver fake</c> registered for the whole class, so every test's instances run.
/// </summary>
public sealed class FastRolloutServerWithAgent : CliServerFixture, IAsyncLifetime
{
    private readonly CancellationTokenSource _stop = new();
    private CliSession? _agentSession;
    private Task<CliResult>? _agent;

    protected override ServerOptions Configure(ServerOptions options) =>
        TestControlPlane.WithScheduler(options, TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(4), TimeSpan.FromMilliseconds(200));

    public new async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _agentSession = NewSession();
        var tokenFile = _agentSession.WriteFile("node.token", NodeToken + "\n");
        _agent = _agentSession.RunWithInputAsync(
            ["agent", "--server", Url.ToString(), "--token-file", tokenFile, "--driver", "fake", "--name", NewName("node-"), "--memory", "16Gi",
             "--data-dir", Path.Combine(_agentSession.Root, "agent")], null, _stop.Token);
        // Registered: an admin sees a ready node.
        using var admin = NewSession().As(AdminToken);
        var watch = Stopwatch.StartNew();
        while (!(await admin.RunAsync("nodes")).Stdout.Contains(" ready", StringComparison.Ordinal))
        {
            if (_agent.IsCompleted)
            {
                throw new InvalidOperationException($"the agent stopped: {await _agent}");
            }
            if (watch.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException("the fake agent did not register within 30 s");
            }
            await Task.Delay(100);
        }
    }

    public new async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_agent is not null)
        {
            var result = await _agent.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, result.ToString());
        }
        _agentSession?.Dispose();
        _stop.Dispose();
        await base.DisposeAsync();
    }
}

/// <summary>
/// <c>trc secrets set|unset</c> following the rollout they start, and <c>trc scale --wait</c>,
/// against a real server and a real agent (fake driver).
/// </summary>
public sealed partial class SecretsFollowTests(FastRolloutServerWithAgent server) : IClassFixture<FastRolloutServerWithAgent>
{
    private const string Image = "registry.example.com/shop@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    // No health check: the fake driver's instances have no address to probe, so "running" is as ready as they get.
    private const string Manifest = "app = \"shop\"\n\n[processes.web]\nmemory = \"128Mi\"\n\n[processes.web.scaling]\nmin = 1\nmax = 3\n";

    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    /// <summary>An env running release 1 of shop, as its owner (TRC_ORG, TRC_APP, TRC_ENV set).</summary>
    private async Task<CliSession> RunningEnvAsync()
    {
        var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        user.WriteFile("trc.toml", Manifest);
        var deploy = await RunAsync(user, "deploy", "--image", Image);
        Assert.True(deploy.ExitCode == 0, deploy.ToString());
        Assert.Contains("Deployment 1 completed: release 1 serves.", deploy.Stdout);
        return user;
    }

    private static async Task<CliResult> RunAsync(CliSession user, params string[] args)
    {
        using var limit = new CancellationTokenSource(Limit);
        return await user.RunWithInputAsync(args, null, limit.Token);
    }

    private static async Task<CliResult> OkAsync(CliSession user, params string[] args)
    {
        var result = await RunAsync(user, args);
        Assert.True(result.ExitCode == 0, $"trc {string.Join(' ', args)}\n{result}");
        return result;
    }

    [Fact]
    public async Task Secrets_set_on_a_running_env_rolls_the_new_secrets_out_and_follows_to_completed()
    {
        using var user = await RunningEnvAsync();
        var org = user.Environment["TRC_ORG"];

        var set = await OkAsync(user, "secrets", "set", "GREETING=hola-from-the-test");

        Assert.Contains($"Set GREETING: secrets of {org}/shop/prod are now version 1.", set.Stdout);
        Assert.Contains("Deployment 2: release 2 rolls the new secrets out (every instance restarts once).", set.Stdout);
        Assert.Matches(@"instance [0-9a-f]{8} web on \S+: running", set.Stdout);
        Assert.Contains("traffic switched to release 2", set.Stdout);
        Assert.EndsWith("Deployment 2 completed: release 2 serves.\n", set.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("hola-from-the-test", set.Stdout + set.Stderr);
        Assert.Matches(@"(?m)^2\s+2\s+secrets\s+completed\s", (await OkAsync(user, "deployments")).Stdout);
    }

    [Fact]
    public async Task Secrets_unset_on_a_running_env_follows_its_rollout_too()
    {
        using var user = await RunningEnvAsync();
        await OkAsync(user, "secrets", "set", "A=1", "B=2", "--detach");
        await WaitForDeploymentAsync(user, 2, "completed");

        var unset = await OkAsync(user, "secrets", "unset", "A");

        Assert.Contains("Unset A: secrets of", unset.Stdout);
        Assert.Contains("are now version 2.", unset.Stdout);
        Assert.Contains("Deployment 3: release 3 rolls the new secrets out", unset.Stdout);
        Assert.EndsWith("Deployment 3 completed: release 3 serves.\n", unset.Stdout, StringComparison.Ordinal);
        Assert.Equal("Version 2, 1 secret:\n  B\n", (await OkAsync(user, "secrets", "list")).Stdout);
    }

    [Fact]
    public async Task Detach_returns_once_the_rollout_is_recorded_without_following_it()
    {
        using var user = await RunningEnvAsync();

        var set = await OkAsync(user, "secrets", "set", "GREETING=y", "--detach");

        Assert.Equal(
            $"Set GREETING: secrets of {user.Environment["TRC_ORG"]}/shop/prod are now version 1.\n"
            + "Deployment 2: release 2 rolls the new secrets out (every instance restarts once).\n",
            set.Stdout);
        // It was a rollout all the same, and it ends on its own.
        await WaitForDeploymentAsync(user, 2, "completed");

        var unset = await OkAsync(user, "secrets", "unset", "GREETING", "--detach");
        Assert.EndsWith("Deployment 3: release 3 rolls the new secrets out (every instance restarts once).\n", unset.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("completed", unset.Stdout);
        await WaitForDeploymentAsync(user, 3, "completed");
    }

    [Fact]
    public async Task On_an_env_that_runs_nothing_the_next_deploy_starts_with_the_secrets()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());

        var set = await OkAsync(user, "secrets", "set", "GREETING=x");
        Assert.Contains("are now version 1.", set.Stdout);
        Assert.EndsWith("The env runs no release: the next deploy starts with these secrets.\n", set.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("Deployment", set.Stdout);

        var unset = await OkAsync(user, "secrets", "unset", "GREETING");
        Assert.Contains("are now version 2.", unset.Stdout);
        Assert.EndsWith("The env runs no release: the next deploy starts with these secrets.\n", unset.Stdout, StringComparison.Ordinal);
        using (var deployments = JsonDocument.Parse((await OkAsync(user, "deployments", "--json")).Stdout))
        {
            Assert.Equal(0, deployments.RootElement.GetProperty("items").GetArrayLength());
        }

        user.WriteFile("trc.toml", Manifest);
        var deploy = await OkAsync(user, "deploy", "--image", Image);
        Assert.Contains("Deployment 1 completed: release 1 serves.", deploy.Stdout);
        using var releases = JsonDocument.Parse((await OkAsync(user, "releases", "--json")).Stdout);
        Assert.Equal(2, Assert.Single(releases.RootElement.GetProperty("items").EnumerateArray()).GetProperty("secrets_version").GetInt32());
    }

    [Fact]
    public async Task Scale_wait_prints_the_states_until_the_count_is_ready_up_and_down()
    {
        using var user = await RunningEnvAsync();
        var watch = Stopwatch.StartNew();

        var up = await OkAsync(user, "scale", "2", "--wait");

        Assert.StartsWith($"{user.Environment["TRC_ORG"]}/shop/prod: web runs 2 instances from now on", up.Stdout, StringComparison.Ordinal);
        var states = StateLine().Matches(up.Stdout).Select(m => m.Groups["states"].Value).ToList();
        Assert.True(states.Count >= 1, up.Stdout);
        Assert.Equal("2 running", states[^1]);
        Assert.All(states.Zip(states.Skip(1)), pair => Assert.NotEqual(pair.First, pair.Second)); // a line per change, not per poll
        Assert.EndsWith("web: 2 instances ready.\n", up.Stdout, StringComparison.Ordinal);
        Assert.Equal(2, (await OkAsync(user, "ps")).Stdout.Split('\n').Count(l => l.Contains(" running ", StringComparison.Ordinal)));

        var down = await OkAsync(user, "scale", "1", "--wait");

        Assert.Contains("web runs 1 instance from now on", down.Stdout);
        // Going down, it ends once the extra instance is asked to stop: exactly one left, ready.
        var downStates = StateLine().Matches(down.Stdout).Select(m => m.Groups["states"].Value).ToList();
        Assert.Equal("1 running", downStates[^1]);
        Assert.EndsWith("web: 1 instance ready.\n", down.Stdout, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"scale --wait up and down took {watch.Elapsed}");
    }

    private static async Task WaitForDeploymentAsync(CliSession user, int number, string status)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var list = await OkAsync(user, "deployments");
            if (Regex.IsMatch(list.Stdout, $@"(?m)^{number}\s+\d+\s+\S+\s+{status}\s"))
            {
                return;
            }
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"deployment {number} not {status} within 30 s:\n{list.Stdout}");
            await Task.Delay(200);
        }
    }

    [GeneratedRegex(@"(?m)^  \d\d:\d\d:\d\d web: (?<states>.+)$")]
    private static partial Regex StateLine();
}
