namespace Trc.Oci.RootDisks;

/// <summary>Sizing, tools and housekeeping of a <see cref="RootDiskCache"/>.</summary>
public sealed record RootDiskOptions
{
    /// <summary>
    /// Space added to the estimated need of a disk, as a fraction of it (default 0.2). The disk is
    /// read-only, so the headroom is not for the guest: it absorbs what the estimate misses (extent
    /// blocks, directory index splits). It costs little: unused blocks are holes in the sparse image.
    /// The same fraction is added to the inode count.
    /// </summary>
    public double HeadroomFraction { get; init; } = 0.2;

    /// <summary>The least headroom added, in bytes (default 16 MiB), which is what small images need.</summary>
    public long MinimumHeadroomBytes { get; init; } = 16L << 20;

    /// <summary>The <c>mkfs.ext4</c> to run; null looks in PATH, then /usr/sbin and /sbin.</summary>
    public string? MkfsPath { get; init; }

    /// <summary>The <c>debugfs</c> to run; null looks in PATH, then /usr/sbin and /sbin.</summary>
    public string? DebugfsPath { get; init; }

    /// <summary>
    /// Build as an unprivileged process would even when running as root (default false: decided by
    /// <see cref="Environment.IsPrivilegedProcess"/>). Unprivileged, entries the builder owns but
    /// cannot read are made readable for mkfs and get their mode back on the disk through debugfs.
    /// Owners are reconciled through debugfs either way (see <see cref="RootDiskCache.GetOrBuildAsync"/>).
    /// </summary>
    public bool AssumeUnprivileged { get; init; }

    /// <summary>Build directories and stray files in <c>tmp/</c> older than this are garbage (default 1 hour).</summary>
    public TimeSpan TempMaxAge { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Test hook: the first mkfs attempt gets this fraction of the computed size and inodes, to
    /// exercise the retry when mkfs runs out of space (1 in production).
    /// </summary>
    internal double FirstAttemptScale { get; init; } = 1;
}
