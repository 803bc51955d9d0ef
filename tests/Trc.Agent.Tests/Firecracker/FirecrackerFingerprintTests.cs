using System.Diagnostics;
using System.Runtime.Versioning;
using Trc.Agent.Runtime.Firecracker;

namespace Trc.Agent.Tests.Firecracker;

[SupportedOSPlatform("linux")]
public sealed class FirecrackerFingerprintTests
{
    [Fact]
    public async Task A_missing_firecracker_binary_makes_the_driver_unavailable_and_says_where_it_looked()
    {
        var fingerprint = await new FirecrackerDriver(new FirecrackerOptions { FirecrackerBinary = "/nonexistent/firecracker", Uid = 1, Gid = 1 })
            .FingerprintAsync(CancellationToken.None);

        Assert.Equal("firecracker", fingerprint.Driver);
        Assert.False(fingerprint.Available);
        Assert.Equal("none", fingerprint.Acceleration);
        Assert.Contains("/nonexistent/firecracker is not installed", fingerprint.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_jailer_or_jail_user_makes_the_driver_unavailable()
    {
        using var bed = new FirecrackerTestBed();
        var options = bed.Options(jailer: true);

        var noJailer = await new FirecrackerDriver(options with { JailerBinary = "/nonexistent/jailer" }).FingerprintAsync(CancellationToken.None);
        var noUser = await new FirecrackerDriver(options with { Uid = null }).FingerprintAsync(CancellationToken.None);
        var noBase = await new FirecrackerDriver(options with { ChrootBaseDir = "/nonexistent/jails" }).FingerprintAsync(CancellationToken.None);

        Assert.False(noJailer.Available);
        Assert.Contains("/nonexistent/jailer is not installed", noJailer.Reason, StringComparison.Ordinal);
        Assert.False(noUser.Available);
        Assert.Contains("TRC_JAILER_UID and TRC_JAILER_GID", noUser.Reason, StringComparison.Ordinal);
        Assert.False(noBase.Available);
        Assert.Contains("/nonexistent/jails does not exist", noBase.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/nonexistent/kvm", "/nonexistent/kvm does not exist")]
    [InlineData("/dev/null", "/dev/null is not a KVM device")]
    public async Task Without_a_working_kvm_device_the_driver_is_unavailable_with_the_version_it_found(string device, string reason)
    {
        using var bed = new FirecrackerTestBed();

        var fingerprint = await new FirecrackerDriver(bed.Options(jailer: true) with { KvmDevice = device }).FingerprintAsync(CancellationToken.None);

        Assert.False(fingerprint.Available);
        Assert.Equal("Firecracker v0.0.0-standin", fingerprint.Version);
        Assert.Contains(reason, fingerprint.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_kvm_probe_gives_a_verdict_within_its_time_bound_on_this_host()
    {
        // Either verdict is right somewhere; what must hold everywhere is that the probe never hangs.
        var watch = Stopwatch.StartNew();

        await KvmProbe.ProblemAsync("/dev/kvm", TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(7), $"the probe took {watch.Elapsed}");
    }

    [Fact]
    public async Task A_boot_probe_that_hangs_is_killed_at_its_timeout_and_reported()
    {
        using var bed = new FirecrackerTestBed();
        var hanging = Script(bed, "hang", "exec sleep 60");
        var watch = Stopwatch.StartNew();

        var problem = await FirecrackerDriver.BootProbeAsync(hanging, bed.Kernel, TimeSpan.FromSeconds(1), CancellationToken.None);

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"the probe took {watch.Elapsed}");
        Assert.Contains("did not boot a test kernel within 1 s", problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_boot_probe_passes_when_firecracker_ends_cleanly_and_fails_with_its_output_otherwise()
    {
        using var bed = new FirecrackerTestBed();
        // The stand-in checks it was given a config file naming the kernel, as Firecracker would read it.
        var booting = Script(bed, "boots", $"grep -q '{bed.Kernel}' \"$3\" && grep -q 'reboot=k' \"$3\" && [ \"$1\" = --no-api ]");
        var failing = Script(bed, "fails", "echo 'Error: KVM_CREATE_VM failed' >&2; exit 1");

        Assert.Null(await FirecrackerDriver.BootProbeAsync(booting, bed.Kernel, TimeSpan.FromSeconds(10), CancellationToken.None));
        var problem = await FirecrackerDriver.BootProbeAsync(failing, bed.Kernel, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Contains("exit 1", problem, StringComparison.Ordinal);
        Assert.Contains("KVM_CREATE_VM failed", problem, StringComparison.Ordinal);
    }

    private static string Script(FirecrackerTestBed bed, string name, string body)
    {
        var path = Path.Combine(bed.Root, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        return path;
    }
}
