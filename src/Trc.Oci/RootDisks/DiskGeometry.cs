namespace Trc.Oci.RootDisks;

/// <summary>The size and inode count passed to mkfs.ext4.</summary>
/// <param name="SizeBytes">The disk size, a whole number of MiB.</param>
/// <param name="Inodes">The inode count (<c>-N</c>), reserved inodes included.</param>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal readonly record struct DiskGeometry(long SizeBytes, long Inodes)
{
    private const long MiB = 1L << 20;

    /// <summary>Inodes 1 to 10 are reserved (the root is 2), 11 is lost+found.</summary>
    private const long ReservedInodes = 11;

    private const int InodeSize = 256;

    /// <summary>An ext4 block group with 4 KiB blocks covers 128 MiB.</summary>
    private const long GroupBytes = 128 * MiB;

    /// <summary>
    /// What a tree needs: its blocks, lost+found, the inode tables and, per block group, the bitmaps and
    /// the superblock and descriptor backups; plus the headroom of <paramref name="options"/>.
    /// </summary>
    public static DiskGeometry For(RootTree tree, RootDiskOptions options) =>
        For(tree.Blocks, tree.Inodes, options);

    internal static DiskGeometry For(long blocks, long inodes, RootDiskOptions options)
    {
        var headroom = Math.Max(0, options.HeadroomFraction);
        // The tree's inodes include the root, which is one of the reserved ones.
        var inodeCount = (long)Math.Ceiling((inodes - 1 + ReservedInodes) * (1 + headroom)) + 16;
        var need = (blocks + 4) * RootTree.BlockSize + inodeCount * InodeSize; // 4: lost+found
        var groups = need / GroupBytes + 1;
        need += groups * 4 * RootTree.BlockSize + MiB; // bitmaps, backups; the primary superblock and descriptors
        var size = need + Math.Max((long)Math.Ceiling(need * headroom), Math.Max(0, options.MinimumHeadroomBytes));
        return new DiskGeometry((size + MiB - 1) / MiB * MiB, inodeCount);
    }

    /// <summary>The geometry scaled by <paramref name="factor"/> (whole MiB, at least 1 MiB and 64 inodes).</summary>
    public DiskGeometry Scale(double factor) => new(
        Math.Max(MiB, (long)Math.Ceiling(SizeBytes * factor / MiB) * MiB),
        Math.Max(64, (long)Math.Ceiling(Inodes * factor)));
}
