namespace Trc.Agent.Runtime.Firecracker;

/// <summary>
/// How the agent runs Firecracker on this host (docs/firecracker.md). The defaults suit a host
/// prepared as that page says: the static <c>firecracker</c> and <c>jailer</c> release binaries in
/// <c>/usr/local/bin</c>, a dedicated unprivileged user for the VMMs, and a chroot base on the same
/// filesystem as the agent's data (disks are hard-linked into each jail).
/// </summary>
public sealed record FirecrackerOptions
{
    /// <summary>The <c>firecracker</c> binary (statically linked, as the jailer requires).</summary>
    public string FirecrackerBinary { get; init; } = "/usr/local/bin/firecracker";

    /// <summary>The <c>jailer</c> binary of the same release.</summary>
    public string JailerBinary { get; init; } = "/usr/local/bin/jailer";

    /// <summary>
    /// Start every VMM through the jailer (chroot, new mount namespace, dropped privileges, cgroup).
    /// Off only for development: then Firecracker runs as the agent's user, unconfined.
    /// </summary>
    public bool UseJailer { get; init; } = true;

    /// <summary>The user id the jailer switches to before it execs Firecracker; required with the jailer.</summary>
    public int? Uid { get; init; }

    /// <summary>The group id the jailer switches to; required with the jailer.</summary>
    public int? Gid { get; init; }

    /// <summary>
    /// The jailer's <c>--chroot-base-dir</c>: jails are <c>BASE/firecracker/ID/root</c>. Must be on
    /// the same filesystem as scratch disks and volumes (they are hard-linked, never copied), owned
    /// by root and not writable by others. Short: the API socket inside a jail must fit a unix
    /// socket path (107 bytes).
    /// </summary>
    public string ChrootBaseDir { get; init; } = "/srv/jailer";

    /// <summary>
    /// A network namespace for every VMM (the jailer's <c>--netns</c>, e.g. <c>/run/netns/trc</c>)
    /// when the agent makes its tap devices there; null to stay in the agent's. Needs the jailer.
    /// </summary>
    public string? NetworkNamespace { get; init; }

    /// <summary>Firecracker's log level (<c>--level</c>): Error, Warning, Info or Debug.</summary>
    public string LogLevel { get; init; } = "Warning";

    /// <summary>The KVM device the fingerprint probes.</summary>
    public string KvmDevice { get; init; } = "/dev/kvm";

    /// <summary>
    /// A guest kernel (uncompressed <c>vmlinux</c>) the fingerprint boots once, without a root disk,
    /// to prove that Firecracker and KVM run a real kernel here (it panics and resets in well under
    /// a second). Null to rely on the in-process KVM probe alone.
    /// </summary>
    public string? ProbeKernel { get; init; }

    /// <summary>How long any fingerprint probe may take before it counts as hung (nested KVM can hang).</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a new VMM may take to open its API socket (the jailer is slower on hosts with many mounts).</summary>
    public TimeSpan ApiSocketTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one API request may take.</summary>
    public TimeSpan ApiRequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Added to a stop's grace period before the VMM is killed: the guest's time to kill what is
    /// left, sync, unmount and power off.
    /// </summary>
    public TimeSpan StopMargin { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// After the guest reports its app's exit (or a fatal error) it powers off. Firecracker on x86
    /// has no power management, so a guest that halts instead of resetting would leave the VMM
    /// running: it is ended this long after the frame.
    /// </summary>
    public TimeSpan PowerOffTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How often a VMM's liveness is checked, and the longest wait for console bytes.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The options an operator sets in the agent's environment, over the defaults:
    /// <c>TRC_FIRECRACKER</c> (binary), <c>TRC_JAILER</c> (binary), <c>TRC_JAILER_UID</c> and
    /// <c>TRC_JAILER_GID</c> (the VMMs' user), <c>TRC_JAILER_CHROOT</c> (chroot base),
    /// <c>TRC_FIRECRACKER_NETNS</c> (network namespace path) and <c>TRC_FIRECRACKER_JAILER=0</c>
    /// (no jailer; development only).
    /// </summary>
    /// <param name="variable">Reads a variable (the process environment by default).</param>
    public static FirecrackerOptions FromEnvironment(Func<string, string?>? variable = null)
    {
        variable ??= Environment.GetEnvironmentVariable;
        string? Get(string name) => variable(name) is { Length: > 0 } value ? value : null;
        int? Id(string name) => Get(name) is not { } text
            ? null
            : int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
                ? id
                : throw new FormatException($"{name} must be a numeric id, not '{text}'");
        var defaults = new FirecrackerOptions();
        return defaults with
        {
            FirecrackerBinary = Get("TRC_FIRECRACKER") ?? defaults.FirecrackerBinary,
            JailerBinary = Get("TRC_JAILER") ?? defaults.JailerBinary,
            UseJailer = Get("TRC_FIRECRACKER_JAILER") is not ("0" or "false" or "no"),
            Uid = Id("TRC_JAILER_UID"),
            Gid = Id("TRC_JAILER_GID"),
            ChrootBaseDir = Get("TRC_JAILER_CHROOT") ?? defaults.ChrootBaseDir,
            NetworkNamespace = Get("TRC_FIRECRACKER_NETNS"),
        };
    }
}
