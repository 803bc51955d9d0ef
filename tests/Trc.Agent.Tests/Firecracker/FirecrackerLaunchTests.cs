using Trc.Agent.Runtime;
using Trc.Agent.Runtime.Firecracker;

namespace Trc.Agent.Tests.Firecracker;

public sealed class FirecrackerLaunchTests
{
    private const string Id = "0e9f6a8c-7d1b-4c2e-9f3a-5b6c7d8e9f01";

    private static VmSpec Spec(params string[] volumes) => new(
        Id, "/var/lib/trc/instances/" + Id, "/var/lib/trc/guest/vmlinux", "/var/lib/trc/guest/initrd.cpio",
        "/var/lib/trc/disks/release.ext4", "/var/lib/trc/instances/" + Id + "/scratch.ext4", "/var/lib/trc/instances/" + Id + "/config.disk",
        volumes, 512L << 20, 2, new VmNetwork("trc-tap3", "02:fc:00:00:00:03"), new VmCgroup(Id, 600L << 20, 100));

    private static readonly FirecrackerOptions Jailed = new()
    {
        FirecrackerBinary = "/usr/local/bin/firecracker",
        JailerBinary = "/usr/local/bin/jailer",
        Uid = 990,
        Gid = 991,
        ChrootBaseDir = "/srv/jailer",
        NetworkNamespace = "/run/netns/trc",
    };

    [Fact]
    public void The_jailer_gets_its_documented_arguments_and_firecracker_its_own_after_the_separator()
    {
        var plan = FirecrackerLaunch.Plan(Spec(), Jailed);

        Assert.Equal("/usr/local/bin/jailer", plan.Executable);
        Assert.Equal(
        [
            "--id", Id,
            "--exec-file", "/usr/local/bin/firecracker",
            "--uid", "990",
            "--gid", "991",
            "--chroot-base-dir", "/srv/jailer",
            "--netns", "/run/netns/trc",
            "--",
            "--api-sock", "/api.sock",
            "--log-path", "/firecracker.log",
            "--level", "Warning",
        ], plan.Arguments);
        // Not --daemonize: the serial console is the VMM's stdio, which it would send to /dev/null.
        Assert.DoesNotContain("--daemonize", plan.Arguments);
        Assert.Equal($"/srv/jailer/firecracker/{Id}/root/api.sock", plan.ApiSocket);
        Assert.Equal($"/srv/jailer/firecracker/{Id}", plan.JailDirectory);
    }

    [Fact]
    public void A_jailed_vmm_sees_jail_paths_and_the_jail_links_every_file()
    {
        var spec = Spec("/var/lib/trc/volumes/data.ext4", "/var/lib/trc/volumes/cache.ext4");
        var plan = FirecrackerLaunch.Plan(spec, Jailed);
        var root = $"/srv/jailer/firecracker/{Id}/root/";

        Assert.Equal("/vmlinux", plan.KernelPath);
        Assert.Equal("/initrd", plan.InitrdPath);
        Assert.Equal(
        [
            new FirecrackerDrive("vda", "/vda", ReadOnly: true),
            new FirecrackerDrive("vdb", "/vdb", ReadOnly: false),
            new FirecrackerDrive("vdc", "/vdc", ReadOnly: true),
            new FirecrackerDrive("vdd", "/vdd", ReadOnly: false),
            new FirecrackerDrive("vde", "/vde", ReadOnly: false),
        ], plan.Drives);
        Assert.Equal(
        [
            new FirecrackerJailFile(spec.Kernel, root + "vmlinux", Writable: false, InstanceOwned: false),
            new FirecrackerJailFile(spec.Initrd, root + "initrd", Writable: false, InstanceOwned: false),
            new FirecrackerJailFile(spec.RootDisk, root + "vda", Writable: false, InstanceOwned: false),
            new FirecrackerJailFile(spec.ScratchDisk, root + "vdb", Writable: true, InstanceOwned: true),
            new FirecrackerJailFile(spec.ConfigDisk, root + "vdc", Writable: false, InstanceOwned: true),
            new FirecrackerJailFile(spec.Volumes[0], root + "vdd", Writable: true, InstanceOwned: true),
            new FirecrackerJailFile(spec.Volumes[1], root + "vde", Writable: true, InstanceOwned: true),
        ], plan.JailFiles);
        Assert.Equal(root + "firecracker.log", plan.LogFile);
    }

    [Fact]
    public void Without_the_jailer_firecracker_runs_on_host_paths_from_the_state_directory()
    {
        var spec = Spec("/var/lib/trc/volumes/data.ext4");
        var plan = FirecrackerLaunch.Plan(spec, Jailed with { UseJailer = false, NetworkNamespace = null, Uid = null, Gid = null });

        Assert.Equal("/usr/local/bin/firecracker", plan.Executable);
        Assert.Equal(["--id", Id, "--api-sock", spec.StateDir + "/api.sock", "--log-path", spec.StateDir + "/firecracker.log", "--level", "Warning"], plan.Arguments);
        Assert.Null(plan.JailDirectory);
        Assert.Empty(plan.JailFiles);
        Assert.Equal(spec.Kernel, plan.KernelPath);
        Assert.Equal([spec.RootDisk, spec.ScratchDisk, spec.ConfigDisk, spec.Volumes[0]], plan.Drives.Select(d => d.PathOnHost));
    }

    [Theory]
    [InlineData(1L, 1L)]
    [InlineData(256L << 20, 256L)]
    [InlineData((256L << 20) + 1, 257L)]
    [InlineData(64L << 30, 65536L)]
    public void Guest_memory_is_whole_mebibytes_rounded_up(long bytes, long mib)
    {
        Assert.Equal(mib, FirecrackerLaunch.Plan(Spec() with { MemoryBytes = bytes }, Jailed).MemoryMib);
    }

    [Theory]
    [InlineData(0, "vda")]
    [InlineData(3, "vdd")]
    [InlineData(25, "vdz")]
    [InlineData(26, "vdaa")]
    [InlineData(27, "vdab")]
    [InlineData(701, "vdzz")]
    [InlineData(702, "vdaaa")]
    public void Disks_are_named_as_linux_names_them(int index, string name)
    {
        Assert.Equal(name, FirecrackerLaunch.DiskName(index));
    }

    [Fact]
    public void Specs_and_options_firecracker_cannot_run_are_refused_before_anything_starts()
    {
        void Refused(VmSpec spec, FirecrackerOptions options, string reason)
        {
            var e = Assert.Throws<VmStartException>(() => FirecrackerLaunch.Plan(spec, options));
            Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        }

        Refused(Spec() with { InstanceId = "has_underscore" }, Jailed, "not a Firecracker id");
        Refused(Spec() with { InstanceId = new string('a', 65) }, Jailed, "not a Firecracker id");
        Refused(Spec() with { Vcpus = 0 }, Jailed, "1 to 32 vCPUs");
        Refused(Spec() with { Vcpus = 33 }, Jailed, "1 to 32 vCPUs");
        Refused(Spec() with { MemoryBytes = 0 }, Jailed, "memory must be positive");
        Refused(Spec() with { RootDisk = "release.ext4" }, Jailed, "root disk path 'release.ext4' is not absolute");
        Refused(Spec(), Jailed with { Uid = null }, "Uid and Gid");
        Refused(Spec(), Jailed with { UseJailer = false }, "network namespace needs the jailer");
        Refused(Spec(), Jailed with { ChrootBaseDir = "/" + new string('j', 60) }, "longer than a unix socket path");
        Refused(Spec() with { StateDir = "/" + new string('s', 100) }, Jailed with { UseJailer = false, NetworkNamespace = null }, "longer than a unix socket path");
    }
}
