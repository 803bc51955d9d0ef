namespace Trc.Oci.RootDisks;

/// <summary>Where a root disk build is.</summary>
public enum RootDiskPhase
{
    /// <summary>Another caller (this process or another) is building the same disk; this one waits for it.</summary>
    Waiting,

    /// <summary>The image's files are being written into the build directory.</summary>
    Populating,

    /// <summary>The populated tree is being walked to size the disk.</summary>
    Sizing,

    /// <summary><c>mkfs.ext4 -d</c> is writing the disk.</summary>
    Formatting,

    /// <summary><c>debugfs</c> is setting owners (and modes) the files on the host could not carry.</summary>
    FixingOwners,

    /// <summary>The disk is in the cache.</summary>
    Published,
}

/// <summary>
/// A progress report of <see cref="RootDiskCache.GetOrBuildAsync"/>: one per phase (one per mkfs
/// attempt for <see cref="RootDiskPhase.Formatting"/>), each with the numbers that phase is about.
/// </summary>
/// <param name="Phase">
/// The phase: sent as it starts, except <see cref="RootDiskPhase.Sizing"/>, sent when the tree has
/// been walked and its numbers are known.
/// </param>
/// <param name="Bytes">
/// <see cref="RootDiskPhase.Sizing"/>: file content bytes (hard links counted once).
/// <see cref="RootDiskPhase.Formatting"/>, <see cref="RootDiskPhase.FixingOwners"/>,
/// <see cref="RootDiskPhase.Published"/>: the disk size. Otherwise 0.
/// </param>
/// <param name="Inodes">
/// Files, directories and symlinks (hard links counted once), from <see cref="RootDiskPhase.Sizing"/>
/// on; for <see cref="RootDiskPhase.FixingOwners"/>, the inodes whose owner or mode is being set.
/// Otherwise 0.
/// </param>
public sealed record RootDiskProgress(RootDiskPhase Phase, long Bytes, long Inodes);
