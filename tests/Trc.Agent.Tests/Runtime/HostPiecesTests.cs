using System.Net;
using Trc.Agent.Network;
using Trc.Agent.Runtime;
using Trc.Agent.Runtime.Qemu;

namespace Trc.Agent.Tests.Runtime;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
/// <summary>The host-side pieces' input checks and derivations: node prefix, addresses, cgroup files, QEMU's argv.</summary>
public sealed class HostPiecesTests
{
    [Theory]
    [InlineData("fd74:7263:0:1::/48")]
    [InlineData("fd74:7263:0:1::")]
    [InlineData("10.0.0.0/64")]
    [InlineData("fd74:7263:0:1::5/64")]
    [InlineData("not a prefix/64")]
    [InlineData("")]
    public void A_node_prefix_that_is_not_an_IPv6_64_is_refused_by_name(string prefix)
    {
        var e = Assert.Throws<ArgumentException>(() => new NodeNetwork("trc0", prefix));
        Assert.Equal("prefix", e.ParamName);
        Assert.Contains($"'{prefix}'", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a-very-long-bridge-name")]
    [InlineData("br 0")]
    [InlineData("br/0")]
    public void A_bridge_name_Linux_would_refuse_is_refused_first(string bridge)
    {
        Assert.Equal("bridge", Assert.Throws<ArgumentException>(() => new NodeNetwork(bridge, "fd74:7263:0:1::/64")).ParamName);
    }

    [Fact]
    public void Instance_addresses_stay_in_the_node_prefix_and_are_never_the_gateway()
    {
        var network = new NodeNetwork("trc0", "fd74:7263:0:1::/64");
        Assert.Equal(IPAddress.Parse("fd74:7263:0:1::1"), network.Gateway);
        var seen = new HashSet<IPAddress>();
        for (var i = 0; i < 2000; i++)
        {
            var id = Guid.NewGuid();
            var address = network.AddressOf(id);
            Assert.Equal(network.AddressOf(id), address); // derived, stable
            Assert.Equal(IPAddress.Parse("fd74:7263:0:1::").GetAddressBytes()[..8], address.GetAddressBytes()[..8]);
            Assert.NotEqual(network.Gateway, address);
            Assert.True(seen.Add(address));
            Assert.Matches("^02(:[0-9a-f]{2}){5}$", NodeNetwork.MacOf(id));
            Assert.InRange(NodeNetwork.TapOf(id).Length, 1, 15);
        }
    }

    [Fact]
    public void Cgroup_v1_limits_are_written_to_the_memory_and_cpu_hierarchies()
    {
        var root = Directory.CreateTempSubdirectory("trc-cgroup-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "memory"));
            File.WriteAllText(Path.Combine(root, "memory", "cgroup.procs"), "");
            var cgroups = new Cgroups("trc", root);
            Assert.Equal(CgroupVersion.V1, cgroups.Version);
            cgroups.Create(new VmCgroup("vm1", 300L << 20, 50));
            Assert.Equal((300L << 20).ToString(), File.ReadAllText(Path.Combine(root, "memory", "trc", "vm1", "memory.limit_in_bytes")));
            Assert.Equal("512", File.ReadAllText(Path.Combine(root, "cpu", "trc", "vm1", "cpu.shares")));
            File.WriteAllText(Path.Combine(root, "memory", "trc", "vm1", "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
            Assert.Equal(2, cgroups.OomKills("vm1"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Cgroup_v2_limits_and_oom_count_use_the_unified_files()
    {
        var root = Directory.CreateTempSubdirectory("trc-cgroup-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(root, "cgroup.controllers"), "cpuset cpu io memory pids\n");
            File.WriteAllText(Path.Combine(root, "cgroup.subtree_control"), "");
            var cgroups = new Cgroups("trc", root);
            Assert.Equal(CgroupVersion.V2, cgroups.Version);
            cgroups.Create(new VmCgroup("vm1", 1L << 30, 20000));
            Assert.Equal("+memory +cpu", File.ReadAllText(Path.Combine(root, "cgroup.subtree_control")));
            Assert.Equal((1L << 30).ToString(), File.ReadAllText(Path.Combine(root, "trc", "vm1", "memory.max")));
            Assert.Equal("10000", File.ReadAllText(Path.Combine(root, "trc", "vm1", "cpu.weight"))); // clamped
            File.WriteAllText(Path.Combine(root, "trc", "vm1", "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
            Assert.Equal(1, cgroups.OomKills("vm1"));
            Assert.Equal(0, cgroups.OomKills("never-made"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("../escape")]
    [InlineData(".hidden")]
    [InlineData("a/b")]
    public void A_cgroup_name_that_could_leave_the_parent_is_refused(string name)
    {
        var cgroups = new Cgroups("trc", "/nonexistent-trc-cgroup-root"); // the name is checked before any file is touched
        Assert.Throws<ArgumentException>(() => cgroups.Create(new VmCgroup(name, 1 << 30, 100)));
    }

    [Fact]
    public void QEMUs_argv_has_the_contracts_disk_order_escapes_commas_and_carries_nothing_of_the_instance()
    {
        var spec = new VmSpec("i-1", "/run/vm,1", "/k/vmlinux", "/k/initrd", "/d/root,ro.ext4", "/run/vm,1/scratch", "/run/vm,1/config.img",
            ["/v/a.ext4", "/v/b.ext4"], 200L << 20, 2, new VmNetwork("trcabc", "02:00:00:00:00:01"), null);
        var args = QemuCommandLine.Build(spec, kvm: false, tscKhz: 2_700_000, tcgCacheMiB: 32);
        var drives = args.Where(a => a.StartsWith("id=", StringComparison.Ordinal)).ToList();
        Assert.Equal(
            ["id=root,file=/d/root,,ro.ext4,format=raw,if=none,readonly=on", "id=scratch,file=/run/vm,,1/scratch,format=raw,if=none,discard=unmap",
             "id=config,file=/run/vm,,1/config.img,format=raw,if=none,readonly=on", "id=vol0,file=/v/a.ext4,format=raw,if=none,discard=unmap",
             "id=vol1,file=/v/b.ext4,format=raw,if=none,discard=unmap"], drives);
        Assert.Equal("console=ttyS0 reboot=t panic=-1 quiet tsc_early_khz=2700000 tsc=reliable", args[args.ToList().IndexOf("-append") + 1]);
        Assert.Equal("200M", args[args.ToList().IndexOf("-m") + 1]);
        Assert.Contains("tcg,tb-size=32", args);
        Assert.Equal("console=ttyS0 reboot=t panic=-1 quiet", QemuCommandLine.KernelArgs(kvm: true, 2_700_000));
    }

    [Fact]
    public async Task Renice_sets_every_thread_of_a_running_process_and_nothing_of_a_gone_one()
    {
        // A process with several threads: the runtime of a child dotnet is heavy; sh with a pipeline is one thread.
        // A raise in nice (lower priority) is allowed to anyone, so this holds without root too.
        using var child = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;
        try
        {
            var process = HostProcess.Find(child.Id)!;
            Assert.Equal(1, process.Renice(7));
            var stat = await File.ReadAllTextAsync($"/proc/{child.Id}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            Assert.Equal("7", fields[16]); // field 19: nice
            child.Kill();
            await child.WaitForExitAsync();
            Assert.Equal(0, process.Renice(7));
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill();
            }
        }
    }

    [Fact]
    public void The_bridge_MAC_is_locally_administered_and_fixed_by_the_node_prefix()
    {
        var a = new NodeNetwork("trc0", "fd74:7263:0:1::/64");
        Assert.Matches("^02(:[0-9a-f]{2}){5}$", a.BridgeMac);
        Assert.Equal(a.BridgeMac, new NodeNetwork("trc9", "fd74:7263:0:1::/64").BridgeMac);
        Assert.NotEqual(a.BridgeMac, new NodeNetwork("trc0", "fd74:7263:0:2::/64").BridgeMac);
    }

    /// <summary>
    /// On the host, as root: the bridge keeps its MAC while taps join and leave (Linux would
    /// otherwise move it to the lowest port MAC, and guests would send to a MAC nobody has).
    /// </summary>
    [Fact]
    public async Task The_bridge_keeps_its_MAC_while_taps_come_and_go()
    {
        if (!string.Equals(Environment.UserName, "root", StringComparison.Ordinal))
        {
            return; // creating bridges needs root; CI runs as root
        }
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var network = new NodeNetwork("trcbt" + suffix, "fd74:7263:ff:" + Convert.ToInt32(suffix[..4], 16).ToString("x") + "::/64");
        var taps = new List<Guid>();
        string Mac() => File.ReadAllText($"/sys/class/net/{network.Bridge}/address").Trim();
        try
        {
            await network.EnsureBridgeAsync(CancellationToken.None);
            Assert.Equal(network.BridgeMac, Mac());
            for (var i = 0; i < 4; i++)
            {
                var id = Guid.NewGuid();
                await network.CreateTapAsync(id, CancellationToken.None);
                taps.Add(id);
                Assert.Equal(network.BridgeMac, Mac());
            }
            foreach (var id in taps.ToList())
            {
                await network.DeleteTapAsync(id, CancellationToken.None);
                taps.Remove(id);
                Assert.Equal(network.BridgeMac, Mac());
            }
            await network.EnsureBridgeAsync(CancellationToken.None); // idempotent
            Assert.Equal(network.BridgeMac, Mac());
        }
        finally
        {
            foreach (var id in taps)
            {
                await network.DeleteTapAsync(id, CancellationToken.None);
            }
            await Trc.Testing.HostTool.RunAsync("ip", ["link", "del", network.Bridge], CancellationToken.None);
        }
    }
}
