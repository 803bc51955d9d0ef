namespace Trc.Agent.Runtime.Qemu;

/// <summary>Which acceleration the QEMU driver uses.</summary>
public enum QemuAcceleration
{
    /// <summary>KVM when a probe boot under it finishes in time, else TCG.</summary>
    Auto,

    /// <summary>KVM, no probe.</summary>
    Kvm,

    /// <summary>TCG (software emulation), no probe.</summary>
    Tcg,
}

/// <summary>How the QEMU driver runs <c>qemu-system-x86_64 -M microvm</c>.</summary>
public sealed record QemuOptions
{
    /// <summary>The QEMU binary (a name on PATH or a path).</summary>
    public string Binary { get; init; } = "qemu-system-x86_64";

    /// <summary>KVM, TCG, or probe.</summary>
    public QemuAcceleration Acceleration { get; init; } = QemuAcceleration.Auto;

    /// <summary>
    /// The kernel the KVM probe boots (the guest kernel); null skips the probe and uses TCG. The probe
    /// boots it without a root under KVM and expects the panic-and-power-off within
    /// <see cref="KvmProbeTimeout"/>: on hosts where nested KVM hangs, it never comes.
    /// </summary>
    public string? ProbeKernel { get; init; }

    /// <summary>
    /// The guest assets' <c>init</c>, whose <c>--tsc-khz</c> mode measures the host's TSC rate for
    /// TCG guests; null falls back to <c>/proc/cpuinfo</c> (the current clock, which differs from
    /// the TSC rate on hosts with frequency scaling).
    /// </summary>
    public string? TscProbe { get; init; }

    /// <summary>How long the KVM probe may take.</summary>
    public TimeSpan KvmProbeTimeout { get; init; } = TimeSpan.FromSeconds(8);

    /// <summary>TCG's translation cache in MiB (QEMU's default is 1 GiB, which the VMM's cgroup would have to allow).</summary>
    public int TcgTranslationCacheMiB { get; init; } = 32;

    /// <summary>How long after the grace period a stopping VMM gets before it is killed.</summary>
    public TimeSpan StopMargin { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// The nice value a TCG VMM's threads get before the guest runs (null: the agent's own). The
    /// guest kernel calibrates its only timer against the TSC over 100 ms while it boots, and time
    /// QEMU spends off the CPU then skews it: timers late or early, or none at all (docs/guest.md).
    /// A raised priority kept the calibration within 4 % in 59 of 60 boots on a busy 2-CPU host
    /// (QEMU outside any cgroup). Not applied when the agent may not raise priorities; inside the
    /// VM's cgroup, nice ranks QEMU's threads against each other and the cgroup's CPU weight
    /// ranks the VM against the rest of the host.
    /// </summary>
    public int? TcgNiceness { get; init; } = -10;

    /// <summary>How long QEMU may take to start (until its pid file and sockets exist).</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
