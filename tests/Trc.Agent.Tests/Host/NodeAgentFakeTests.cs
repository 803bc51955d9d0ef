using System.Diagnostics;
using Trc.Agent.Host;
using Trc.Agent.Runtime.Fake;
using Trc.Client;
using Trc.Client.Events;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Testing;

namespace Trc.Agent.Tests.Host;

/// <summary>
/// The agent's logic with the fake driver against a real control plane: what it reports when an
/// instance cannot start, keeps failing, or is killed by the host, and that its restart policy
/// gives up. No VMs: these run in seconds.
/// </summary>
public sealed class NodeAgentFakeTests : IAsyncLifetime
{
    private TestControlPlane _server = null!;
    private TrcClient _admin = null!;
    private TrcClient _node = null!;
    private readonly string _dir = Directory.CreateTempSubdirectory("trc-agent-fake-").FullName;

    public async Task InitializeAsync()
    {
        _server = await TestControlPlane.StartAsync();
        _admin = new TrcClient(_server.Address, _server.AdminToken);
        _node = new TrcClient(_server.Address, _server.Host.NodeToken!);
        await _admin.CreateOrgAsync("acme");
    }

    public async Task DisposeAsync()
    {
        _admin.Dispose();
        _node.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(NodeAgent Agent, FakeDriver Driver, FakeLauncher Launcher, CancellationTokenSource Stop, Task Run)> StartAgentAsync(FakeVmScript script, RestartPolicy? restart = null, TimeSpan? bootTimeout = null, bool stopOnShutdown = false)
    {
        var driver = new FakeDriver { DefaultScript = script };
        var launcher = new FakeLauncher(Path.Combine(_dir, "instances"));
        var options = new AgentOptions
        {
            NodeName = "fake-node",
            DataDir = _dir,
            MemoryBytes = 4L << 30,
            HeartbeatInterval = TimeSpan.FromMilliseconds(500),
            StopGrace = TimeSpan.FromMilliseconds(200),
            BootTimeout = bootTimeout ?? TimeSpan.FromSeconds(90),
            Restart = restart ?? new RestartPolicy { InitialDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(200), MaxQuickFailures = 3 },
        };
        var agent = new NodeAgent(options, _node, driver, _ => launcher, _ => { }) { StopInstancesOnShutdown = stopOnShutdown };
        var stop = new CancellationTokenSource();
        var run = Task.Run(() => agent.RunAsync(stop.Token));
        await agent.Registered.WaitAsync(TimeSpan.FromSeconds(30));
        return (agent, driver, launcher, stop, run);
    }

    private async Task<ReleaseView> DeployAsync(string app)
    {
        await _admin.CreateAppAsync("acme", app);
        await _admin.CreateEnvAsync("acme", app, "prod");
        return await _admin.DeployAsync("acme", app, "prod", new DeployRequest(
            "registry.example.com/app@sha256:" + new string('a', 64), $"app = \"{app}\"\n\n[processes.web]\nmemory = \"128Mi\"\n"));
    }

    private async Task<List<InstanceStateChanged>> WaitForStatesAsync(Func<List<InstanceStateChanged>, bool> done, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        List<InstanceStateChanged> states = [];
        while (watch.Elapsed < timeout)
        {
            var page = await _admin.GetEventsAsync(new EventQuery(Types: [EventNames.InstanceStateChanged], Limit: 1000));
            states = page.Events.Select(e => EventJson.Deserialize<InstanceStateChanged>(e.Payload.GetRawText())).ToList();
            if (done(states))
            {
                return states;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("states so far: " + string.Join(", ", states.Select(s => $"{s.State}({s.Reason})")));
    }

    /// <summary>The app's deployment once it failed (the scheduler runs in the background).</summary>
    private async Task<DeploymentView> WaitForFailedDeploymentAsync(string app, int number)
    {
        var watch = Stopwatch.StartNew();
        DeploymentView deployment;
        while ((deployment = await _admin.GetDeploymentAsync("acme", app, "prod", number)).Status != "failed")
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"deployment is {deployment.Status}, not failed");
            await Task.Delay(100);
        }
        return deployment;
    }

    [Fact]
    public async Task An_instance_that_cannot_be_prepared_is_retried_then_reported_failed_with_the_reason_which_fails_its_rollout()
    {
        var (_, _, launcher, stop, run) = await StartAgentAsync(FakeVmScript.RunUntilStopped());
        launcher.FailWith = _ => "registry.example.com is unreachable";
        var release = await DeployAsync("broken");
        // The agent retries, then gives up saying why; that fails the rollout with the agent's reason.
        var states = await WaitForStatesAsync(s => s.Any(x => x.State == InstanceStates.Failed && x.Reason!.StartsWith("gave up", StringComparison.Ordinal)), TimeSpan.FromSeconds(30));
        Assert.Contains(states, s => s.State == InstanceStates.Starting);
        var giveUp = Assert.Single(states, s => s.State == InstanceStates.Failed);
        Assert.Contains("registry.example.com is unreachable", giveUp.Reason);
        Assert.Equal(3, giveUp.Restarts);
        var deployment = await WaitForFailedDeploymentAsync("broken", release.Deployment!.Value);
        Assert.Contains("registry.example.com is unreachable", deployment.FailureReason);
        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task A_guest_that_never_starts_its_app_is_killed_at_the_boot_timeout_and_reported_failed_with_its_last_console_line()
    {
        // As a kernel given too little memory does: a line or two on the console, then nothing.
        var hangs = new FakeVmScript(async (guest, ct) =>
        {
            guest.Kernel("Memory: 61236K/65536K available");
            await Task.Delay(Timeout.Infinite, ct);
        });
        var (_, driver, _, stop, run) = await StartAgentAsync(hangs, bootTimeout: TimeSpan.FromMilliseconds(700));
        var release = await DeployAsync("hangs");
        var states = await WaitForStatesAsync(s => s.Any(x => x.State == InstanceStates.Failed), TimeSpan.FromSeconds(30));
        var failed = states.First(s => s.State == InstanceStates.Failed);
        Assert.Contains("did not start the app within 1 s", failed.Reason);
        Assert.Contains("its console's last line: Memory: 61236K/65536K available", failed.Reason);
        Assert.DoesNotContain(states.TakeWhile(s => s.State != InstanceStates.Failed), s => s.State == InstanceStates.Running);
        // The VM was killed, not left hanging, and the rollout failed with the reason.
        Assert.Contains(driver.Host.Events, e => e.Kind == FakeVmEventKind.Killed);
        var deployment = await WaitForFailedDeploymentAsync("hangs", release.Deployment!.Value);
        Assert.Contains("did not start the app", deployment.FailureReason);
        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task An_agent_that_stops_its_instances_at_shutdown_reports_each_stopped_before_it_ends()
    {
        // trc dev's agent: Ctrl-C stops the instances, and the control plane must hear it (else they
        // read as healthy until the node is declared lost).
        var (agent, driver, _, stop, run) = await StartAgentAsync(FakeVmScript.RunUntilStopped(), stopOnShutdown: true);
        await DeployAsync("shutdown");
        await WaitForStatesAsync(s => s.Any(x => x.State == InstanceStates.Running), TimeSpan.FromSeconds(30));
        var instance = Assert.Single(agent.Instances);
        await stop.CancelAsync();
        await run;
        var states = await WaitForStatesAsync(s => s.Any(x => x.State == InstanceStates.Stopped), TimeSpan.FromSeconds(5));
        Assert.Equal(InstanceStates.Stopped, states.Last().State);
        Assert.Contains(driver.Host.Events, e => e.Kind == FakeVmEventKind.StopRequested && e.InstanceId == instance.ToString("D"));
    }

    [Fact]
    public async Task A_crash_looping_instance_is_restarted_with_backoff_then_marked_failed_and_replaced()
    {
        var (_, driver, _, stop, run) = await StartAgentAsync(FakeVmScript.ExitAfter(TimeSpan.FromMilliseconds(20), 3, false, "boom"));
        await DeployAsync("loop");
        var states = await WaitForStatesAsync(s => s.Any(x => x.State == InstanceStates.Failed), TimeSpan.FromSeconds(30));
        // The first instance's runs: the first and three restarts, then the agent gives up.
        var exits = states.TakeWhile(s => s.State != InstanceStates.Failed).Where(s => s.State == InstanceStates.Exited).ToList();
        Assert.Equal(4, exits.Count);
        Assert.All(exits, e => Assert.Equal(3, e.ExitCode));
        Assert.Equal([0, 1, 2, 3], exits.Select(e => e.Restarts));
        Assert.Contains("gave up after 3 short runs", states.First(s => s.State == InstanceStates.Failed).Reason);
        var first = driver.Host.Starts[0].InstanceId;
        Assert.Equal(4, driver.Host.Starts.Count(v => v.InstanceId == first));
        // Its deployment served (nothing did before): the scheduler replaces it with a new instance.
        var watch = Stopwatch.StartNew();
        while (driver.Host.Starts.All(v => v.InstanceId == first))
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), "the failed instance was not replaced");
            await Task.Delay(100);
        }
        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task A_VMM_killed_by_the_host_cgroup_is_memory_limit_exceeded()
    {
        var (agent, driver, _, stop, run) = await StartAgentAsync(FakeVmScript.RunUntilStopped());
        await DeployAsync("hog");
        await WaitForStatesAsync(s => s.Any(x => x.State == InstanceStates.Running), TimeSpan.FromSeconds(30));
        var instance = Assert.Single(agent.Instances);
        Assert.True(driver.Host.Crash(instance.ToString("D"), hostOom: true));
        var states = await WaitForStatesAsync(s => s.Any(x => x.State == InstanceStates.MemoryLimitExceeded), TimeSpan.FromSeconds(30));
        Assert.Contains("host memory limit", Assert.Single(states, s => s.State == InstanceStates.MemoryLimitExceeded).Reason);
        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Instances_left_running_at_shutdown_are_adopted_by_the_next_agent()
    {
        var (agent, driver, _, stop, run) = await StartAgentAsync(FakeVmScript.RunUntilStopped());
        await DeployAsync("keep");
        await WaitForStatesAsync(s => s.Any(x => x.State == InstanceStates.Running), TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await run;
        var instance = Assert.Single(agent.Instances);
        Assert.True(driver.Host.IsRunning(instance.ToString("D")), "shutdown leaves the VM running");

        var second = new NodeAgent(new AgentOptions
        {
            NodeName = "fake-node", DataDir = _dir,
        }, _node, new FakeDriver(driver.Host), _ => new FakeLauncher(Path.Combine(_dir, "instances")), _ => { });
        using var stop2 = new CancellationTokenSource();
        var run2 = Task.Run(() => second.RunAsync(stop2.Token));
        var watch = Stopwatch.StartNew();
        while (!second.Instances.Contains(instance) && watch.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(50);
        }
        Assert.Contains(instance, second.Instances);
        Assert.Single(driver.Host.Starts); // adopted, not started again
        await stop2.CancelAsync();
        await run2;
    }
}
