using System.Diagnostics;
using Trc.Agent.Guest;
using Trc.Agent.Runtime;
using Trc.Agent.Runtime.Fake;

namespace Trc.Agent.Tests.Fake;

public sealed class FakeDriverTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly string Instances = Path.Combine(Path.GetTempPath(), "trc-fake-instances");

    private static VmSpec Spec(string id, string? instancesDir = null) => new(
        id, Path.Combine(instancesDir ?? Instances, id), "/k", "/i", "/root.ext4", "/scratch.ext4", "/config.disk",
        [], 256L << 20, 1, null, null);

    [Fact]
    public async Task The_fingerprint_is_available_without_acceleration_unless_a_test_says_otherwise()
    {
        var driver = new FakeDriver();

        Assert.Equal(new DriverFingerprint("fake", true, "fake", "none", null), await driver.FingerprintAsync(CancellationToken.None));
        driver.Fingerprint = new DriverFingerprint("fake", false, null, "none", "no KVM (fake)");
        Assert.False((await driver.FingerprintAsync(CancellationToken.None)).Available);
        Assert.Equal("fake", driver.Name);
    }

    [Fact]
    public async Task A_guest_that_runs_until_stopped_reports_ready_and_its_output_and_exits_on_a_stop()
    {
        var driver = new FakeDriver { DefaultScript = FakeVmScript.RunUntilStopped(42, "listening on :8080") };
        await using var vm = await driver.StartAsync(Spec("a1"), CancellationToken.None);

        var started = await ConsoleFrames.ReadAsync(vm, 2, Patience);
        var exit = await vm.StopAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        var rest = await ConsoleFrames.ReadAllAsync(vm, Patience);

        Assert.Equal(new ConsoleFrame(ConsoleFrameKind.Ready, "42", Pid: 42), started[0]);
        Assert.Equal(new ConsoleFrame(ConsoleFrameKind.Stdout, "listening on :8080"), started[1]);
        Assert.Equal(new VmmExit(false, false, "the guest powered off"), exit);
        Assert.Equal(143, Assert.Single(rest).ExitCode);
        Assert.Equal(
            [FakeVmEventKind.Started, FakeVmEventKind.StopRequested, FakeVmEventKind.Exited],
            driver.Host.EventsOf("a1").Select(e => e.Kind));
        Assert.False(driver.Host.IsRunning("a1"));
    }

    [Fact]
    public async Task A_guest_that_ignores_a_stop_is_killed_after_grace_and_margin()
    {
        var driver = new FakeDriver { DefaultScript = FakeVmScript.IgnoreStop(), StopMargin = TimeSpan.FromMilliseconds(100) };
        await using var vm = await driver.StartAsync(Spec("a2"), CancellationToken.None);
        var watch = Stopwatch.StartNew();

        var exit = await vm.StopAsync(TimeSpan.FromMilliseconds(200), CancellationToken.None);

        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(290), $"killed after {watch.Elapsed}");
        Assert.True(exit.Killed);
        Assert.Equal(exit, await vm.WaitAsync(CancellationToken.None));
        Assert.Equal(
            [FakeVmEventKind.Started, FakeVmEventKind.StopRequested, FakeVmEventKind.Killed, FakeVmEventKind.Exited],
            driver.Host.EventsOf("a2").Select(e => e.Kind));
    }

    [Fact]
    public async Task A_guest_whose_app_exits_by_itself_ends_its_vmm_and_console()
    {
        var driver = new FakeDriver();
        driver.Script("a3", FakeVmScript.ExitAfter(TimeSpan.FromMilliseconds(50), 3, oom: true, "working", "out of memory"));
        await using var vm = await driver.StartAsync(Spec("a3"), CancellationToken.None);

        var frames = await ConsoleFrames.ReadAllAsync(vm, Patience);
        var exit = await vm.WaitAsync(CancellationToken.None);

        Assert.Equal([ConsoleFrameKind.Ready, ConsoleFrameKind.Stdout, ConsoleFrameKind.Stdout, ConsoleFrameKind.Exit], frames.Select(f => f.Kind));
        Assert.Equal(3, frames[^1].ExitCode);
        Assert.True(frames[^1].Oom);
        Assert.False(exit.Killed);
        Assert.False(exit.HostOom);
    }

    [Fact]
    public async Task A_fatal_boot_and_a_failed_start_are_what_the_script_says()
    {
        var driver = new FakeDriver();
        driver.Script("bad-config", FakeVmScript.FatalAtBoot("config disk: bad header at byte 10"));
        driver.Script("no-vmm", FakeVmScript.FailToStart("firecracker: /dev/kvm missing"));

        await using var vm = await driver.StartAsync(Spec("bad-config"), CancellationToken.None);
        var frames = await ConsoleFrames.ReadAllAsync(vm, Patience);
        var e = await Assert.ThrowsAsync<VmStartException>(() => driver.StartAsync(Spec("no-vmm"), CancellationToken.None));

        Assert.Equal(new ConsoleFrame(ConsoleFrameKind.Fatal, "config disk: bad header at byte 10"), Assert.Single(frames));
        Assert.Equal("firecracker: /dev/kvm missing", e.Message);
        Assert.False(driver.Host.IsRunning("no-vmm"));
        Assert.Equal([FakeVmEventKind.StartFailed], driver.Host.EventsOf("no-vmm").Select(x => x.Kind));
        Assert.Equal(["bad-config"], driver.Host.Starts.Select(s => s.InstanceId));
    }

    [Fact]
    public async Task Kills_crashes_and_host_oom_are_told_apart()
    {
        var driver = new FakeDriver();
        driver.Script("oom-in-guest", new FakeVmScript(async (guest, ct) =>
        {
            guest.Ready();
            await guest.DelayAsync(TimeSpan.FromMilliseconds(20), ct);
            guest.HostOomKill();
            await Task.Delay(Timeout.Infinite, ct);
        }));
        await using var killed = await driver.StartAsync(Spec("killed"), CancellationToken.None);
        await using var crashed = await driver.StartAsync(Spec("crashed"), CancellationToken.None);
        await using var oom = await driver.StartAsync(Spec("oom-in-guest"), CancellationToken.None);

        await killed.KillAsync(CancellationToken.None);
        Assert.True(driver.Host.Crash("crashed", hostOom: true));
        Assert.False(driver.Host.Crash("crashed"));

        Assert.Equal(new VmmExit(true, false, "killed by the agent"), await killed.WaitAsync(CancellationToken.None));
        Assert.Equal(new VmmExit(false, true, "killed from outside the agent (fake)"), await crashed.WaitAsync(CancellationToken.None));
        var oomExit = await oom.WaitAsync(new CancellationTokenSource(Patience).Token);
        Assert.True(oomExit.HostOom);
        Assert.False(oomExit.Killed);
        Assert.Empty(driver.Host.Running);
        await Assert.ThrowsAsync<InvalidOperationException>(() => killed.SendAsync(new GuestCommand.Signal(1), CancellationToken.None));
    }

    [Fact]
    public async Task A_new_agent_on_the_same_host_adopts_what_the_old_one_left_running()
    {
        var host = new FakeHost();
        var elsewhere = Path.Combine(Path.GetTempPath(), "trc-fake-other");
        var old = new FakeDriver(host);
        var a = await old.StartAsync(Spec("left-1"), CancellationToken.None);
        var b = await old.StartAsync(Spec("left-2"), CancellationToken.None);
        var c = await old.StartAsync(Spec("other", elsewhere), CancellationToken.None);
        var gone = await old.StartAsync(Spec("gone"), CancellationToken.None);
        await ConsoleFrames.ReadAsync(a, 1, Patience);
        await gone.KillAsync(CancellationToken.None);
        var pids = new[] { a.VmmPid, b.VmmPid };
        foreach (var vm in new[] { a, b, c, gone })
        {
            await vm.DisposeAsync(); // the old agent goes away
        }

        var adopted = await new FakeDriver(host).RecoverAsync(Instances + "/", CancellationToken.None);

        Assert.Equal(["left-1", "left-2"], adopted.Select(v => v.Spec.InstanceId).Order());
        Assert.All(adopted, v => Assert.True(v.Recovered));
        Assert.Equal(pids.Order(), adopted.Select(v => v.VmmPid).Order());
        var first = adopted.Single(v => v.Spec.InstanceId == "left-1");
        await first.SendAsync(new GuestCommand.Signal(10), CancellationToken.None);
        Assert.Equal(new ConsoleFrame(ConsoleFrameKind.Info, "signal 10 forwarded"), (await ConsoleFrames.ReadAsync(first, 1, Patience))[0]);
        foreach (var vm in adopted)
        {
            Assert.False((await vm.StopAsync(TimeSpan.FromSeconds(5), CancellationToken.None)).Killed);
            await vm.DisposeAsync();
        }
        Assert.Equal(["other"], host.Running);
    }

    [Fact]
    public async Task Frames_written_while_no_agent_is_attached_are_lost()
    {
        var host = new FakeHost();
        var release = new TaskCompletionSource();
        var written = new TaskCompletionSource();
        var driver = new FakeDriver(host) { DefaultScript = new FakeVmScript(async (guest, ct) =>
        {
            guest.Stdout("before");
            await release.Task.WaitAsync(ct);
            guest.Stdout("while detached");
            written.SetResult();
            await guest.ReceiveAsync(ct);
            guest.Stdout("after");
            await guest.ReceiveAsync(ct);
        }) };
        var vm = await driver.StartAsync(Spec("detached"), CancellationToken.None);
        Assert.Equal("before", (await ConsoleFrames.ReadAsync(vm, 1, Patience))[0].Text);
        await vm.DisposeAsync();

        release.SetResult();
        await written.Task.WaitAsync(Patience);
        var again = Assert.Single(await new FakeDriver(host).RecoverAsync(Instances, CancellationToken.None));
        await again.SendAsync(new GuestCommand.Signal(1), CancellationToken.None);

        Assert.Equal("after", (await ConsoleFrames.ReadAsync(again, 1, Patience))[0].Text);
        await again.KillAsync(CancellationToken.None);
        await again.DisposeAsync();
    }

    [Fact]
    public async Task A_second_start_of_a_running_instance_is_refused()
    {
        var driver = new FakeDriver();
        await using var vm = await driver.StartAsync(Spec("once"), CancellationToken.None);

        await Assert.ThrowsAsync<VmStartException>(() => driver.StartAsync(Spec("once"), CancellationToken.None));

        await vm.KillAsync(CancellationToken.None);
        await using var second = await driver.StartAsync(Spec("once"), CancellationToken.None);
        Assert.NotEqual(vm.VmmPid, second.VmmPid);
        await second.KillAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Concurrent_starts_and_stops_keep_the_record_whole()
    {
        var driver = new FakeDriver();
        var ids = Enumerable.Range(0, 64).Select(i => "vm-" + i).ToList();

        var vms = await Task.WhenAll(ids.Select(id => Task.Run(() => driver.StartAsync(Spec(id), CancellationToken.None))));
        var exits = await Task.WhenAll(vms.Select(vm => Task.Run(() => vm.StopAsync(TimeSpan.FromSeconds(5), CancellationToken.None))));

        Assert.All(exits, e => Assert.False(e.Killed));
        Assert.Equal(64, vms.Select(v => v.VmmPid).Distinct().Count());
        Assert.Empty(driver.Host.Running);
        Assert.Equal(ids.Order(), driver.Host.Starts.Select(s => s.InstanceId).Order());
        Assert.All(ids, id => Assert.Equal(
            [FakeVmEventKind.Started, FakeVmEventKind.StopRequested, FakeVmEventKind.Exited],
            driver.Host.EventsOf(id).Select(e => e.Kind)));
    }

    [Fact]
    public async Task A_slow_start_takes_its_time_and_can_be_cancelled()
    {
        var driver = new FakeDriver { DefaultScript = FakeVmScript.RunUntilStopped() with { StartDelay = TimeSpan.FromSeconds(30) } };
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => driver.StartAsync(Spec("slow"), cancel.Token));

        Assert.Empty(driver.Host.Starts);
    }
}
