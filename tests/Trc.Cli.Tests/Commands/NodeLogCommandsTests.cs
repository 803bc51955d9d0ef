using System.Text.Json;
using Trc.Client;
using Trc.Core.Api;

namespace Trc.Cli.Tests.Commands;

/// <summary><c>trc nodes</c>, <c>trc instances</c>/<c>trc ps</c> and <c>trc logs</c>, against a real server with a stand-in agent.</summary>
public sealed class NodeLogCommandsTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    private const string Image = "registry.example.com/shop@" + CliSession.Digest;

    private static readonly DateTimeOffset T0 = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private const string Manifest = """
        app = "shop"

        [processes.web]
        ports = [8443]
        memory = "256Mi"

        [processes.worker]
        memory = "128Mi"
        """;

    private TrcClient Agent() => new(server.Url, server.NodeToken);

    /// <summary>An env with release 1 deployed after a node registered; the owner's session and both instances.</summary>
    private async Task<(CliSession User, InstanceView Web, InstanceView Worker)> RunningAsync(string org)
    {
        using var agent = Agent();
        await agent.RegisterNodeAsync(new RegisterNodeRequest(CliServerFixture.NewName("node-"), 16L << 30, 4, "fake", "none"));
        var user = await CliSession.NewEnvAsync(server, org);
        user.WriteFile("trc.toml", Manifest);
        await user.OkAsync("deploy", "--detach", "--image", Image);
        using var owner = new TrcClient(server.Url, user.Environment["TRC_TOKEN"]!);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var items = (await owner.ListInstancesAsync(org, "shop", "prod")).Items;
            if (items.Count == 2)
            {
                return (user, items.Single(i => i.Process == "web"), items.Single(i => i.Process == "worker"));
            }
            Assert.True(DateTime.UtcNow < deadline, "the scheduler did not place both instances");
            await Task.Delay(50);
        }
    }

    private async Task ShipAsync(InstanceView instance, string stream, DateTimeOffset time, string line)
    {
        using var agent = Agent();
        await agent.ShipLogsAsync(instance.NodeId, new LogBatchRequest([new LogLineRequest(instance.Id, stream, time, line)]));
    }

    [Fact]
    public async Task Nodes_lists_and_shows_nodes_for_the_admin_only()
    {
        using var agent = Agent();
        var name = CliServerFixture.NewName("node-");
        var node = await agent.RegisterNodeAsync(new RegisterNodeRequest(name, 8L << 30, 4, "qemu", "tcg", "eu-west", "1.2.3"));
        using var admin = server.NewSession().As(server.AdminToken);

        var list = await admin.OkAsync("nodes");
        Assert.Matches(@"^NAME\s+STATUS\s+PREFIX\s+MEMORY\s+CPUS\s+DRIVER\s+INSTANCES\s+LAST SEEN\n", list.Stdout);
        Assert.Matches($@"(?m)^{name}\s+ready\s+fd74:7263:0:[0-9a-f]+::/64\s+8Gi\s+4\s+qemu/tcg\s+0\s+\d{{4}}-", list.Stdout);

        var show = await admin.OkAsync("nodes", "show", name);
        Assert.Contains($"id:         {node.Id:D}\n", show.Stdout);
        Assert.Contains("region:     eu-west\n", show.Stdout);
        Assert.Contains("agent:      1.2.3\n", show.Stdout);
        var byId = await admin.OkAsync("nodes", "show", node.Id.ToString(), "--json");
        using (var json = JsonDocument.Parse(byId.Stdout))
        {
            Assert.Equal(node.Prefix, json.RootElement.GetProperty("prefix").GetString());
        }
        Assert.Equal(1, (await admin.RunAsync("nodes", "show", "no-such-node")).ExitCode);

        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        var refused = await user.RunAsync("nodes");
        Assert.Equal(4, refused.ExitCode);
        Assert.Contains("(403 forbidden)", refused.Stderr);
    }

    [Fact]
    public async Task Ps_shows_where_instances_run_and_how_they_are()
    {
        var org = CliServerFixture.NewName();
        var (user, web, worker) = await RunningAsync(org);
        using var agent = Agent();
        await agent.ReportInstanceStateAsync(web.NodeId, web.Id, new InstanceStateRequest("running", "fd74:7263:0:1::7"));
        // Both run, so the rollout completes; an exit after that is the agent's to restart, not a failed rollout.
        await agent.ReportInstanceStateAsync(worker.NodeId, worker.Id, new InstanceStateRequest("running", "fd74:7263:0:1::8"));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!(await user.OkAsync("deployments")).Stdout.Contains("completed", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "the rollout did not complete");
            await Task.Delay(100);
        }
        await agent.ReportInstanceStateAsync(worker.NodeId, worker.Id, new InstanceStateRequest("exited", ExitCode: 2, Restarts: 3));

        var ps = await user.OkAsync("ps");
        Assert.Matches(@"^ID\s+PROCESS\s+RELEASE\s+STATE\s+NODE\s+ADDRESS\s+RESTARTS\s+SINCE\n", ps.Stdout);
        Assert.Matches("(?m)^" + web.Id.ToString("N")[..8] + @"\s+web\s+1\s+running\s+\S+\s+fd74:7263:0:1::7\s+0\s", ps.Stdout);
        Assert.Matches(@"(?m)^[0-9a-f]{8}\s+worker\s+1\s+exited \(2\)\s+\S+\s+-\s+3\s", ps.Stdout);

        var instances = await user.OkAsync("instances", "shop", "--env", "prod", "--json");
        using var json = JsonDocument.Parse(instances.Stdout);
        Assert.Equal(2, json.RootElement.GetProperty("items").GetArrayLength());
        Assert.Equal(2, (await user.RunAsync("ps", "--env", "")).ExitCode);
    }

    [Fact]
    public async Task Logs_prints_time_process_instance_stream_and_line_with_filters()
    {
        var org = CliServerFixture.NewName();
        var (user, web, worker) = await RunningAsync(org);
        await ShipAsync(web, "stdout", T0, "listening");
        await ShipAsync(worker, "stderr", T0.AddSeconds(1), "queue \u001b[31mempty");
        await ShipAsync(web, "system", T0.AddSeconds(2), "healthy");

        var all = await user.OkAsync("logs");
        var shortWeb = web.Id.ToString("N")[..8];
        var shortWorker = worker.Id.ToString("N")[..8];
        Assert.Equal(
            $"2025-03-01T12:00:00.000Z web/{shortWeb} stdout listening\n" +
            $"2025-03-01T12:00:01.000Z worker/{shortWorker} stderr queue ?[31mempty\n" +
            $"2025-03-01T12:00:02.000Z web/{shortWeb} system healthy\n",
            all.Stdout);

        Assert.Equal(2, (await user.OkAsync("logs", "shop", "--process", "web")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("queue", (await user.OkAsync("logs", "--instance", shortWorker)).Stdout);
        Assert.DoesNotContain("queue", (await user.OkAsync("logs", "--instance", web.Id.ToString())).Stdout);
        Assert.Equal($"2025-03-01T12:00:02.000Z web/{shortWeb} system healthy\n", (await user.OkAsync("logs", "--since", "2025-03-01T12:00:02Z")).Stdout);

        var limited = await user.OkAsync("logs", "--limit", "1", "--since", "2025-01-01T00:00:00Z");
        Assert.Contains("listening", limited.Stdout);
        Assert.Matches(@"^next: trc logs --after \d+ --limit 1\n$", limited.Stderr);

        using (var json = JsonDocument.Parse((await user.OkAsync("logs", "--json")).Stdout))
        {
            Assert.Equal(3, json.RootElement.GetProperty("lines").GetArrayLength());
        }
        var bad = await user.RunAsync("logs", "--since", "yesterday");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("field: since", bad.Stderr);
        Assert.Equal(2, (await user.RunAsync("logs", "--instance", "zz")).ExitCode);
    }

    [Fact]
    public async Task Logs_follow_prints_new_lines_and_ends_with_exit_0_on_ctrl_c()
    {
        var org = CliServerFixture.NewName();
        var (user, web, _) = await RunningAsync(org);
        await ShipAsync(web, "stdout", T0, "earlier");
        await using var follow = user.Start("logs", "--follow", "--json");

        Assert.Contains("earlier", await follow.Output.WaitForAsync("earlier", TimeSpan.FromSeconds(30)));
        await ShipAsync(web, "stderr", T0.AddMinutes(1), "later");
        var line = await follow.Output.WaitForAsync("later", TimeSpan.FromSeconds(30));
        using (var json = JsonDocument.Parse(line))
        {
            Assert.Equal("stderr", json.RootElement.GetProperty("stream").GetString());
        }
        Assert.False(follow.Exit.IsCompleted);
        Assert.Equal(0, await follow.StopAsync());
    }

    [Theory]
    [InlineData("logs")]
    [InlineData("instances")]
    [InlineData("ps")]
    [InlineData("nodes")]
    public void Every_new_command_has_help_with_examples(string command)
    {
        var help = CliRunner.Run([command, "--help"]);
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("Example", help.Stdout);
    }
}
