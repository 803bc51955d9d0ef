using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Trc.Testing.Guest;

/// <summary>A virtio-blk disk of the guest; the order of <see cref="QemuGuestOptions.Disks"/> is vda, vdb, ...</summary>
public sealed record QemuDisk(string Path, bool ReadOnly = false);

/// <summary>How <see cref="QemuGuest"/> starts a guest.</summary>
/// <param name="Kernel">
/// The kernel: the uncompressed <c>vmlinux</c> (QEMU boots it through its PVH note, without the
/// bzImage's decompression, which is slow under TCG) or the bzImage <c>vmlinuz</c>.
/// </param>
/// <param name="Initrd">The initramfs.</param>
/// <param name="Disks">The virtio-blk disks in order: vda, vdb, ...</param>
public sealed record QemuGuestOptions(string Kernel, string Initrd, IReadOnlyList<QemuDisk> Disks)
{
    /// <summary>Guest RAM in MiB.</summary>
    public int MemoryMiB { get; init; } = 256;

    /// <summary>A namespace whose <see cref="GuestNetNamespace.Tap"/> becomes the guest's eth0; null for no network device.</summary>
    public GuestNetNamespace? Network { get; init; }

    /// <summary>
    /// The host's TSC rate (<see cref="GuestAssets.HostTscKhzAsync"/>), given to the guest kernel as
    /// <c>tsc_early_khz</c>, with <c>tsc=reliable</c> (see <see cref="CommandLineOf"/>). Under TCG the
    /// guest's TSC is the host's; without its rate the kernel calibrates it against the PIT, which
    /// fails when the host is busy, and a microvm guest without a TSC rate has no working timer: it
    /// hangs at boot. Null: QEMU's icount instead, whose idle guest wakes late (a 10 ms sleep took
    /// 0.6 s under QEMU 7.2).
    /// </summary>
    public long? TscKhz { get; init; }

    /// <summary>More kernel command line arguments (a test's own, such as <c>noapictimer</c>).</summary>
    public IReadOnlyList<string> KernelArguments { get; init; } = [];
}

/// <summary>
/// A QEMU microvm guest for the guest tests only (the agent's own driver lives in
/// Trc.Agent.Runtime): TCG, run at a raised priority (see <see cref="Start"/>), the serial console
/// on QEMU's stdin/stdout, no reboot (the guest's power-off, or a panic, ends the process).
/// <see cref="Console"/> is the raw console output; <see cref="SendAsync"/> writes to the console
/// input.
/// </summary>
public sealed class QemuGuest : IAsyncDisposable
{
    /// <summary>The kernel command line: the same as the agent's (docs/guest.md).</summary>
    public const string KernelCommandLine = "console=ttyS0 reboot=t panic=-1 quiet";

    /// <summary>
    /// QEMU's nice value. The guest kernel calibrates its APIC timer against the TSC over 100 ms
    /// while it boots, and time QEMU spends off the CPU at either end of that window skews the
    /// result: timers late, or early, or after a stall of 100 ms at its start no timer at all
    /// (docs/guest.md, "Kernel command line"). On a busy 2-CPU host a raised priority kept the
    /// calibration within 4 % in 59 boots of 60 (−37 % to +4 % at the default priority), and boots
    /// took half as long.
    /// </summary>
    public const int Niceness = -10;

    private const int SigCont = 18;
    private const int SigStop = 19;

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly Task _stderrPump;

    private QemuGuest(Process process, string commandLine)
    {
        _process = process;
        CommandLine = commandLine;
        _stderrPump = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = await process.StandardError.ReadAsync(buffer)) > 0)
            {
                lock (_stderr)
                {
                    _stderr.Append(buffer, 0, n);
                }
            }
        });
    }

    /// <summary>The command line QEMU was started with.</summary>
    public string CommandLine { get; }

    /// <summary>The console's output, byte for byte.</summary>
    public Stream Console => _process.StandardOutput.BaseStream;

    /// <summary>What QEMU itself printed on stderr so far.</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>QEMU's exit code once it has exited, else null.</summary>
    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// <summary>
    /// The guest kernel's command line for these options: <see cref="KernelCommandLine"/>; with a TSC
    /// rate, <c>tsc_early_khz</c> and <c>tsc=reliable</c>; then the options' own arguments. Under TCG
    /// the guest's TSC is the host's, as steady as the host's clock. Unless told it is reliable, the
    /// kernel checks it while it boots against jiffies, counted from timer interrupts that QEMU
    /// drops while it is off the CPU; a few stalls and the kernel calls the TSC unstable and keeps
    /// time in jiffies, so that every later stall is time the guest loses (in 28 of 30 boots on a
    /// busy 2-CPU host; docs/guest.md, "Kernel command line").
    /// </summary>
    public static string CommandLineOf(QemuGuestOptions options)
    {
        var line = options.TscKhz is { } khz ? $"{KernelCommandLine} tsc_early_khz={khz.ToString(CultureInfo.InvariantCulture)} tsc=reliable" : KernelCommandLine;
        return options.KernelArguments.Count == 0 ? line : $"{line} {string.Join(' ', options.KernelArguments)}";
    }

    /// <summary>The arguments of a QEMU run for these options (after the binary's name).</summary>
    public static IReadOnlyList<string> Arguments(QemuGuestOptions options)
    {
        List<string> args =
        [
            "-M", "microvm,rtc=on", "-accel", "tcg", "-cpu", "max",
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-m", $"{options.MemoryMiB.ToString(CultureInfo.InvariantCulture)}M", "-smp", "1",
            "-kernel", options.Kernel, "-initrd", options.Initrd, "-append", CommandLineOf(options),
            "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
        ];
        for (var i = 0; i < options.Disks.Count; i++)
        {
            var disk = options.Disks[i];
            // A comma in a path would split QEMU's option: doubled, it is a literal comma.
            var path = disk.Path.Replace(",", ",,", StringComparison.Ordinal);
            args.AddRange(["-drive", $"file={path},format=raw,if=none,id=disk{i}{(disk.ReadOnly ? ",readonly=on" : "")}"]);
            args.AddRange(["-device", $"virtio-blk-device,drive=disk{i}"]);
        }
        if (options.TscKhz is null)
        {
            // Without a TSC rate, guest time from the instruction count: the TSC and the PIT then
            // agree by construction, so the kernel's calibration cannot fail (guest time runs
            // faster or slower than the host's).
            args.AddRange(["-icount", "shift=auto"]);
        }
        if (options.Network is not null)
        {
            args.AddRange(["-netdev", $"tap,id=net0,ifname={GuestNetNamespace.Tap},script=no,downscript=no"]);
            args.AddRange(["-device", $"virtio-net-device,netdev=net0,mac=02:00:00:00:00:02"]);
        }
        return args;
    }

    /// <summary>
    /// Starts QEMU (inside the options' namespace, if any) through <c>nice</c>, at
    /// <see cref="Niceness"/>: every thread of QEMU gets it from the start (a process not allowed
    /// to raise its priority runs at its own, with nice's warning on stderr).
    /// </summary>
    public static QemuGuest Start(QemuGuestOptions options)
    {
        var qemu = HostTool.Find(GuestAssets.Qemu) ?? throw new InvalidOperationException($"{GuestAssets.Qemu} is not installed");
        var nice = HostTool.Find("nice") ?? throw new InvalidOperationException("nice is not installed (coreutils)");
        IReadOnlyList<string> niced = ["-n", Niceness.ToString(CultureInfo.InvariantCulture), qemu, .. Arguments(options)];
        IReadOnlyList<string> command = options.Network is { } ns ? ns.Wrap(nice, niced) : [nice, .. niced];
        var psi = new ProcessStartInfo(command[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in command.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }
        var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            process.Dispose();
            throw new InvalidOperationException($"could not start {command[0]}: {e.Message}", e);
        }
        return new QemuGuest(process, string.Join(' ', command));
    }

    /// <summary>
    /// Takes QEMU off the CPU (SIGSTOP) until <see cref="Resume"/>, as the scheduler of a busy host
    /// does by chance. Unlike a pause through QEMU's monitor, nothing in QEMU knows: host time, and
    /// with it the guest's TSC, goes on.
    /// </summary>
    public void Pause() => Signal(SigStop);

    /// <summary>Lets QEMU run again after <see cref="Pause"/> (SIGCONT).</summary>
    public void Resume() => Signal(SigCont);

    private void Signal(int signal)
    {
        // nice and ip netns exec exec QEMU: the process is QEMU itself.
        if (kill(_process.Id, signal) < 0 && !_process.HasExited)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    /// <summary>Writes bytes to the guest's console input.</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        var input = _process.StandardInput.BaseStream;
        await input.WriteAsync(bytes, ct);
        await input.FlushAsync(ct);
    }

    /// <summary>Waits until QEMU has exited (the guest powered off, or was killed).</summary>
    public async Task WaitForExitAsync(CancellationToken ct)
    {
        await _process.WaitForExitAsync(ct);
        await _stderrPump.WaitAsync(ct);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // exited in between
        }
        try
        {
            await _process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
        }
        _process.Dispose();
    }
}
