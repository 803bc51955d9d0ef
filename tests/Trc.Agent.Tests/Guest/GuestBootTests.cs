using System.Net;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using Trc.Agent.Guest;
using Trc.Testing;
using Trc.Testing.Guest;
using Xunit.Abstractions;

namespace Trc.Agent.Tests.Guest;

/// <summary>
/// One release disk (busybox and the test scripts) for every boot of <see cref="GuestBootTests"/>,
/// and the guest assets. Each boot gets its own scratch, config and volume disks.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class GuestBootFixture : IAsyncLifetime
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "trc-guest-boot-" + Guid.NewGuid().ToString("N")[..12]);

    public GuestAssetPaths Assets { get; private set; } = null!;

    public long TscKhz { get; private set; }

    public string RootDisk => Path.Combine(Dir, "root.ext4");

    // Checks of everything init sets up for an app run as a user, then a stop it ignores.
    public const string UserScript = """
        #!/bin/sh
        echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
        for v in IMAGE_VAR TRC_APP TRC_INSTANCE_ID LATER_WINS HOME PATH; do eval "echo env:$v=\$$v"; done
        echo "pwd=$(pwd)"
        echo "hostname=$(hostname)"
        echo "secrets=$(stat -c '%a %u %g' /run/secrets/platform.env)"
        echo "secrets-sha256=$(sha256sum < /run/secrets/platform.env | cut -d' ' -f1)"
        echo "cmdline=$(cat /proc/cmdline)"
        echo overlay > /data/written && echo "overlay=$(cat /data/written)"
        echo on-the-volume > /mnt/volumes/data/hello.txt && echo "volume=ok"
        echo "line to stderr" >&2
        echo ""
        head -c 20000 /dev/zero | tr '\0' x; echo
        (sleep 0.2 &)
        sleep 1
        echo "zombies=$(cat /proc/[0-9]*/stat | awk '$3 == "Z"' | wc -l)"
        trap '' TERM
        echo ignoring-term
        while :; do sleep 1; done
        """;

    // A root app on the network: nc answers on [addr]:8080 until the stop, which it traps.
    public const string NetScript = """
        #!/bin/sh
        echo "uid=$(id -u)"
        echo "secrets=$(stat -c '%a %u %g' /run/secrets/platform.env)"
        echo root > /written-by-root && echo "root-write=$(cat /written-by-root)"
        echo "mtu=$(cat /sys/class/net/eth0/mtu)"
        echo "addr=$(ip -6 -o addr show dev eth0 scope global | awk '{print $4}')"
        echo "route=$(ip -6 route show default | awk '{print $1, $2, $3}')"
        nc -ll -p 8080 -e /bin/echo hello-from-guest &
        trap 'echo got-usr1' USR1
        trap 'printf "got-term\npartial-line"; exit 7' TERM
        echo net-ready
        while :; do sleep 1; done
        """;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Dir);
        if (GuestAssets.SkipReason is not null)
        {
            return;
        }
        Assets = await GuestAssets.EnsureBuiltAsync();
        TscKhz = await GuestAssets.HostTscKhzAsync();
        var root = await BusyboxRoot.CreateAsync(Path.Combine(Dir, "root"), CancellationToken.None);
        root.WriteFile("bin/user-check.sh", UserScript, mode: "755");
        root.WriteFile("bin/net-check.sh", NetScript, mode: "755");
        root.CreateDirectory("data", uid: BusyboxRoot.AppUid, gid: BusyboxRoot.AppGid);
        await Ext4Disk.CreateAsync(RootDisk, 32, root.Directory, CancellationToken.None);
    }

    public Task DisposeAsync()
    {
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
        return Task.CompletedTask;
    }
}

/// <summary>
/// Real boots of guest/init under QEMU (TCG), few and each checking much: every test's app is a
/// shell script whose output the test reads back through <see cref="ConsoleDecoder"/>.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class GuestBootTests(GuestBootFixture fixture, ITestOutputHelper output) : IClassFixture<GuestBootFixture>
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(60); // TCG on a loaded 2-CPU machine
    private static readonly byte[] SecretBytes = "DATABASE_URL=postgres://u:p@db/x\nSECRET_MARKER=9f2c-never-on-the-console\n"u8.ToArray();
    private const string SecretMarker = "9f2c-never-on-the-console";

    private static readonly IReadOnlyList<string> PlatformEnv =
    [
        "IMAGE_VAR=from-the-image",
        "LATER_WINS=first",
        "TRC_APP=shop",
        "TRC_ENV=production",
        "TRC_PROCESS=web",
        "TRC_RELEASE_ID=11111111-2222-3333-4444-555555555555",
        "TRC_INSTANCE_ID=66666666-7777-8888-9999-000000000000",
        "TRC_REGION=test",
        "LATER_WINS=second",
    ];

    private string NewBootDir()
    {
        var dir = Path.Combine(fixture.Dir, Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private async Task<(string Scratch, string Config)> DisksAsync(string dir, GuestConfig config)
    {
        var scratch = Path.Combine(dir, "scratch.ext4");
        await Ext4Disk.CreateAsync(scratch, 64, null, CancellationToken.None);
        var configDisk = Path.Combine(dir, "config.img");
        GuestConfigWriter.WriteFile(configDisk, config);
        return (scratch, configDisk);
    }

    // The uncompressed kernel, booted through its PVH entry: under TCG, unpacking the bzImage's XZ
    // payload takes longer than the rest of the boot.
    private QemuGuestOptions Options(IReadOnlyList<QemuDisk> disks) =>
        new(fixture.Assets.Vmlinux, fixture.Assets.Initramfs, disks) { TscKhz = fixture.TscKhz };

    private void Report(GuestSession guest)
    {
        var frames = guest.Frames;
        var ready = frames.ToList().FindIndex(f => f.Kind == ConsoleFrameKind.Ready);
        output.WriteLine($"RS R after {(ready >= 0 ? guest.ArrivalOf(ready).TotalSeconds.ToString("0.00") : "-")} s, powered off after {guest.Elapsed.TotalSeconds:0.00} s");
        output.WriteLine(guest.Transcript());
    }

    private static void AssertNoSecretOnConsole(GuestSession guest)
    {
        // The app never prints the secret; init must not either (the config holds it).
        Assert.DoesNotContain(guest.Frames, f => f.Text.Contains(SecretMarker, StringComparison.Ordinal));
    }

    [GuestBootFact]
    public async Task An_app_runs_as_its_user_with_its_config_and_is_killed_after_the_grace_period()
    {
        var dir = NewBootDir();
        var config = new GuestConfig
        {
            Args = ["/bin/user-check.sh"],
            Env = PlatformEnv,
            WorkDir = "/home/app",
            User = "app",
            Hostname = "shop-web-1",
            Secrets = SecretBytes,
            Volumes = ["data"],
        };
        var (scratch, configDisk) = await DisksAsync(dir, config);
        var volume = Path.Combine(dir, "data.ext4");
        await Ext4Disk.CreateAsync(volume, 16, null, BusyboxRoot.AppUid, BusyboxRoot.AppGid, CancellationToken.None);

        await using var guest = GuestSession.Start(Options(
            [new(fixture.RootDisk, ReadOnly: true), new(scratch), new(configDisk, ReadOnly: true), new(volume)]));
        try
        {
            var ready = await guest.WaitForAsync(ConsoleFrameKind.Ready, Boot);
            Assert.True(ready.Pid > 1);
            await guest.WaitForStdoutAsync("ignoring-term", Boot);
            var sent = guest.Elapsed;
            await guest.SendAsync(new GuestCommand.Stop(TimeSpan.FromMilliseconds(1500)), CancellationToken.None);
            var exit = await guest.WaitForAsync(ConsoleFrameKind.Exit, Boot);
            var waited = guest.Elapsed - sent;
            await guest.WaitForPowerOffAsync(Boot);

            var stdout = guest.Stdout;
            Assert.Contains($"uid={BusyboxRoot.AppUid} gid={BusyboxRoot.AppGid} groups={BusyboxRoot.AppGid} {BusyboxRoot.ExtraGid}", stdout);
            Assert.Contains("env:IMAGE_VAR=from-the-image", stdout);
            Assert.Contains("env:TRC_APP=shop", stdout);
            Assert.Contains("env:TRC_INSTANCE_ID=66666666-7777-8888-9999-000000000000", stdout);
            Assert.Contains("env:LATER_WINS=second", stdout);
            Assert.Contains("env:HOME=/home/app", stdout);
            Assert.Contains("env:PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", stdout);
            Assert.Contains("pwd=/home/app", stdout);
            Assert.Contains("hostname=shop-web-1", stdout);
            Assert.Contains($"secrets=440 0 {BusyboxRoot.AppGid}", stdout);
            Assert.Contains($"secrets-sha256={Convert.ToHexStringLower(SHA256.HashData(SecretBytes))}", stdout);
            // The command line is the VMM's alone: nothing from the config reaches it.
            Assert.Contains($"cmdline={QemuGuest.CommandLineOf(Options([]))}", stdout);
            Assert.Contains("overlay=overlay", stdout);
            Assert.Contains("volume=ok", stdout);
            Assert.Contains("zombies=0", stdout);
            Assert.Equal(["line to stderr"], guest.Stderr);

            // An empty line is a frame; a 20000-byte line comes as 8192 + 8192 + 3616.
            Assert.Contains("", stdout);
            var xs = stdout.Where(l => l.Length > 0 && l.All(c => c == 'x')).Select(l => l.Length).ToList();
            Assert.Equal([8192, 8192, 3616], xs);

            // SIGTERM was ignored, so only the SIGKILL after the grace period ended it.
            Assert.Contains(new ConsoleFrame(ConsoleFrameKind.Info, "stop: SIGTERM sent, SIGKILL in 1500 ms"), guest.Frames);
            Assert.Equal(128 + 9, exit.ExitCode);
            Assert.False(exit.Oom);
            Assert.InRange(waited, TimeSpan.FromMilliseconds(1400), TimeSpan.FromSeconds(15));
            AssertNoSecretOnConsole(guest);
            Assert.Equal(0, guest.ExitCode);

            // The volume was written and unmounted, the scratch disk left clean.
            Assert.Equal("on-the-volume\n", await Ext4Disk.ReadFileAsync(volume, "/hello.txt", CancellationToken.None));
            Assert.Equal(("clean", false), await Ext4Disk.ReadStateAsync(volume, CancellationToken.None));
            Assert.Equal(("clean", false), await Ext4Disk.ReadStateAsync(scratch, CancellationToken.None));
            Assert.Equal("overlay\n", await Ext4Disk.ReadFileAsync(scratch, "/upper/data/written", CancellationToken.None));
        }
        finally
        {
            Report(guest);
        }
    }

    [GuestBootFact]
    public async Task A_root_app_is_reachable_on_its_ipv6_address_and_its_exit_code_after_SIGTERM_propagates()
    {
        var dir = NewBootDir();
        var guestAddress = IPAddress.Parse("fd00:7::2");
        await using var ns = await GuestNetNamespace.CreateAsync(IPAddress.Parse("fd00:7::1"), 64, CancellationToken.None);
        var config = new GuestConfig
        {
            Args = ["/bin/net-check.sh"],
            Env = PlatformEnv,
            Secrets = SecretBytes,
            Ipv6 = new GuestIpv6Address(guestAddress, 64),
            Gateway = ns.HostAddress,
            Mtu = 1400,
        };
        var (scratch, configDisk) = await DisksAsync(dir, config);

        await using var guest = GuestSession.Start(Options([new(fixture.RootDisk, ReadOnly: true), new(scratch), new(configDisk, ReadOnly: true)]) with { Network = ns });
        try
        {
            await guest.WaitForStdoutAsync("net-ready", Boot);

            ToolResult? ping = null;
            for (var attempt = 0; attempt < 5 && ping?.ExitCode != 0; attempt++)
            {
                ping = await ns.RunAsync(BusyboxRoot.BusyboxBinary, ["ping", "-6", "-c", "1", "-W", "3", guestAddress.ToString()], CancellationToken.None);
            }
            Assert.True(ping!.ExitCode == 0, $"ping {guestAddress} from the tap's side failed: {ping.Stdout}{ping.Stderr}\n{guest.Transcript()}");

            string? answer = null;
            for (var attempt = 0; attempt < 10 && answer != "hello-from-guest"; attempt++)
            {
                var nc = await ns.RunAsync(BusyboxRoot.BusyboxBinary, ["nc", "-w", "3", guestAddress.ToString(), "8080"], CancellationToken.None);
                answer = nc.Stdout.Trim();
                if (answer != "hello-from-guest")
                {
                    await Task.Delay(300);
                }
            }
            Assert.Equal("hello-from-guest", answer);

            // Noise on the console is ignored (a frame with no letter init knows, a signal out of
            // range, a line longer than init's buffer, bytes outside any frame); a signal reaches the app.
            await guest.SendAsync(Encoding.ASCII.GetBytes($"\u001eT abc\n\u001eS 99\n\u001eS 9{new string('9', 100)}\nT 0\nhello\n\u001eQ 1\n"), CancellationToken.None);
            await guest.SendAsync(new GuestCommand.Signal(10), CancellationToken.None); // SIGUSR1
            await guest.WaitForStdoutAsync("got-usr1", Boot);

            await guest.SendAsync(new GuestCommand.Stop(TimeSpan.FromSeconds(30)), CancellationToken.None);
            var exit = await guest.WaitForAsync(ConsoleFrameKind.Exit, Boot);
            await guest.WaitForPowerOffAsync(Boot);

            var stdout = guest.Stdout;
            Assert.Contains("uid=0", stdout);
            Assert.Contains("secrets=400 0 0", stdout);
            Assert.Contains("root-write=root", stdout);
            Assert.Contains("mtu=1400", stdout);
            Assert.Contains("addr=fd00:7::2/64", stdout);
            Assert.Contains("route=default via fd00:7::1", stdout);
            // The trap's last line had no newline: init frames it when the pipe closes, before RS X.
            var tail = stdout.SkipWhile(l => l != "got-term").ToList();
            Assert.Equal(["got-term", "partial-line"], tail);
            Assert.Equal(7, exit.ExitCode);
            Assert.False(exit.Oom);
            Assert.Contains(new ConsoleFrame(ConsoleFrameKind.Info, "stop: SIGTERM sent, SIGKILL in 30000 ms"), guest.Frames);
            Assert.Equal(3, guest.Frames.Count(f => f.Kind == ConsoleFrameKind.Info && f.Text == "ignored a malformed command"));
            AssertNoSecretOnConsole(guest);
        }
        finally
        {
            Report(guest);
        }
    }

    [GuestBootFact]
    public async Task An_app_allocating_past_the_memory_cap_is_reported_as_an_oom_kill()
    {
        var dir = NewBootDir();
        var config = new GuestConfig
        {
            // Searched in PATH (no '/'): awk doubles a string until the kernel's OOM killer ends it.
            Args = ["awk", "BEGIN { s = \"0123456789abcdef\"; while (1) s = s s }"],
        };
        var (scratch, configDisk) = await DisksAsync(dir, config);

        await using var guest = GuestSession.Start(Options([new(fixture.RootDisk, ReadOnly: true), new(scratch), new(configDisk, ReadOnly: true)]) with { MemoryMiB = 160 });
        try
        {
            var exit = await guest.WaitForAsync(ConsoleFrameKind.Exit, Boot);
            await guest.WaitForPowerOffAsync(Boot);
            Assert.Equal(128 + 9, exit.ExitCode);
            Assert.True(exit.Oom, "RS X should report oom=1");
        }
        finally
        {
            Report(guest);
        }
    }

    // A busy host takes QEMU off the CPU at random; here the test does it on purpose. From the guest
    // kernel's first console line (its timer is calibrated by then) QEMU is stopped 30 ms of every
    // 100 while it boots, then 150 ms of every 200 while the app sleeps and is stopped with a grace
    // period, which must still take as long on the host as they say. Unless told the TSC is
    // reliable, the kernel checks it against its timer interrupts while it boots, finds it
    // "unstable" against the ones QEMU drops while stopped, and from then on keeps time by the
    // interrupts: every stall is time the guest loses, and init's grace period runs that much
    // slower (docs/guest.md, "Kernel command line").
    [GuestBootFact]
    public async Task A_guest_its_host_keeps_taking_off_the_CPU_keeps_the_hosts_time()
    {
        var dir = NewBootDir();
        var config = new GuestConfig
        {
            Args = ["/bin/sh", "-c", """
                trap 'go=1' USR1
                trap '' TERM
                echo waiting
                while [ -z "$go" ]; do sleep 1; done
                echo before-sleep
                sleep 2
                echo "after-sleep clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
                while :; do sleep 1; done
                """],
        };
        var (scratch, configDisk) = await DisksAsync(dir, config);

        await using var guest = GuestSession.Start(Options([new(fixture.RootDisk, ReadOnly: true), new(scratch), new(configDisk, ReadOnly: true)]));
        using var stop = new CancellationTokenSource();
        var booted = false;
        Task stalls = Task.CompletedTask;
        try
        {
            await guest.WaitForAsync(_ => true, Boot, "a first console line");
            stalls = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested && guest.ExitCode is null)
                {
                    var (off, on) = Volatile.Read(ref booted) ? (150, 50) : (30, 70);
                    guest.Pause();
                    try
                    {
                        await Task.Delay(off, CancellationToken.None);
                    }
                    finally
                    {
                        guest.Resume();
                    }
                    await Task.Delay(on, CancellationToken.None);
                }
            });
            await guest.WaitForStdoutAsync("waiting", Boot);
            Volatile.Write(ref booted, true);
            await guest.SendAsync(new GuestCommand.Signal(10), CancellationToken.None); // SIGUSR1: go
            await guest.WaitForStdoutAsync("before-sleep", Boot);
            var sleepStart = guest.Elapsed;
            var afterSleep = await guest.WaitForAsync(f => f.Kind == ConsoleFrameKind.Stdout && f.Text.StartsWith("after-sleep", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "after-sleep");
            var slept = guest.Elapsed - sleepStart;

            // A second stop right behind the first: SIGTERM again (ignored), the deadline stays 2 s.
            var sent = guest.Elapsed;
            await guest.SendAsync(new GuestCommand.Stop(TimeSpan.FromSeconds(2)), CancellationToken.None);
            await guest.SendAsync(new GuestCommand.Stop(TimeSpan.FromSeconds(30)), CancellationToken.None);
            var exit = await guest.WaitForAsync(ConsoleFrameKind.Exit, TimeSpan.FromSeconds(30));
            var waited = guest.Elapsed - sent;
            stop.Cancel();
            await stalls;
            await guest.WaitForPowerOffAsync(Boot);

            output.WriteLine($"sleep 2 took {slept.TotalSeconds:0.00} s, a 2 s grace period {waited.TotalSeconds:0.00} s ({afterSleep.Text})");
            Assert.InRange(slept, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(5));
            Assert.Equal(128 + 9, exit.ExitCode);
            Assert.InRange(waited, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(5));
            Assert.Equal("after-sleep clocksource=tsc", afterSleep.Text);
            var answers = guest.Frames.Where(f => f.Kind == ConsoleFrameKind.Info && f.Text.StartsWith("stop:", StringComparison.Ordinal)).Select(f => f.Text);
            Assert.Equal(["stop: SIGTERM sent, SIGKILL in 2000 ms", "stop: SIGTERM sent again, SIGKILL at the first stop's deadline"], answers);
        }
        finally
        {
            stop.Cancel();
            await stalls;
            Report(guest);
        }
    }

    [GuestBootTheory]
    [InlineData("malformed config")]
    [InlineData("config disk over 16 MiB")]
    [InlineData("no config disk")]
    [InlineData("unknown user")]
    [InlineData("no such program")]
    [InlineData("no timer")]
    public async Task A_failure_before_the_app_runs_is_a_fatal_frame_then_power_off(string failure)
    {
        var dir = NewBootDir();
        var scratch = Path.Combine(dir, "scratch.ext4");
        await Ext4Disk.CreateAsync(scratch, 16, null, CancellationToken.None);
        string? configDisk = Path.Combine(dir, "config.img");
        IReadOnlyList<string> kernelArguments = [];
        string expected;
        switch (failure)
        {
            case "malformed config":
                var bad = new byte[GuestConfigLimits.MinDiskBytes];
                Encoding.ASCII.GetBytes("TRCGUEST1\narg 5\nsh\nend 0\n\n").CopyTo(bad, 0);
                await File.WriteAllBytesAsync(configDisk, bad);
                Assert.False(GuestConfigReader.TryRead(bad, out _, out var error));
                expected = $"config: {error}"; // init and the reader word it the same
                break;
            case "config disk over 16 MiB":
                var big = new byte[GuestConfigLimits.MaxDiskBytes + GuestConfigLimits.SectorBytes];
                GuestConfigWriter.Encode(new GuestConfig { Args = ["/bin/true"] }).CopyTo(big, 0);
                await File.WriteAllBytesAsync(configDisk, big);
                expected = $"config: offset {GuestConfigLimits.MaxDiskBytes}: the disk is larger than {GuestConfigLimits.MaxDiskBytes} bytes";
                break;
            case "no config disk":
                configDisk = null;
                expected = "no config disk (/dev/vdc)";
                break;
            case "no timer":
                // On microvm the APIC timer is the kernel's only one: without it (as when its boot-time
                // calibration fails on a busy host) nothing time-based would ever end.
                GuestConfigWriter.WriteFile(configDisk, new GuestConfig { Args = ["/bin/true"] });
                kernelArguments = ["noapictimer"];
                expected = "the kernel has no timer (no clock event device): no sleep or stop deadline would end";
                break;
            case "unknown user":
                GuestConfigWriter.WriteFile(configDisk, new GuestConfig { Args = ["/bin/true"], User = "ghost" });
                expected = "user 'ghost': not in the image's /etc/passwd";
                break;
            default:
                GuestConfigWriter.WriteFile(configDisk, new GuestConfig { Args = ["no-such-program", "arg"] });
                expected = "exec no-such-program: No such file or directory";
                break;
        }

        IReadOnlyList<QemuDisk> disks = configDisk is null
            ? [new(fixture.RootDisk, ReadOnly: true), new(scratch)]
            : [new(fixture.RootDisk, ReadOnly: true), new(scratch), new(configDisk, ReadOnly: true)];
        await using var guest = GuestSession.Start(Options(disks) with { KernelArguments = kernelArguments });
        try
        {
            var fatal = await guest.WaitForAsync(f => f.Kind is ConsoleFrameKind.Fatal or ConsoleFrameKind.Ready, Boot, "RS F");
            await guest.WaitForPowerOffAsync(Boot);
            Assert.Equal(new ConsoleFrame(ConsoleFrameKind.Fatal, expected), fatal);
            Assert.DoesNotContain(guest.Frames, f => f.Kind is ConsoleFrameKind.Ready or ConsoleFrameKind.Exit);
            Assert.Equal(0, guest.ExitCode); // powered off, not crashed
        }
        finally
        {
            Report(guest);
        }
    }
}
