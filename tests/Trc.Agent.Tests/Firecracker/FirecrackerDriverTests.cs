using System.Diagnostics;
using System.Runtime.Versioning;
using System.Text.Json.Nodes;
using Trc.Agent.Guest;
using Trc.Agent.Runtime;
using Trc.Agent.Runtime.Firecracker;

namespace Trc.Agent.Tests.Firecracker;

/// <summary>
/// The driver's process and console plumbing, with the stand-in VMM of <see cref="FirecrackerTestBed"/>
/// (a shell script: it proves argv, FIFOs, signals, reaping and recovery, not Firecracker itself)
/// and the fake API for the configuration step. No VM boots here: this machine has no usable KVM.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class FirecrackerDriverTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static async Task<IVm> StartAsync(FirecrackerTestBed bed, FirecrackerDriver driver, VmSpec spec)
    {
        await using var api = FakeFirecrackerApi.WhenLaunched(bed.ArgvFile, FirecrackerTestBed.SocketOf);
        return await driver.StartAsync(spec, CancellationToken.None);
    }

    [Fact]
    public async Task The_console_carries_the_guests_frames_and_the_agents_commands()
    {
        using var bed = new FirecrackerTestBed();
        var driver = new FirecrackerDriver(bed.Options(jailer: false));
        await using var vm = await StartAsync(bed, driver, bed.Spec("aaaaaaaa-0000-4000-8000-000000000001"));
        try
        {
            // Written before anyone read: the FIFO kept them.
            var boot = await ConsoleFrames.ReadAsync(vm, 2, Patience);
            Assert.Equal(new ConsoleFrame(ConsoleFrameKind.Kernel, "stand-in VMM up"), boot[0]);
            Assert.Equal(new ConsoleFrame(ConsoleFrameKind.Info, "booted"), boot[1]);

            await vm.SendAsync(new GuestCommand.Signal(10), CancellationToken.None);
            Assert.Equal(new ConsoleFrame(ConsoleFrameKind.Info, "signal 10"), (await ConsoleFrames.ReadAsync(vm, 1, Patience))[0]);
            Assert.Equal(bed.StandInPid, vm.VmmPid);
            Assert.False(vm.Recovered);
        }
        finally
        {
            await vm.KillAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_stop_the_guest_obeys_ends_the_vmm_without_a_kill_and_ends_the_console()
    {
        using var bed = new FirecrackerTestBed();
        var driver = new FirecrackerDriver(bed.Options(jailer: false));
        await using var vm = await StartAsync(bed, driver, bed.Spec("aaaaaaaa-0000-4000-8000-000000000002"));
        await ConsoleFrames.ReadAsync(vm, 2, Patience);
        var watch = Stopwatch.StartNew();

        var exit = await vm.StopAsync(TimeSpan.FromSeconds(10), CancellationToken.None);

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"the stop took {watch.Elapsed}");
        Assert.Equal(new VmmExit(false, false, "exited with status 0"), exit);
        var rest = new List<ConsoleFrame>();
        await foreach (var frame in vm.ReadConsoleAsync(new CancellationTokenSource(Patience).Token))
        {
            rest.Add(frame);
        }
        // The console ends because the VMM is gone; the stand-in answered the stop frame first.
        Assert.Equal(ConsoleFrameKind.Exit, Assert.Single(rest).Kind);
        Assert.Equal(143, rest[0].ExitCode);
        Assert.Equal(exit, await vm.WaitAsync(CancellationToken.None));
        Assert.Null(HostProcess.Find(bed.StandInPid));
    }

    [Fact]
    public async Task A_stop_the_guest_ignores_kills_the_vmm_after_grace_and_margin()
    {
        using var bed = new FirecrackerTestBed(obeyStop: false);
        var driver = new FirecrackerDriver(bed.Options(jailer: false));
        await using var vm = await StartAsync(bed, driver, bed.Spec("aaaaaaaa-0000-4000-8000-000000000003"));
        var watch = Stopwatch.StartNew();

        var exit = await vm.StopAsync(TimeSpan.FromMilliseconds(300), CancellationToken.None);

        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(1300), $"killed after {watch.Elapsed}, before grace + margin");
        Assert.True(exit.Killed);
        Assert.False(exit.HostOom);
        Assert.Null(HostProcess.Find(bed.StandInPid));
    }

    [Fact]
    public async Task A_later_agent_adopts_the_running_vmm_and_talks_to_its_console_again()
    {
        using var bed = new FirecrackerTestBed();
        var spec = bed.Spec("aaaaaaaa-0000-4000-8000-000000000004");
        var first = await StartAsync(bed, new FirecrackerDriver(bed.Options(jailer: true)), spec);
        await ConsoleFrames.ReadAsync(first, 2, Patience);
        var pid = first.VmmPid;
        await first.DisposeAsync(); // the agent goes away; the VMM must not

        var recovered = await new FirecrackerDriver(bed.Options(jailer: true)).RecoverAsync(bed.Instances, CancellationToken.None);

        var vm = Assert.Single(recovered);
        await using (vm)
        {
            Assert.True(vm.Recovered);
            Assert.Equal(pid, vm.VmmPid);
            // The spec came back from the record (its list compared by content, the rest by value).
            Assert.Equal(spec.Volumes, vm.Spec.Volumes);
            Assert.Equal(spec, vm.Spec with { Volumes = spec.Volumes });
            await vm.SendAsync(new GuestCommand.Signal(12), CancellationToken.None);
            Assert.Equal(new ConsoleFrame(ConsoleFrameKind.Info, "signal 12"), (await ConsoleFrames.ReadAsync(vm, 1, Patience))[0]);
            var exit = await vm.StopAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            Assert.False(exit.Killed);
        }
        // Gone with its VMM: the jail; kept for the caller: the state directory.
        Assert.False(Directory.Exists(Path.Combine(bed.ChrootBase, "firecracker", spec.InstanceId)));
        Assert.True(Directory.Exists(spec.StateDir));
    }

    [Fact]
    public async Task Recovery_skips_a_vmm_that_died_meanwhile_and_removes_its_jail()
    {
        using var bed = new FirecrackerTestBed();
        var spec = bed.Spec("aaaaaaaa-0000-4000-8000-000000000005");
        var first = await StartAsync(bed, new FirecrackerDriver(bed.Options(jailer: true)), spec);
        await first.DisposeAsync();
        var process = HostProcess.Find(bed.StandInPid)!;
        Assert.True(process.Signal(HostProcess.SigKill));
        await process.WaitForExitAsync(new CancellationTokenSource(Patience).Token);
        var jail = Path.Combine(bed.ChrootBase, "firecracker", spec.InstanceId);
        Assert.True(Directory.Exists(jail));

        var recovered = await new FirecrackerDriver(bed.Options(jailer: true)).RecoverAsync(bed.Instances, CancellationToken.None);

        Assert.Empty(recovered);
        Assert.False(Directory.Exists(jail));
        Assert.True(File.Exists(Path.Combine(spec.StateDir, FirecrackerLaunch.RecordFile)), "the state directory is the caller's to clean");
    }

    [Fact]
    public async Task Recovery_kills_a_vmm_left_before_its_guest_was_started()
    {
        using var bed = new FirecrackerTestBed();
        var spec = bed.Spec("aaaaaaaa-0000-4000-8000-000000000006");
        var first = await StartAsync(bed, new FirecrackerDriver(bed.Options(jailer: false)), spec);
        await first.DisposeAsync();
        // As if the agent had died between spawning the VMM and InstanceStart.
        var record = Path.Combine(spec.StateDir, FirecrackerLaunch.RecordFile);
        var json = JsonNode.Parse(File.ReadAllText(record))!;
        json["started"] = false;
        File.WriteAllText(record, json.ToJsonString());

        var recovered = await new FirecrackerDriver(bed.Options(jailer: false)).RecoverAsync(bed.Instances, CancellationToken.None);

        Assert.Empty(recovered);
        Assert.False(HostProcess.Find(bed.StandInPid)?.IsAlive ?? false);
    }

    [Fact]
    public async Task A_start_is_refused_while_the_instances_vmm_still_runs()
    {
        using var bed = new FirecrackerTestBed();
        var spec = bed.Spec("aaaaaaaa-0000-4000-8000-000000000007");
        var driver = new FirecrackerDriver(bed.Options(jailer: false));
        var first = await StartAsync(bed, driver, spec);
        await first.DisposeAsync();

        var e = await Assert.ThrowsAsync<VmStartException>(() => driver.StartAsync(spec, CancellationToken.None));

        Assert.Contains($"still runs (pid {bed.StandInPid})", e.Message, StringComparison.Ordinal);
        var adopted = Assert.Single(await driver.RecoverAsync(bed.Instances, CancellationToken.None));
        await adopted.KillAsync(CancellationToken.None);
        await adopted.DisposeAsync();
    }

    [Fact]
    public async Task A_jailed_start_links_the_instances_files_into_the_jail_and_passes_the_planned_argv()
    {
        using var bed = new FirecrackerTestBed();
        var spec = bed.Spec("aaaaaaaa-0000-4000-8000-000000000008", volumes: 1);
        var options = bed.Options(jailer: true);
        await using var vm = await StartAsync(bed, new FirecrackerDriver(options), spec);
        var root = Path.Combine(bed.ChrootBase, "firecracker", spec.InstanceId, "root");
        try
        {
            Assert.Equal(FirecrackerLaunch.Plan(spec, options).Arguments, bed.Argv);
            // Hard links, not copies: what the VMM writes lands in the instance's own files.
            File.AppendAllText(Path.Combine(root, "vdb"), "+guest-write");
            File.AppendAllText(Path.Combine(root, "vdd"), "+guest-write");
            Assert.EndsWith("+guest-write", File.ReadAllText(spec.ScratchDisk), StringComparison.Ordinal);
            Assert.EndsWith("+guest-write", File.ReadAllText(spec.Volumes[0]), StringComparison.Ordinal);
            Assert.Equal(File.ReadAllText(spec.ConfigDisk), File.ReadAllText(Path.Combine(root, "vdc")));
            Assert.Equal(File.ReadAllText(spec.Kernel), File.ReadAllText(Path.Combine(root, "vmlinux")));
        }
        finally
        {
            await vm.KillAsync(CancellationToken.None);
        }
        Assert.False(Directory.Exists(Path.GetDirectoryName(root)), "the jail outlived its VMM");
        Assert.True(File.Exists(spec.ScratchDisk));
    }

    [Fact]
    public async Task A_vmm_that_dies_at_once_fails_the_start_with_its_stderr()
    {
        using var bed = new FirecrackerTestBed();
        var dying = Path.Combine(bed.Root, "dying");
        File.WriteAllText(dying, "#!/bin/sh\necho 'Jailer error: cannot create cgroup' >&2\nexit 1\n");
        File.SetUnixFileMode(dying, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var driver = new FirecrackerDriver(bed.Options(jailer: false) with { FirecrackerBinary = dying });

        var e = await Assert.ThrowsAsync<VmStartException>(() => driver.StartAsync(bed.Spec("aaaaaaaa-0000-4000-8000-000000000009"), CancellationToken.None));

        Assert.Contains("Jailer error: cannot create cgroup", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_vmm_that_never_opens_its_api_socket_fails_the_start_in_time_and_is_killed()
    {
        using var bed = new FirecrackerTestBed();
        var driver = new FirecrackerDriver(bed.Options(jailer: false) with { ApiSocketTimeout = TimeSpan.FromSeconds(1) });
        var watch = Stopwatch.StartNew();

        // No fake API: nothing ever listens.
        var e = await Assert.ThrowsAsync<VmStartException>(() => driver.StartAsync(bed.Spec("aaaaaaaa-0000-4000-8000-00000000000a"), CancellationToken.None));

        Assert.Contains("did not open its API socket", e.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
        Assert.Null(HostProcess.Find(bed.StandInPid));
    }
}
