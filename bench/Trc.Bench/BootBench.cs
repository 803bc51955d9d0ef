using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text.Json;
using Trc.Agent.Guest;
using Trc.Agent.Network;
using Trc.Agent.Runtime;
using Trc.Agent.Runtime.Firecracker;
using Trc.Agent.Runtime.Qemu;
using Trc.Oci.Build;
using Trc.Oci.Layers;
using Trc.Oci.Pull;
using Trc.Oci.RootDisks;
using Trc.Oci.Store;
using Trc.Testing.Guest;

namespace Trc.Bench;

/// <summary>
/// <c>bench/run boot</c>: how long a trc instance takes from the start request to its app
/// listening, against the same VMM booting the same kernel straight into busybox (no trc init, no
/// modules, disks or network: the floor). Also the root disk build of the busybox image and the
/// VMM's own memory on the host. Rounds alternate which side goes first; figures are medians.
/// trc's side: config disk, scratch disk (mkfs), tap, VMM start, guest boot (modules, overlay root,
/// network, secrets), app start, and the first TCP connection from the host that succeeds.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class BootBench
{
    private const int Rounds = 5;
    private const long GuestMemory = 256L << 20;

    public static async Task<int> RunAsync(string driverName)
    {
        var ct = CancellationToken.None;
        var work = Directory.CreateTempSubdirectory("trc-bench-boot-");
        var bridge = "trcbench" + Environment.ProcessId % 10000;
        var network = new NodeNetwork(bridge, "fd74:7263:0:ffff::/64");
        try
        {
            var assets = await GuestAssets.EnsureBuiltAsync(ct);
            var kernel = assets.Vmlinux;
            var cgroups = new Cgroups(parent: "trc-bench");
            IVmDriver driver = driverName == "firecracker"
                ? new FirecrackerDriver(FirecrackerOptions.FromEnvironment() with { ProbeKernel = kernel, ChrootBaseDir = Path.Combine(work.FullName, "jail") }, cgroups)
                : new QemuDriver(new QemuOptions { ProbeKernel = kernel, TscProbe = assets.Init }, cgroups);
            var fingerprint = await driver.FingerprintAsync(ct);
            if (!fingerprint.Available)
            {
                Console.Error.WriteLine($"boot bench: the {driverName} driver cannot run here: {fingerprint.Reason}");
                return 2;
            }
            Console.WriteLine($"Boot: {driverName} ({fingerprint.Version}), acceleration {fingerprint.Acceleration}{(fingerprint.Reason is { } r ? $" ({r})" : "")}; guest {GuestMemory >> 20} MiB, 1 vCPU; {Rounds} rounds, order alternating; median.");

            // The app image: busybox, its app listening on 8080.
            var rootDir = await BusyboxRoot.CreateAsync(Path.Combine(work.FullName, "rootfs"), ct);
            var layout = Path.Combine(work.FullName, "layout");
            DirectoryImageBuilder.Build(rootDir.Directory, layout, "v1", new DirectoryImageOptions
            {
                Entrypoint = ["/bin/nc", "-ll", "-p", "8080", "-e", "/bin/true"],
                Env = ["PATH=/bin"],
                ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
            }, ct);

            // Root disk build, cold, from the local layout (pull from layout, unpack, mkfs.ext4 -d).
            var buildTimes = new List<double>();
            RootDisk? disk = null;
            for (var round = 0; round < Rounds; round++)
            {
                var cache = Path.Combine(work.FullName, $"cache{round}");
                var started = Stopwatch.StartNew();
                var store = new BlobStore(Path.Combine(cache, "oci"));
                var puller = new ImagePuller(store);
                var pulled = await puller.PullAsync(ImageSource.Parse($"oci:{layout}:v1", null!), null, null, ct);
                disk = await new RootDiskCache(Path.Combine(cache, "rootfs")).GetOrBuildAsync(pulled.Resolved.ManifestDigest, pulled.Config,
                    (dir, token) => Task.Run(() => puller.Unpack(pulled, dir, new LayerApplierOptions { ApplyOwnership = true }, token), token), null, ct);
                buildTimes.Add(started.Elapsed.TotalMilliseconds);
            }
            Console.WriteLine($"  root disk build (busybox, {disk!.SizeBytes >> 20} MiB disk): median {Stats.Median(buildTimes):0} ms  [{string.Join(", ", buildTimes.Select(t => t.ToString("0", CultureInfo.InvariantCulture)))}]");

            // The floor: the same kernel straight into busybox from an initramfs of its own.
            var bareInitrd = await MakeBareInitramfsAsync(Path.Combine(work.FullName, "bare"), ct);
            await network.EnsureBridgeAsync(ct);

            var trcTimes = new List<double>();
            var bareTimes = new List<double>();
            var overheads = new List<double>();
            for (var round = 0; round < Rounds; round++)
            {
                async Task Trc()
                {
                    var (ms, overhead) = await BootTrcAsync(driver, network, cgroups, kernel, assets.Initramfs, disk.ImagePath, Path.Combine(work.FullName, $"trc{round}"), ct);
                    trcTimes.Add(ms);
                    if (overhead is { } o)
                    {
                        overheads.Add(o);
                    }
                }
                async Task Bare() => bareTimes.Add(await BootBareAsync(driver, kernel, bareInitrd, disk.ImagePath, Path.Combine(work.FullName, $"bare{round}"), ct));
                if (round % 2 == 0)
                {
                    await Trc();
                    await Bare();
                }
                else
                {
                    await Bare();
                    await Trc();
                }
                Console.WriteLine($"  round {round + 1}: trc {trcTimes[^1]:0} ms to listening, bare {bareTimes[^1]:0} ms to busybox");
            }
            var trc = Stats.Median(trcTimes);
            var bare = Stats.Median(bareTimes);
            var overheadMib = overheads.Count > 0 ? Stats.Median(overheads) : double.NaN;
            Console.WriteLine($"trc start request -> app listening: median {trc:0} ms");
            Console.WriteLine($"bare boot into busybox:           median {bare:0} ms");
            Console.WriteLine($"init and agent overhead ratio:    {trc / bare:0.00}x");
            Console.WriteLine($"VMM memory beyond guest RAM:      median {overheadMib:0.0} MiB (RSS minus the guest RAM mapping's RSS)");
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["driver"] = driverName,
                ["acceleration"] = fingerprint.Acceleration,
                ["boot_to_listen_ms"] = Math.Round(trc),
                ["bare_boot_ms"] = Math.Round(bare),
                ["init_overhead_ratio"] = Math.Round(trc / bare, 2),
                ["rootfs_build_ms"] = Math.Round(Stats.Median(buildTimes)),
                ["vmm_overhead_mib"] = double.IsNaN(overheadMib) ? -1 : Math.Round(overheadMib, 1),
            }));
            return 0;
        }
        finally
        {
            await network.DeleteBridgeAsync(CancellationToken.None);
            try
            {
                work.Delete(recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<(double Ms, double? OverheadMib)> BootTrcAsync(IVmDriver driver, NodeNetwork network, Cgroups cgroups, string kernel, string initrd, string rootDisk, string dir, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        var id = Guid.NewGuid();
        var address = network.AddressOf(id);
        var started = Stopwatch.StartNew();
        var config = Path.Combine(dir, "config.img");
        GuestConfigWriter.WriteFile(config, new GuestConfig
        {
            Args = ["/bin/nc", "-ll", "-p", "8080", "-e", "/bin/true"],
            Env = ["PATH=/bin", "TRC_APP=bench"],
            Ipv6 = new GuestIpv6Address(address, 64),
            Gateway = network.Gateway,
            Mtu = NodeNetwork.Mtu,
            Secrets = "API_KEY=bench\n"u8.ToArray(),
        });
        var scratch = Path.Combine(dir, "scratch.ext4");
        await using (var file = File.Create(scratch))
        {
            file.SetLength(1L << 30);
        }
        var (code, output) = await HostProcess.RunAsync("mkfs.ext4", ["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", scratch], TimeSpan.FromSeconds(60), ct);
        if (code != 0)
        {
            throw new InvalidOperationException("mkfs.ext4: " + output);
        }
        var tap = await network.CreateTapAsync(id, ct);
        var spec = new VmSpec(id.ToString("D"), dir, kernel, initrd, rootDisk, scratch, config, [], GuestMemory, 1,
            new VmNetwork(tap, NodeNetwork.MacOf(id)), new VmCgroup(id.ToString("N"), GuestMemory + (256L << 20), 100));
        await using var vm = await driver.StartAsync(spec, ct);
        var frames = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var console = Task.Run(async () =>
        {
            await foreach (var frame in vm.ReadConsoleAsync(ct))
            {
                frames.Enqueue($"{frame.Kind}: {frame.Text}");
            }
        }, ct);
        while (true)
        {
            using var client = new TcpClient(AddressFamily.InterNetworkV6);
            try
            {
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
                attempt.CancelAfter(TimeSpan.FromMilliseconds(500));
                await client.ConnectAsync(address, 8080, attempt.Token);
                break;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                if (started.Elapsed > TimeSpan.FromMinutes(2))
                {
                    throw new TimeoutException("the bench app did not listen within 2 minutes; console:\n" + string.Join("\n", frames));
                }
                await Task.Delay(10, ct);
            }
        }
        var ms = started.Elapsed.TotalMilliseconds;
        await Task.Delay(500, ct);
        var overhead = vm.VmmPid is { } pid ? VmmOverheadMib(pid, GuestMemory) : null;
        await vm.KillAsync(ct);
        await console;
        await network.DeleteTapAsync(id, ct);
        cgroups.Remove(id.ToString("N"));
        return (ms, overhead);
    }

    private static async Task<double> BootBareAsync(IVmDriver driver, string kernel, string initrd, string rootDisk, string dir, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        // The driver attaches the usual disks; the bare init ignores them.
        var config = Path.Combine(dir, "config.img");
        await File.WriteAllBytesAsync(config, new byte[512], ct);
        var scratch = Path.Combine(dir, "scratch.img");
        await File.WriteAllBytesAsync(scratch, new byte[1 << 20], ct);
        var id = Guid.NewGuid();
        var spec = new VmSpec(id.ToString("D"), dir, kernel, initrd, rootDisk, scratch, config, [], GuestMemory, 1, null, null);
        var started = Stopwatch.StartNew();
        await using var vm = await driver.StartAsync(spec, ct);
        await foreach (var frame in vm.ReadConsoleAsync(ct))
        {
            if (frame.Text.Contains("BARE-READY", StringComparison.Ordinal))
            {
                var ms = started.Elapsed.TotalMilliseconds;
                await vm.KillAsync(ct);
                return ms;
            }
        }
        throw new InvalidOperationException("the bare guest ended without printing BARE-READY");
    }

    // An initramfs holding busybox as /init's interpreter: print a marker on the console, stay up.
    private static async Task<string> MakeBareInitramfsAsync(string dir, CancellationToken ct)
    {
        var root = Path.Combine(dir, "root");
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        File.Copy(BusyboxRoot.BusyboxBinary, Path.Combine(root, "bin", "busybox"));
        await File.WriteAllTextAsync(Path.Combine(root, "init"), "#!/bin/busybox sh\n/bin/busybox echo BARE-READY > /dev/console\nwhile true; do /bin/busybox sleep 60; done\n", ct);
        File.SetUnixFileMode(Path.Combine(root, "init"), (UnixFileMode)Convert.ToInt32("755", 8));
        var output = Path.Combine(dir, "bare.cpio.gz");
        var (code, text) = await HostProcess.RunAsync("/bin/sh", ["-c", $"cd '{root}' && find . | cpio -o -H newc --quiet | gzip -1 > '{output}'"], TimeSpan.FromMinutes(1), ct);
        if (code != 0)
        {
            throw new InvalidOperationException("building the bare initramfs failed: " + text);
        }
        return output;
    }

    // The VMM's resident memory minus what of it is guest RAM (the mapping of the guest's size).
    private static double? VmmOverheadMib(int pid, long guestBytes)
    {
        try
        {
            long total = 0, guest = 0, size = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/smaps"))
            {
                if (line.StartsWith("Size:", StringComparison.Ordinal))
                {
                    size = Kb(line) * 1024;
                }
                else if (line.StartsWith("Rss:", StringComparison.Ordinal))
                {
                    var rss = Kb(line) * 1024;
                    total += rss;
                    if (size == guestBytes)
                    {
                        guest = Math.Max(guest, rss);
                    }
                }
            }
            return (total - guest) / 1048576.0;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static long Kb(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
}
