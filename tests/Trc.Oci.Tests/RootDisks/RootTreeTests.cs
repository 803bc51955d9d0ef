using System.Runtime.Versioning;
using Trc.Oci.Layers;
using Trc.Oci.RootDisks;

namespace Trc.Oci.Tests.RootDisks;

[SupportedOSPlatform("linux")]
public sealed class RootTreeTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("trc-root-tree-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string At(string relative) => Path.Combine(_root, relative);

    [Fact]
    public void Hard_links_count_once_and_symlinks_are_not_followed()
    {
        Directory.CreateDirectory(At("d/e"));
        File.WriteAllBytes(At("d/e/file"), new byte[5000]);
        ConfinedRoot.HardLink(At("d/e/file"), At("hard"));
        File.WriteAllBytes(At("empty"), []);
        File.CreateSymbolicLink(At("short"), "/d/e/file");
        File.CreateSymbolicLink(At("long"), "/" + new string('x', 80));
        File.CreateSymbolicLink(At("loop"), "/"); // would recurse forever if followed

        var tree = RootTree.Scan(_root, makeReadable: false, CancellationToken.None);

        Assert.Equal(["", "d", "d/e", "d/e/file", "empty", "hard", "long", "loop", "short"], tree.Entries.Select(e => e.Path));
        Assert.Equal(8, tree.Inodes); // 9 names, one of them a second link
        Assert.Equal(5000, tree.ContentBytes);
        // root, d, d/e: one block each; the file: 2; the long symlink: 1; empty and short ones: none.
        Assert.Equal(3 + 2 + 1, tree.Blocks);
    }

    [Fact]
    public void A_big_directory_is_sized_for_half_full_hashed_blocks()
    {
        Assert.Equal(1, RootTree.DirectoryBlocks(24));
        Assert.Equal(1, RootTree.DirectoryBlocks(4084));
        Assert.Equal(3 + 1, RootTree.DirectoryBlocks(4085));
        Assert.Equal(500 + 1 + 1, RootTree.DirectoryBlocks(500 * 2042));
    }

    [Fact]
    public void Files_past_four_extents_get_index_blocks()
    {
        Assert.Equal(0, RootTree.FileBlocks(0));
        Assert.Equal(1, RootTree.FileBlocks(1));
        Assert.Equal(4 * 32768, RootTree.FileBlocks(4L * 32768 * 4096));
        Assert.Equal(4 * 32768 + 2, RootTree.FileBlocks(4L * 32768 * 4096 + 1));
    }

    [Fact]
    public void A_fifo_in_the_tree_is_an_error_naming_it()
    {
        Ext4Inspector.Run("mkfifo", At("pipe"));
        var e = Assert.Throws<RootDiskException>(() => RootTree.Scan(_root, makeReadable: false, CancellationToken.None));
        Assert.Contains("'pipe'", e.Message);
    }

    [Fact]
    public void Unreadable_entries_are_made_readable_and_their_modes_remembered()
    {
        Directory.CreateDirectory(At("locked"));
        File.WriteAllText(At("locked/secret"), "s");
        File.SetUnixFileMode(At("locked/secret"), UnixFileMode.UserWrite);
        File.SetUnixFileMode(At("locked"), UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var tree = RootTree.Scan(_root, makeReadable: true, CancellationToken.None);

        Assert.Equal(new Dictionary<string, uint> { ["locked"] = 0x4000 | 0x80 | 0x40, ["locked/secret"] = 0x8000 | 0x80 }, tree.ModesChanged);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(At("locked")));
        Assert.Equal(["", "locked", "locked/secret"], tree.Entries.Select(e => e.Path));
    }
}
