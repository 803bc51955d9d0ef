using System.Net;
using Trc.Core.Api;

namespace Trc.Agent.Host;

/// <summary>
/// One health check of one instance in place of <see cref="HealthProbe.CheckAsync"/>: for tests with
/// the <c>fake</c> driver, whose VMs have no network to probe, to decide per instance (its release,
/// process, id) whether it passes. Returns whether it is healthy and, when not, why.
/// </summary>
/// <param name="instance">The instance checked (its spec as the control plane gave it).</param>
/// <param name="check">Its process's health check.</param>
/// <param name="address">The address the check would go to.</param>
/// <param name="ct">Cancelled when the instance stops being supervised.</param>
public delegate Task<(bool Healthy, string Detail)> InstanceHealthProbe(InstanceSpecView instance, HealthcheckView check, IPAddress address, CancellationToken ct);

/// <summary>How <c>trc agent</c> runs on one node (the control plane and its token are the <see cref="Trc.Client.TrcClient"/> it is given).</summary>
public sealed record AgentOptions
{
    /// <summary>The node's name (default: the host name).</summary>
    public required string NodeName { get; init; }

    /// <summary>
    /// Where the agent keeps its state: <c>instances/ID/</c> (each VM's disks, sockets, records),
    /// <c>images/</c> (the OCI blob cache and root disks, as <c>trc image</c> lays them out).
    /// </summary>
    public required string DataDir { get; init; }

    /// <summary>The bridge instances attach to (at most 15 characters).</summary>
    public string Bridge { get; init; } = "trc0";

    /// <summary>The node's region label, or null.</summary>
    public string? Region { get; init; }

    /// <summary>Memory offered to instances; null: physical memory minus <see cref="ReservedMemoryBytes"/>.</summary>
    public long? MemoryBytes { get; init; }

    /// <summary>Memory kept for the host when <see cref="MemoryBytes"/> is not set.</summary>
    public long ReservedMemoryBytes { get; init; } = 1L << 30;

    /// <summary>Host memory each VMM may use beyond its guest's RAM (QEMU itself, TCG's translation cache, device buffers).</summary>
    public long VmmOverheadBytes { get; init; } = 160L << 20;

    /// <summary>The size of each instance's scratch disk (sparse: only what is written takes space).</summary>
    public long ScratchDiskBytes { get; init; } = 1L << 30;

    /// <summary>How often the agent tells the control plane it is alive.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a VM may take from start until its init reports the app started. A guest that
    /// does not (a kernel that hangs: too little memory for it, a broken clock) is killed and the
    /// instance reported failed, so a rollout fails instead of waiting in "starting" forever.
    /// </summary>
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>How long an app has between SIGTERM and SIGKILL when its instance is stopped.</summary>
    public TimeSpan StopGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How log lines are batched to the control plane.</summary>
    public TimeSpan LogFlushInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Lines kept in memory while the control plane cannot be reached; the oldest are dropped past it (and the drop is logged).</summary>
    public int LogBufferLines { get; init; } = 50_000;

    /// <summary>How restarts of exited instances are paced.</summary>
    public RestartPolicy Restart { get; init; } = new();

    /// <summary>How often the whole desired state is fetched again even when the change stream is quiet.</summary>
    public TimeSpan ResyncInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// For tests with the <c>fake</c> driver only: when set, instances' health checks call this
    /// instead of probing their address (<see cref="HealthProbe.CheckAsync"/>). Null (the default)
    /// probes for real. The check still runs only for instances with a health check and an address,
    /// at the check's interval, and 3 failures in a row still make an instance <c>unhealthy</c>.
    /// </summary>
    public InstanceHealthProbe? HealthProbeOverride { get; init; }
}

/// <summary>
/// Instances are always restarted when they exit (they are services), after a backoff that doubles
/// from <see cref="InitialDelay"/> up to <see cref="MaxDelay"/> and starts over once a run lasts
/// <see cref="ResetAfter"/>. After <see cref="MaxQuickFailures"/> short runs in a row, the instance
/// is marked failed and left stopped until it is scheduled again.
/// </summary>
public sealed record RestartPolicy
{
    /// <summary>The first delay.</summary>
    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest delay.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>A run at least this long resets the backoff.</summary>
    public TimeSpan ResetAfter { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Short runs in a row before the instance is marked failed.</summary>
    public int MaxQuickFailures { get; init; } = 10;

    /// <summary>The delay before restart number <paramref name="quickFailures"/> (1-based) of a streak.</summary>
    public TimeSpan DelayFor(int quickFailures)
    {
        var factor = Math.Pow(2, Math.Clamp(quickFailures - 1, 0, 30));
        return TimeSpan.FromMilliseconds(Math.Min(MaxDelay.TotalMilliseconds, InitialDelay.TotalMilliseconds * factor));
    }
}
