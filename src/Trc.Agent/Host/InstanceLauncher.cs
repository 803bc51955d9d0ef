using System.Globalization;
using System.Net;
using System.Runtime.Versioning;
using Trc.Agent.Guest;
using Trc.Agent.Network;
using Trc.Agent.Runtime;
using Trc.Client;
using Trc.Core.Api;

namespace Trc.Agent.Host;

/// <summary>An instance made ready to boot: the VM's spec and the instance's address.</summary>
/// <param name="Spec">What the driver starts.</param>
/// <param name="Address">The instance's IPv6 address, or null without networking.</param>
public sealed record PreparedInstance(VmSpec Spec, IPAddress? Address);

/// <summary>Makes what one boot of an instance needs, and removes it again.</summary>
public interface IInstanceLauncher
{
    /// <summary>The instances' state directory (one subdirectory per instance).</summary>
    string InstancesDir { get; }

    /// <summary>The address an instance has (also for an adopted VM), or null without networking.</summary>
    IPAddress? AddressOf(Guid instance);

    /// <summary>Builds or fetches everything for one boot: root disk, secrets, config and scratch disks, tap, cgroup.</summary>
    Task<PreparedInstance> PrepareAsync(InstanceSpecView instance, Action<string> progress, CancellationToken ct);

    /// <summary>Called once the guest has read its config: the config disk (it holds the secrets) leaves the host's disk.</summary>
    void OnBooted(VmSpec spec);

    /// <summary>Removes what one boot made (tap, cgroup, config disk); the instance's directory stays.</summary>
    Task CleanupAsync(VmSpec spec, CancellationToken ct);

    /// <summary>Removes an instance's directory once it will not run again.</summary>
    void Remove(Guid instance);
}

/// <summary>
/// The real launcher: the release's root disk from <see cref="InstanceImages"/>, the secrets file
/// from the control plane, a config disk (docs/guest.md), a fresh sparse scratch disk, a tap on
/// the node bridge, and a cgroup for the VMM.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class VmLauncher(
    AgentOptions options,
    GuestBootFiles assets,
    InstanceImages images,
    TrcClient client,
    Func<Guid> node,
    NodeNetwork? network,
    Cgroups? cgroups) : IInstanceLauncher
{
    /// <inheritdoc />
    public string InstancesDir { get; } = Path.Combine(options.DataDir, "instances");

    /// <inheritdoc />
    public IPAddress? AddressOf(Guid instance) => network?.AddressOf(instance);

    /// <inheritdoc />
    public async Task<PreparedInstance> PrepareAsync(InstanceSpecView instance, Action<string> progress, CancellationToken ct)
    {
        var dir = Path.Combine(InstancesDir, instance.Id.ToString("D"));
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var root = await images.GetRootDiskAsync(instance, progress, ct).ConfigureAwait(false);
        var image = root.Config;
        var args = instance.Command is { Count: > 0 } command
            ? command
            : [.. image.Entrypoint ?? [], .. image.Cmd ?? []];
        if (args.Count == 0)
        {
            throw new InstanceLaunchException("the image has no Entrypoint or Cmd and the manifest's process has no command");
        }
        byte[]? secrets = null;
        if (instance.SecretsVersion > 0)
        {
            secrets = await client.GetInstanceSecretsAsync(node(), instance.Id, ct).ConfigureAwait(false);
        }
        var address = network?.AddressOf(instance.Id);
        var env = new List<string>(image.Env ?? []);
        env.AddRange(PlatformEnvironment(instance));
        var config = new GuestConfig
        {
            Args = [.. args],
            Env = env,
            WorkDir = string.IsNullOrEmpty(image.WorkingDir) ? null : image.WorkingDir,
            User = instance.User ?? (string.IsNullOrEmpty(image.User) ? null : image.User),
            Hostname = $"{instance.App}-{instance.Process}-{instance.Id.ToString("N")[..8]}",
            Ipv6 = address is null ? null : new GuestIpv6Address(address, 64),
            Gateway = network?.Gateway,
            Mtu = network is null ? null : NodeNetwork.Mtu,
            Secrets = secrets,
            Volumes = [],
        };
        var configDisk = Path.Combine(dir, "config.img");
        GuestConfigWriter.WriteFile(configDisk, config);
        var scratch = Path.Combine(dir, "scratch.ext4");
        await MakeScratchDiskAsync(scratch, options.ScratchDiskBytes, ct).ConfigureAwait(false);
        VmNetwork? vmNetwork = null;
        if (network is not null)
        {
            var tap = await network.CreateTapAsync(instance.Id, ct).ConfigureAwait(false);
            vmNetwork = new VmNetwork(tap, NodeNetwork.MacOf(instance.Id));
        }
        var cgroup = cgroups is null || cgroups.Version == CgroupVersion.None ? null : new VmCgroup(
            instance.Id.ToString("N"),
            instance.MemoryBytes + options.VmmOverheadBytes,
            (int)Math.Clamp(Math.Round(instance.Cpu * 100m), 1, 10000));
        var spec = new VmSpec(
            instance.Id.ToString("D"),
            dir,
            assets.Kernel,
            assets.Initrd,
            root.ImagePath,
            scratch,
            configDisk,
            [],
            instance.MemoryBytes,
            Math.Max(1, (int)Math.Ceiling(instance.Cpu)),
            vmNetwork,
            cgroup);
        return new PreparedInstance(spec, address);
    }

    /// <summary>The platform variables every instance sees.</summary>
    public static IEnumerable<string> PlatformEnvironment(InstanceSpecView instance) =>
    [
        "TRC_APP=" + instance.App,
        "TRC_ENV=" + instance.Env,
        "TRC_PROCESS=" + instance.Process,
        "TRC_RELEASE_ID=" + instance.Release.ToString(CultureInfo.InvariantCulture),
        "TRC_INSTANCE_ID=" + instance.Id.ToString("D"),
        "TRC_REGION=" + (instance.Region ?? ""),
    ];

    /// <inheritdoc />
    public void OnBooted(VmSpec spec) => File.Delete(spec.ConfigDisk);

    /// <inheritdoc />
    public async Task CleanupAsync(VmSpec spec, CancellationToken ct)
    {
        File.Delete(spec.ConfigDisk);
        if (network is not null && Guid.TryParse(spec.InstanceId, out var id))
        {
            await network.DeleteTapAsync(id, ct).ConfigureAwait(false);
        }
        if (spec.Cgroup is { } cg)
        {
            cgroups?.Remove(cg.Name);
        }
    }

    /// <inheritdoc />
    public void Remove(Guid instance)
    {
        var dir = Path.Combine(InstancesDir, instance.ToString("D"));
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task MakeScratchDiskAsync(string path, long bytes, CancellationToken ct)
    {
        File.Delete(path);
        await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None))
        {
            file.SetLength(bytes);
        }
        var (code, output) = await HostProcess.RunAsync("mkfs.ext4",
            ["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", "-L", "scratch", path],
            TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
        if (code != 0)
        {
            throw new InstanceLaunchException($"mkfs.ext4 of the scratch disk failed (exit {code}): {output.Trim()}");
        }
    }
}

/// <summary>An instance could not be prepared; the message says why (it becomes the <c>failed</c> reason).</summary>
public sealed class InstanceLaunchException(string message) : Exception(message);

/// <summary>The guest kernel and initramfs (from scripts/build-guest-assets).</summary>
/// <param name="Kernel">The kernel the driver boots: the uncompressed vmlinux (QEMU enters it by PVH, which under TCG is seconds faster than unpacking a bzImage; Firecracker needs it).</param>
/// <param name="Initrd">The initramfs.</param>
/// <param name="Init">The host build of init (its <c>--tsc-khz</c> mode measures the TSC rate for TCG guests), or null.</param>
public sealed record GuestBootFiles(string Kernel, string Initrd, string? Init = null)
{
    /// <summary>The assets in <paramref name="directory"/> for a driver; a clear error when they are missing.</summary>
    public static GuestBootFiles Locate(string directory, string driver)
    {
        var kernel = Path.Combine(directory, "vmlinux");
        var initrd = Path.Combine(directory, "initramfs.cpio.gz");
        foreach (var file in new[] { kernel, initrd })
        {
            if (!File.Exists(file))
            {
                throw new InstanceLaunchException($"guest asset {file} is missing: run scripts/build-guest-assets --out {directory}");
            }
        }
        var init = Path.Combine(directory, "init");
        return new GuestBootFiles(kernel, initrd, File.Exists(init) ? init : null);
    }
}
