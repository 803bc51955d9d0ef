using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
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
    /// <c>tsc_early_khz</c>. Under TCG the guest's TSC is the host's; without its rate the kernel
    /// calibrates it against the PIT, which fails when the host is busy, and a microvm guest
    /// without a TSC rate has no working timer: it hangs at boot. Null: QEMU's icount instead.
    /// </summary>
    public long? TscKhz { get; init; }
}

/// <summary>
/// A QEMU microvm guest for the guest tests only (the agent's own driver lives in
/// Trc.Agent.Runtime): TCG, the serial console on QEMU's stdin/stdout, no reboot (the guest's
/// power-off, or a panic, ends the process). <see cref="Console"/> is the raw console output;
/// <see cref="SendAsync"/> writes to the console input.
/// </summary>
public sealed class QemuGuest : IAsyncDisposable
{
    /// <summary>The kernel command line: the same as the agent's (docs/guest.md).</summary>
    public const string KernelCommandLine = "console=ttyS0 reboot=t panic=-1 quiet";

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

    /// <summary>The guest kernel's command line for these options: <see cref="KernelCommandLine"/>, and the TSC rate when known.</summary>
    public static string CommandLineOf(QemuGuestOptions options) =>
        options.TscKhz is { } khz ? $"{KernelCommandLine} tsc_early_khz={khz.ToString(CultureInfo.InvariantCulture)}" : KernelCommandLine;

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

    /// <summary>Starts QEMU (inside the options' namespace, if any).</summary>
    public static QemuGuest Start(QemuGuestOptions options)
    {
        var qemu = HostTool.Find(GuestAssets.Qemu) ?? throw new InvalidOperationException($"{GuestAssets.Qemu} is not installed");
        IReadOnlyList<string> command = options.Network is { } ns ? ns.Wrap(qemu, Arguments(options)) : [qemu, .. Arguments(options)];
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
