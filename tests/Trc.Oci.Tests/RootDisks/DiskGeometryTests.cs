using System.Runtime.Versioning;
using Trc.Oci.RootDisks;

namespace Trc.Oci.Tests.RootDisks;

[SupportedOSPlatform("linux")]
public sealed class DiskGeometryTests
{
    private const long MiB = 1L << 20;
    private static readonly RootDiskOptions Defaults = new();

    [Fact]
    public void A_small_tree_gets_the_minimum_headroom_in_whole_MiB()
    {
        var g = DiskGeometry.For(blocks: 100, inodes: 20, Defaults);
        Assert.Equal(0, g.SizeBytes % MiB);
        Assert.InRange(g.SizeBytes, 100 * 4096 + 16 * MiB, 100 * 4096 + 19 * MiB);
        Assert.InRange(g.Inodes, (20 - 1 + 11) * 1.2, 80);
    }

    [Fact]
    public void A_large_tree_gets_the_fractional_headroom()
    {
        const long content = 4L << 30;
        var g = DiskGeometry.For(blocks: content / 4096, inodes: 100_000, Defaults);
        Assert.InRange(g.SizeBytes, (long)(content * 1.2), (long)(content * 1.25));
        Assert.InRange(g.Inodes, 120_000, 121_000);
    }

    [Fact]
    public void Without_headroom_the_size_still_covers_blocks_inode_tables_and_group_metadata()
    {
        var g = DiskGeometry.For(blocks: 10_000, inodes: 5_000, new RootDiskOptions { HeadroomFraction = 0, MinimumHeadroomBytes = 0 });
        Assert.InRange(g.SizeBytes, 10_004 * 4096L + g.Inodes * 256 + MiB, 10_004 * 4096L + g.Inodes * 256 + 3 * MiB);
        Assert.Equal(5_000 - 1 + 11 + 16, g.Inodes);
    }

    [Fact]
    public void Scaling_keeps_whole_MiB_and_a_floor()
    {
        var g = new DiskGeometry(20 * MiB, 1000);
        Assert.Equal(new DiskGeometry(40 * MiB, 2000), g.Scale(2));
        Assert.Equal(new DiskGeometry(MiB, 64), g.Scale(0.001));
    }
}
