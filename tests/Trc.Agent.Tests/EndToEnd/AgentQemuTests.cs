using System.Runtime.Versioning;
using System.Text;
using Trc.Agent.Runtime;
using Trc.Core.Api;

namespace Trc.Agent.Tests.EndToEnd;

/// <summary>
/// The agent end to end with real QEMU microVMs (TCG), a real control plane and a real registry:
/// deploy through the API, watch states, logs and the network from the host. Each test deploys its
/// own app so they do not disturb each other; they share one server, registry and agent.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(AgentBedCollection.Name)]
public sealed class AgentQemuTests(AgentBed bed)
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(120);

    [QemuFact]
    public async Task A_deployed_app_runs_with_its_environment_and_secrets_and_the_host_connects()
    {
        var ct = CancellationToken.None;
        var secret = "s3cret-" + Guid.NewGuid().ToString("N")[..12];
        var release = await bed.DeployAsync("web", "web.sh", secrets: new Dictionary<string, byte[]> { ["API_KEY"] = Encoding.UTF8.GetBytes(secret) },
            extra: """

            [processes.web.healthcheck]
            tcp = 8080
            interval = "1s"
            timeout = "1s"
            """, ct: ct);
        var instance = await bed.WaitForStateAsync("web", release.Number, Boot, InstanceStates.Healthy);
        Assert.NotNull(instance.Address);
        Assert.StartsWith(bed.Network.Prefix.Split("::")[0], instance.Address);

        // The host reaches the app at the instance's address over the node bridge.
        var banner = await AgentBed.ReadBannerAsync(instance.Address!, 8080, ct);
        Assert.Equal($"hello from {instance.Id}", banner);

        var lines = await bed.WaitForLogAsync("web", "uid ", TimeSpan.FromSeconds(30), instance.Id);
        string Line(string prefix) => Assert.Single(lines, l => l.Line.StartsWith(prefix, StringComparison.Ordinal)).Line;
        Assert.Equal($"env TRC_APP=web TRC_ENV=prod TRC_PROCESS=web TRC_RELEASE_ID={release.Number} TRC_INSTANCE_ID={instance.Id} IMAGE_VAR=from-image", Line("env "));
        Assert.Equal("secrets 400 0 0", Line("secrets "));
        Assert.Equal("overlay written", Line("overlay "));
        Assert.Equal("uid 0", Line("uid "));
        var cmdline = Line("cmdline ");
        Assert.Contains("console=ttyS0", cmdline);
        Assert.DoesNotContain(secret, cmdline);
        Assert.Contains(lines, l => l.Stream == "stderr" && l.Line == "to stderr");
        Assert.All(lines.Where(l => l.Stream is "stdout" or "stderr"), l =>
        {
            Assert.Equal("web", l.App);
            Assert.Equal("prod", l.Env);
            Assert.Equal("web", l.Process);
            Assert.Equal(release.Number, l.Release);
        });
        // No log line anywhere carries the secret.
        Assert.DoesNotContain(lines, l => l.Line.Contains(secret, StringComparison.Ordinal));
        Assert.DoesNotContain(secret, bed.AgentLog);
        // The config disk (it holds the secrets) left the host's disk once the guest read it.
        Assert.False(File.Exists(Path.Combine(bed.DataDir, "instances", instance.Id.ToString("D"), "config.img")));
    }

    [QemuFact]
    public async Task A_redeploy_stops_the_old_instance_with_SIGTERM_and_starts_the_new_one()
    {
        var ct = CancellationToken.None;
        var first = await bed.DeployAsync("roll", "web.sh", ct: ct);
        var old = await bed.WaitForStateAsync("roll", first.Number, Boot, InstanceStates.Running);
        await bed.WaitForLogAsync("roll", "uid ", TimeSpan.FromSeconds(30), old.Id);
        var second = await bed.DeployAsync("roll", "web.sh", memory: "160Mi", ct: ct);
        await bed.WaitForInstanceStateAsync(old.Id, TimeSpan.FromSeconds(60), InstanceStates.Stopped);
        await bed.WaitForLogAsync("roll", "got TERM", TimeSpan.FromSeconds(30), old.Id);
        var fresh = await bed.WaitForStateAsync("roll", second.Number, Boot, InstanceStates.Running);
        Assert.NotEqual(old.Id, fresh.Id);
        Assert.False(Directory.Exists(Path.Combine(bed.DataDir, "instances", old.Id.ToString("D"))), "a stopped instance's directory is removed");
    }

    [QemuFact]
    public async Task An_exit_code_is_reported_and_the_instance_is_restarted()
    {
        var release = await bed.DeployAsync("exits", "exit.sh", ct: CancellationToken.None);
        var instance = await bed.WaitForStateAsync("exits", release.Number, Boot, InstanceStates.Exited, InstanceStates.Starting);
        // Wait for a second run: the restart policy boots it again.
        var deadline = DateTime.UtcNow + Boot;
        IReadOnlyList<Core.Domain.InstanceStateChanged> states = [];
        while (DateTime.UtcNow < deadline)
        {
            states = await bed.StatesOfAsync(instance.Id);
            if (states.Count(s => s.State == InstanceStates.Exited) >= 2)
            {
                break;
            }
            await Task.Delay(500);
        }
        var exits = states.Where(s => s.State == InstanceStates.Exited).ToList();
        Assert.True(exits.Count >= 2, "restarted after exiting: " + string.Join(", ", states.Select(s => s.State)) + "\n" + bed.AgentLog);
        Assert.All(exits, e => Assert.Equal(7, e.ExitCode));
        Assert.True(exits[1].Restarts > exits[0].Restarts);
        await bed.WaitForLogAsync("exits", "exiting with 7", TimeSpan.FromSeconds(10), instance.Id);
    }

    [QemuFact]
    public async Task An_app_allocating_past_its_cap_ends_as_memory_limit_exceeded()
    {
        var release = await bed.DeployAsync("hungry", "oom.sh", ct: CancellationToken.None);
        var instance = await bed.WaitForStateAsync("hungry", release.Number, Boot, InstanceStates.MemoryLimitExceeded);
        Assert.Equal(137, instance.ExitCode);
        Assert.Contains("memory cap", instance.Reason);
        var lines = await bed.WaitForLogAsync("hungry", "allocating", TimeSpan.FromSeconds(10), instance.Id);
        Assert.DoesNotContain(lines, l => l.Line == "survived");
    }

    [QemuFact]
    public async Task An_app_ignoring_SIGTERM_is_killed_after_the_grace_period()
    {
        var ct = CancellationToken.None;
        var first = await bed.DeployAsync("stubborn", "stubborn.sh", ct: ct);
        var instance = await bed.WaitForStateAsync("stubborn", first.Number, Boot, InstanceStates.Running);
        await bed.WaitForLogAsync("stubborn", "ignoring TERM", TimeSpan.FromSeconds(30), instance.Id);
        var started = DateTime.UtcNow;
        await bed.DeployAsync("stubborn", "web.sh", ct: ct);
        await bed.WaitForInstanceStateAsync(instance.Id, TimeSpan.FromSeconds(60), InstanceStates.Stopped);
        var took = DateTime.UtcNow - started;
        // The grace period is 3 s: the stop cannot be quicker, and must not wait much longer.
        Assert.True(took >= TimeSpan.FromSeconds(3), $"stopped after {took.TotalSeconds:0.0} s, before the grace period ended");
        Assert.True(took < TimeSpan.FromSeconds(30), $"stopped only after {took.TotalSeconds:0.0} s");
        Assert.Null(await Task.Run(() => FindVmm(instance.Id), ct));
    }

    [QemuFact]
    public async Task After_an_agent_restart_running_VMs_are_adopted_not_started_twice()
    {
        var ct = CancellationToken.None;
        var release = await bed.DeployAsync("adopt", "web.sh", ct: ct);
        var instance = await bed.WaitForStateAsync("adopt", release.Number, Boot, InstanceStates.Running);
        var pid = FindVmm(instance.Id);
        Assert.NotNull(pid);

        await bed.RestartAgentAsync(ct);
        // Give the new agent time to reconcile, then check: same VMM process, still serving, one instance.
        await Task.Delay(TimeSpan.FromSeconds(3), ct);
        Assert.Contains(instance.Id, bed.Agent.Instances);
        Assert.Equal(pid, FindVmm(instance.Id));
        Assert.Equal($"hello from {instance.Id}", await AgentBed.ReadBannerAsync(instance.Address!, 8080, ct));
        var instances = await bed.Admin.ListInstancesAsync(AgentBed.Org, "adopt", "prod", ct);
        Assert.Single(instances.Items, i => i.State is InstanceStates.Running or InstanceStates.Healthy or InstanceStates.Starting);
        var states = await bed.StatesOfAsync(instance.Id);
        Assert.Single(states, s => s.State == InstanceStates.Starting);
    }

    private int? FindVmm(Guid instance)
    {
        var record = Path.Combine(bed.DataDir, "instances", instance.ToString("D"), "qemu.pid");
        if (!File.Exists(record))
        {
            return null;
        }
        var pid = int.Parse(File.ReadAllText(record).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        return HostProcess.Find(pid) is { IsAlive: true } ? pid : null;
    }
}

[CollectionDefinition(Name)]
public sealed class AgentBedCollection : ICollectionFixture<AgentBed>
{
    public const string Name = "agent-qemu";
}
