namespace Trc.Testing.Guest;

/// <summary>The files of scripts/build-guest-assets the tests use, with absolute paths (docs/guest.md, "Assets").</summary>
/// <param name="Directory">The output directory.</param>
/// <param name="Vmlinux">The uncompressed ELF kernel (<c>vmlinux</c>): QEMU boots it through its PVH entry, Firecracker needs it.</param>
/// <param name="Initramfs">The initramfs with init and the modules (<c>initramfs.cpio.gz</c>).</param>
/// <param name="Init">The static init binary itself (<c>init</c>), which also runs on the host: <c>init --check-config FILE...</c>, <c>init --tsc-khz</c>.</param>
public sealed record GuestAssetPaths(string Directory, string Vmlinux, string Initramfs, string Init);

/// <summary>
/// The guest assets for tests: built by scripts/build-guest-assets once per test process (the script
/// caches across processes, and locks its output directory), into its default directory
/// (<c>$TRC_GUEST_ASSETS</c> or <c>.artifacts/guest</c>).
/// </summary>
public static class GuestAssets
{
    /// <summary>The QEMU binary the boot tests run.</summary>
    public const string Qemu = "qemu-system-x86_64";

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static GuestAssetPaths? _built;
    private static readonly Lazy<string?> Missing = new(FindMissing);

    /// <summary>
    /// Why guests cannot boot here (no QEMU, no Debian kernel), or null when they can. Anything else
    /// missing (gcc, busybox-static, mkfs.ext4) is a failure, not a skip: scripts/install-test-deps installs it.
    /// </summary>
    public static string? SkipReason => Missing.Value;

    /// <summary>The repository root (the directory holding trc.slnx), or <c>$TRC_REPOSITORY_ROOT</c>.</summary>
    public static string RepositoryRoot => Root.Value;

    private static readonly Lazy<string> Root = new(FindRepositoryRoot);

    /// <summary>Builds the assets (or finds them up to date) once per process, and returns their paths.</summary>
    public static async Task<GuestAssetPaths> EnsureBuiltAsync(CancellationToken ct = default)
    {
        if (SkipReason is { } reason)
        {
            throw new InvalidOperationException($"guest assets cannot be built here: {reason}");
        }
        await Gate.WaitAsync(ct);
        try
        {
            if (_built is not null)
            {
                return _built;
            }
            var script = Path.Combine(RepositoryRoot, "scripts", "build-guest-assets");
            var result = await HostTool.RunAsync(script, [], ct);
            if (result.ExitCode != 0)
            {
                throw new InvalidOperationException($"scripts/build-guest-assets failed ({result.ExitCode}):\n{result.Stderr}");
            }
            var dir = result.Stdout.Trim().Split('\n')[^1];
            _built = new GuestAssetPaths(dir, Path.Combine(dir, "vmlinux"), Path.Combine(dir, "initramfs.cpio.gz"), Path.Combine(dir, "init"));
            return _built;
        }
        finally
        {
            Gate.Release();
        }
    }

    private static readonly SemaphoreSlim TscGate = new(1, 1);
    private static long? _tscKhz;

    /// <summary>The host's TSC rate in kHz, measured once per process by <c>init --tsc-khz</c> (see <see cref="QemuGuestOptions.TscKhz"/>).</summary>
    public static async Task<long> HostTscKhzAsync(CancellationToken ct = default)
    {
        var assets = await EnsureBuiltAsync(ct);
        await TscGate.WaitAsync(ct);
        try
        {
            if (_tscKhz is null)
            {
                var text = await HostTool.RunCheckedAsync(assets.Init, ["--tsc-khz"], ct);
                _tscKhz = long.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
            return _tscKhz.Value;
        }
        finally
        {
            TscGate.Release();
        }
    }

    private static string? FindMissing()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "guests boot only on Linux";
        }
        if (HostTool.Find(Qemu) is null)
        {
            return $"{Qemu} is not installed (qemu-system-x86; scripts/install-test-deps installs it): guest boot tests skipped";
        }
        var kernels = System.IO.Directory.Exists("/boot") ? System.IO.Directory.GetFiles("/boot", "vmlinuz-*-amd64") : [];
        if (!kernels.Any(k => File.Exists($"/lib/modules/{Path.GetFileName(k)["vmlinuz-".Length..]}/modules.dep")))
        {
            return "no Debian guest kernel (/boot/vmlinuz-*-amd64 with its modules; linux-image-amd64): guest boot tests skipped";
        }
        return null;
    }

    private static string FindRepositoryRoot()
    {
        var fromEnv = Environment.GetEnvironmentVariable("TRC_REPOSITORY_ROOT");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return fromEnv;
        }
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "trc.slnx")))
                {
                    return dir.FullName;
                }
            }
        }
        throw new InvalidOperationException($"trc.slnx not found above {AppContext.BaseDirectory}; set TRC_REPOSITORY_ROOT");
    }
}
