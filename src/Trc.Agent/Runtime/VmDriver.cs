namespace Trc.Agent.Runtime;

/// <summary>
/// A way to run microVMs (<c>qemu</c>, <c>firecracker</c>, <c>fake</c>): start one from a
/// <see cref="VmSpec"/>, find the ones an earlier agent left running, and say what the host offers.
/// A VM outlives the agent process: its VMM is not a child that dies with the agent, and its state
/// directory holds what <see cref="RecoverAsync"/> needs to adopt it.
/// </summary>
public interface IVmDriver
{
    /// <summary>The driver's name as the agent's <c>--driver</c> option spells it.</summary>
    string Name { get; }

    /// <summary>What this host and VMM offer: version, acceleration, and why not when the driver cannot run here.</summary>
    Task<DriverFingerprint> FingerprintAsync(CancellationToken ct);

    /// <summary>Starts a VM; returns once its VMM runs (the guest may still be booting).</summary>
    Task<IVm> StartAsync(VmSpec spec, CancellationToken ct);

    /// <summary>
    /// The VMs still running from the state directories under <paramref name="instancesDir"/>
    /// (one per instance); directories whose VMM is gone are left for the caller to clean up.
    /// </summary>
    Task<IReadOnlyList<IVm>> RecoverAsync(string instancesDir, CancellationToken ct);
}

/// <summary>One running VM.</summary>
public interface IVm : IAsyncDisposable
{
    /// <summary>The spec it was started from.</summary>
    VmSpec Spec { get; }

    /// <summary>The VMM's process id on the host, when it has one.</summary>
    int? VmmPid { get; }

    /// <summary>Whether it was adopted from an earlier agent rather than started by this one.</summary>
    bool Recovered { get; }

    /// <summary>
    /// The guest's console, one frame at a time (see docs/guest.md); completes when the VMM exits.
    /// Frames written while no agent was attached are lost.
    /// </summary>
    IAsyncEnumerable<Guest.ConsoleFrame> ReadConsoleAsync(CancellationToken ct);

    /// <summary>Sends a control frame to <c>init</c> (stop, signal).</summary>
    Task SendAsync(Guest.GuestCommand command, CancellationToken ct);

    /// <summary>Waits until the VMM has exited.</summary>
    Task<VmmExit> WaitAsync(CancellationToken ct);

    /// <summary>
    /// Stops the guest: asks <c>init</c> to SIGTERM the app, and kills the VMM when the guest has not
    /// powered off within <paramref name="grace"/> plus a margin. Returns when the VMM is gone.
    /// </summary>
    Task<VmmExit> StopAsync(TimeSpan grace, CancellationToken ct);

    /// <summary>Kills the VMM at once.</summary>
    Task KillAsync(CancellationToken ct);
}

/// <summary>How a VMM process ended, as the host saw it.</summary>
/// <param name="Killed">The agent killed it (the grace period ran out, or <see cref="IVm.KillAsync"/>).</param>
/// <param name="HostOom">The host's cgroup memory limit killed it.</param>
/// <param name="Detail">A short human description (exit status, signal), or null.</param>
public sealed record VmmExit(bool Killed, bool HostOom, string? Detail);

/// <summary>What a driver offers on this host.</summary>
/// <param name="Driver">The driver's name.</param>
/// <param name="Available">Whether it can start VMs here.</param>
/// <param name="Version">The VMM's version string.</param>
/// <param name="Acceleration"><c>kvm</c>, <c>tcg</c>, or <c>none</c>.</param>
/// <param name="Reason">Why not, when it cannot run here; why TCG, when it fell back.</param>
public sealed record DriverFingerprint(string Driver, bool Available, string? Version, string Acceleration, string? Reason);

/// <summary>Everything a driver needs to start one VM. Paths are absolute.</summary>
/// <param name="InstanceId">The instance.</param>
/// <param name="StateDir">The instance's own directory: sockets, pid file, VMM log, the driver's recovery record.</param>
/// <param name="Kernel">The guest kernel (bzImage for QEMU, uncompressed vmlinux for Firecracker).</param>
/// <param name="Initrd">The initramfs holding <c>init</c> and its modules.</param>
/// <param name="RootDisk">The release's read-only ext4 root disk (<c>vda</c>).</param>
/// <param name="ScratchDisk">The instance's writable ext4 scratch disk (<c>vdb</c>).</param>
/// <param name="ConfigDisk">The instance's config disk (<c>vdc</c>, docs/guest.md).</param>
/// <param name="Volumes">Volume disks (<c>vdd</c>, ...), in the config's order.</param>
/// <param name="MemoryBytes">Guest RAM: the manifest's cap.</param>
/// <param name="Vcpus">Guest vCPUs.</param>
/// <param name="Network">The instance's tap device, or null for no network.</param>
/// <param name="Cgroup">Where the VMM process is placed, or null for nowhere.</param>
public sealed record VmSpec(
    string InstanceId,
    string StateDir,
    string Kernel,
    string Initrd,
    string RootDisk,
    string ScratchDisk,
    string ConfigDisk,
    IReadOnlyList<string> Volumes,
    long MemoryBytes,
    int Vcpus,
    VmNetwork? Network,
    VmCgroup? Cgroup);

/// <summary>The instance's network device on the host.</summary>
/// <param name="TapDevice">The tap interface (already created, attached to the node's bridge).</param>
/// <param name="MacAddress">The guest's MAC, <c>02:..</c> form.</param>
public sealed record VmNetwork(string TapDevice, string MacAddress);

/// <summary>Resource limits of the VMM process on the host.</summary>
/// <param name="Name">The cgroup's name under the agent's parent cgroup (the instance id).</param>
/// <param name="MemoryLimitBytes">Guest RAM plus the fixed VMM overhead.</param>
/// <param name="CpuWeight">cgroup v2 <c>cpu.weight</c> (1..10000; v1 shares are derived from it).</param>
public sealed record VmCgroup(string Name, long MemoryLimitBytes, int CpuWeight);

/// <summary>A VM could not be started (or adopted); the message says why.</summary>
public sealed class VmStartException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The files every driver keeps in a VM's state directory.</summary>
public static class VmStateFiles
{
    /// <summary>The recovery record (driver, VMM pid and start time, the spec) that adoption reads.</summary>
    public const string Record = "vmm.json";
}

/// <summary>A value computed once, on first use, by one caller at a time (a driver's fingerprint probe).</summary>
/// <typeparam name="T">The value.</typeparam>
internal sealed class Once<T>(Func<CancellationToken, Task<T>> compute) where T : class
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private T? _value;

    public async Task<T> GetAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _value) is { } known)
        {
            return known;
        }
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return _value ??= await compute(ct).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }
}
