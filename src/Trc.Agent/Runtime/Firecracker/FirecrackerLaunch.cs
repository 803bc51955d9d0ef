using System.Globalization;
using System.Text;

namespace Trc.Agent.Runtime.Firecracker;

/// <summary>A virtio-blk drive as the Firecracker API receives it.</summary>
/// <param name="Id">The drive id: the guest's device name (<c>vda</c>, <c>vdb</c>, ...), as drives appear in the order they are added.</param>
/// <param name="PathOnHost">The backing file as the VMM sees it (inside the jail when jailed).</param>
/// <param name="ReadOnly">Attached read-only.</param>
public sealed record FirecrackerDrive(string Id, string PathOnHost, bool ReadOnly);

/// <summary>A file the jail must hold: hard-linked (read-only files may be copied across filesystems).</summary>
/// <param name="Source">The host file.</param>
/// <param name="Target">Its host path inside the jail's root.</param>
/// <param name="Writable">The VMM writes it: it must be a hard link (a copy would lose the writes).</param>
/// <param name="InstanceOwned">
/// The instance's own file (scratch, config disk, volumes): given to the VMM's user. Shared files
/// (kernel, initramfs, the release's root disk) keep their owner and must be readable by it.
/// </param>
public sealed record FirecrackerJailFile(string Source, string Target, bool Writable, bool InstanceOwned);

/// <summary>
/// Everything one VMM start needs, computed from the spec and options alone (no I/O): the argv,
/// the API socket, the jail's layout and the API's view of kernel, drives, memory and network.
/// </summary>
/// <param name="VmmId">Firecracker's and the jailer's <c>--id</c>: the instance id.</param>
/// <param name="Executable">What is spawned: the jailer, or Firecracker itself.</param>
/// <param name="Arguments">Its arguments (without argv[0]).</param>
/// <param name="ApiSocket">The API socket's host path.</param>
/// <param name="JailDirectory">The jail (<c>BASE/firecracker/ID</c>), removed once the VMM is gone; null without the jailer.</param>
/// <param name="JailFiles">Files to link into the jail before the start.</param>
/// <param name="KernelPath">The kernel as the VMM sees it.</param>
/// <param name="InitrdPath">The initramfs as the VMM sees it.</param>
/// <param name="Drives">Drives in the guest contract's order: root (ro), scratch, config (ro), volumes.</param>
/// <param name="MemoryMib">Guest RAM in MiB (the spec's bytes, rounded up).</param>
/// <param name="Vcpus">Guest vCPUs.</param>
/// <param name="Network">The tap and MAC, or null.</param>
/// <param name="LogFile">Firecracker's own log on the host (never the console: that is the guest's).</param>
public sealed record FirecrackerLaunchPlan(
    string VmmId,
    string Executable,
    IReadOnlyList<string> Arguments,
    string ApiSocket,
    string? JailDirectory,
    IReadOnlyList<FirecrackerJailFile> JailFiles,
    string KernelPath,
    string InitrdPath,
    IReadOnlyList<FirecrackerDrive> Drives,
    long MemoryMib,
    int Vcpus,
    VmNetwork? Network,
    string LogFile);

/// <summary>
/// Builds a <see cref="FirecrackerLaunchPlan"/>. With the jailer the VMM is started as
/// <c>jailer --id ID --exec-file FC --uid U --gid G --chroot-base-dir BASE [--netns NS] -- --api-sock /api.sock ...</c>
/// and sees only its jail, so every path it is given is the jail-relative one. Without
/// <c>--daemonize</c>: Firecracker's serial console is its stdin and stdout, which the jailer would
/// send to <c>/dev/null</c>; the driver starts the process in a new session itself.
/// </summary>
public static class FirecrackerLaunch
{
    /// <summary>
    /// The guest kernel's command line (docs/guest.md): the same for every instance, nothing from
    /// it. Secrets, environment and argv travel on the config disk.
    /// </summary>
    public const string BootArgs = "console=ttyS0 reboot=t panic=-1 quiet";

    /// <summary>The VMM's stdin (a FIFO in the state directory): host-to-guest console frames.</summary>
    public const string ConsoleInFile = "console.in";

    /// <summary>The VMM's stdout (a FIFO in the state directory): the guest's serial console.</summary>
    public const string ConsoleOutFile = "console.out";

    /// <summary>The jailer's and Firecracker's stderr (panics, jail errors), in the state directory.</summary>
    public const string StderrFile = "vmm.stderr";

    /// <summary>Firecracker's log when not jailed, in the state directory (jailed: <c>/firecracker.log</c> in the jail).</summary>
    public const string LogFileName = "firecracker.log";

    /// <summary>The recovery record in the state directory (shared name with the other drivers, which skip records not theirs).</summary>
    public const string RecordFile = VmStateFiles.Record;

    /// <summary>The API socket's name (in the jail's root, or the state directory).</summary>
    public const string ApiSocketName = "api.sock";

    /// <summary>The longest unix socket path (sun_path is 108 bytes with its NUL).</summary>
    public const int MaxSocketPathBytes = 107;

    /// <summary>Plans the start of <paramref name="spec"/>; throws <see cref="VmStartException"/> for a spec or options Firecracker cannot run.</summary>
    public static FirecrackerLaunchPlan Plan(VmSpec spec, FirecrackerOptions options)
    {
        Validate(spec, options);
        var id = spec.InstanceId;
        var memoryMib = (spec.MemoryBytes + (1L << 20) - 1) >> 20;
        var level = options.LogLevel;

        // Drives in the guest contract's order; the VMM attaches them in the order they are added.
        var disks = new List<(string Source, bool ReadOnly, bool InstanceOwned)>
        {
            (spec.RootDisk, true, false),
            (spec.ScratchDisk, false, true),
            // Read-only for the guest, but the instance's own: it holds the secrets.
            (spec.ConfigDisk, true, true),
        };
        disks.AddRange(spec.Volumes.Select(v => (v, false, true)));

        if (!options.UseJailer)
        {
            var socket = Path.Combine(spec.StateDir, ApiSocketName);
            CheckSocketPath(socket);
            var log = Path.Combine(spec.StateDir, LogFileName);
            return new FirecrackerLaunchPlan(
                id,
                options.FirecrackerBinary,
                ["--id", id, "--api-sock", socket, "--log-path", log, "--level", level],
                socket,
                JailDirectory: null,
                JailFiles: [],
                spec.Kernel,
                spec.Initrd,
                disks.Select((d, i) => new FirecrackerDrive(DiskName(i), d.Source, d.ReadOnly)).ToList(),
                memoryMib,
                spec.Vcpus,
                spec.Network,
                log);
        }

        // The jailer builds BASE/<exec file name>/ID/root and chroots Firecracker into it.
        var jail = Path.Combine(options.ChrootBaseDir, Path.GetFileName(options.FirecrackerBinary), id);
        var root = Path.Combine(jail, "root");
        var jailSocket = Path.Combine(root, ApiSocketName);
        CheckSocketPath(jailSocket);
        var files = new List<FirecrackerJailFile>
        {
            new(spec.Kernel, Path.Combine(root, "vmlinux"), Writable: false, InstanceOwned: false),
            new(spec.Initrd, Path.Combine(root, "initrd"), Writable: false, InstanceOwned: false),
        };
        var drives = new List<FirecrackerDrive>();
        for (var i = 0; i < disks.Count; i++)
        {
            var name = DiskName(i);
            files.Add(new FirecrackerJailFile(disks[i].Source, Path.Combine(root, name), !disks[i].ReadOnly, disks[i].InstanceOwned));
            drives.Add(new FirecrackerDrive(name, "/" + name, disks[i].ReadOnly));
        }
        var args = new List<string>
        {
            "--id", id,
            "--exec-file", options.FirecrackerBinary,
            "--uid", options.Uid!.Value.ToString(CultureInfo.InvariantCulture),
            "--gid", options.Gid!.Value.ToString(CultureInfo.InvariantCulture),
            "--chroot-base-dir", options.ChrootBaseDir,
        };
        // No --cgroup and no --cgroup-version: the driver makes and joins the VMM's cgroup itself
        // (one implementation for both hierarchies and every driver, see Cgroups). Left at its
        // default version 1 without --cgroup, the jailer touches no cgroup; "2" would move the
        // process into BASE/firecracker whenever that happens to exist.
        if (options.NetworkNamespace is { } netns)
        {
            args.AddRange(["--netns", netns]);
        }
        args.AddRange(["--", "--api-sock", "/" + ApiSocketName, "--log-path", "/" + LogFileName, "--level", level]);
        return new FirecrackerLaunchPlan(
            id,
            options.JailerBinary,
            args,
            jailSocket,
            jail,
            files,
            "/vmlinux",
            "/initrd",
            drives,
            memoryMib,
            spec.Vcpus,
            spec.Network,
            Path.Combine(root, LogFileName));
    }

    /// <summary>The guest's name for the disk at <paramref name="index"/>: vda ... vdz, vdaa, vdab, ... (as Linux names them).</summary>
    public static string DiskName(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        var suffix = new StringBuilder();
        var n = index;
        do
        {
            suffix.Insert(0, (char)('a' + (n % 26)));
            n = (n / 26) - 1;
        }
        while (n >= 0);
        return "vd" + suffix;
    }

    /// <summary>Whether <paramref name="id"/> is a valid Firecracker and jailer id: 1 to 64 ASCII letters, digits and hyphens.</summary>
    public static bool IsValidVmmId(string id) =>
        id.Length is >= 1 and <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    private static void Validate(VmSpec spec, FirecrackerOptions options)
    {
        if (!IsValidVmmId(spec.InstanceId))
        {
            throw new VmStartException($"instance id '{spec.InstanceId}' is not a Firecracker id (1-64 letters, digits and hyphens)");
        }
        if (spec.Vcpus is < 1 or > 32)
        {
            throw new VmStartException($"Firecracker runs 1 to 32 vCPUs, not {spec.Vcpus}");
        }
        if (spec.MemoryBytes <= 0)
        {
            throw new VmStartException($"guest memory must be positive, not {spec.MemoryBytes} bytes");
        }
        foreach (var (what, path) in new[]
        {
            ("state directory", spec.StateDir), ("kernel", spec.Kernel), ("initrd", spec.Initrd), ("root disk", spec.RootDisk),
            ("scratch disk", spec.ScratchDisk), ("config disk", spec.ConfigDisk),
        }.Concat(spec.Volumes.Select(v => ("volume", v))))
        {
            if (!Path.IsPathFullyQualified(path))
            {
                throw new VmStartException($"the {what} path '{path}' is not absolute");
            }
        }
        if (options.UseJailer)
        {
            if (options.Uid is null || options.Gid is null)
            {
                throw new VmStartException("the jailer needs FirecrackerOptions.Uid and Gid (TRC_JAILER_UID, TRC_JAILER_GID): an unprivileged user for the VMMs");
            }
            if (!Path.IsPathFullyQualified(options.ChrootBaseDir))
            {
                throw new VmStartException($"the chroot base '{options.ChrootBaseDir}' is not absolute");
            }
        }
        else if (options.NetworkNamespace is not null)
        {
            throw new VmStartException("a network namespace needs the jailer (FirecrackerOptions.UseJailer)");
        }
    }

    private static void CheckSocketPath(string socket)
    {
        if (Encoding.UTF8.GetByteCount(socket) > MaxSocketPathBytes)
        {
            throw new VmStartException($"the API socket path '{socket}' is longer than a unix socket path may be ({MaxSocketPathBytes} bytes): use a shorter state directory or chroot base");
        }
    }
}
