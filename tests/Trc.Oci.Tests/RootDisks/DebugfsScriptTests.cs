using System.Runtime.Versioning;
using Trc.Oci.Layers;
using Trc.Oci.RootDisks;

using Trc.Oci.Native;

namespace Trc.Oci.Tests.RootDisks;

[SupportedOSPlatform("linux")]
public sealed class DebugfsScriptTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("trc-debugfs-script-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("/plain", "\"/plain\"")]
    [InlineData("/with space", "\"/with space\"")]
    [InlineData("/q\"uote\"", "\"/q\"\"uote\"\"\"")]
    [InlineData("/tab\there", "\"/tab\there\"")]
    [InlineData("/back\\slash", "\"/back\\slash\"")]
    [InlineData("/ünï", "\"/ünï\"")]
    public void Paths_are_double_quoted_with_quotes_doubled(string path, string quoted)
    {
        Assert.True(DebugfsScript.TryQuote(path, out var actual));
        Assert.Equal(quoted, actual);
    }

    [Theory]
    [InlineData("/new\nline")]
    [InlineData("/carriage\rreturn")]
    [InlineData("/nul\0")]
    public void Line_breaks_and_nul_cannot_be_quoted(string path) =>
        Assert.False(DebugfsScript.TryQuote(path, out _));

    [Fact]
    public void Only_owners_that_differ_are_set_and_a_hard_link_takes_the_owner_of_the_file()
    {
        File.WriteAllText(Path.Combine(_root, "same"), "");
        File.WriteAllText(Path.Combine(_root, "file"), "");
        File.CreateSymbolicLink(Path.Combine(_root, "link"), "file");
        ConfinedRootLink(Path.Combine(_root, "file"), Path.Combine(_root, "hard"));
        File.WriteAllText(Path.Combine(_root, "unrecorded"), "");
        Directory.CreateDirectory(Path.Combine(_root, "dir"));
        var same = Libc.LStat(Path.Combine(_root, "same"))!.Value;
        var unrecorded = Libc.LStat(Path.Combine(_root, "unrecorded"))!.Value;
        var tree = RootTree.Scan(_root, makeReadable: false, CancellationToken.None);

        var script = DebugfsScript.Plan(tree, [
            new EntryOwner("same", (int)same.Uid, (int)same.Gid),
            new EntryOwner("file", 4242, 4343),
            new EntryOwner("hard", 7, 7), // a later record of the same inode: the file's owner wins
            new EntryOwner("link", 5, (int)same.Gid),
            new EntryOwner("dir", 6, 6),
            new EntryOwner("gone", 9, 9), // removed by a later whiteout: not on the disk, no command
        ]);

        List<string> expected = [
            "set_inode_field \"/dir\" uid 6", "set_inode_field \"/dir\" gid 6",
            "set_inode_field \"/file\" uid 4242", "set_inode_field \"/file\" gid 4343",
            "set_inode_field \"/link\" uid 5",
        ];
        if (unrecorded.Uid != 0)
        {
            expected.Add("set_inode_field \"/unrecorded\" uid 0"); // no record: root's
        }
        if (unrecorded.Gid != 0)
        {
            expected.Add("set_inode_field \"/unrecorded\" gid 0");
        }
        Assert.Equal(expected, script.Lines);
        Assert.Equal(unrecorded.Uid != 0 || unrecorded.Gid != 0 ? 4 : 3, script.InodesFixed);
    }

    [Fact]
    public void Modes_made_readable_for_mkfs_are_set_back()
    {
        var shadow = Path.Combine(_root, "shadow");
        File.WriteAllText(shadow, "x");
        File.SetUnixFileMode(shadow, UnixFileMode.None);
        var me = Libc.LStat(shadow)!.Value;
        var tree = RootTree.Scan(_root, makeReadable: true, CancellationToken.None);

        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(shadow));
        var script = DebugfsScript.Plan(tree, [new EntryOwner("shadow", (int)me.Uid, (int)me.Gid)]);
        Assert.Equal(["set_inode_field \"/shadow\" mode 0100000"], script.Lines);
    }

    [Fact]
    public void A_name_that_cannot_be_quoted_fails_only_when_it_needs_a_command()
    {
        var path = Path.Combine(_root, "new\nline");
        File.WriteAllText(path, "");
        var me = Libc.LStat(path)!.Value;
        var tree = RootTree.Scan(_root, makeReadable: false, CancellationToken.None);

        Assert.Empty(DebugfsScript.Plan(tree, [new EntryOwner("new\nline", (int)me.Uid, (int)me.Gid)]).Lines);
        var e = Assert.Throws<RootDiskException>(() => DebugfsScript.Plan(tree, [new EntryOwner("new\nline", 4242, (int)me.Gid)]));
        Assert.Contains("'/new\\x0aline' needs its uid set", e.Message);
    }

    private static void ConfinedRootLink(string existing, string link) => ConfinedRoot.HardLink(existing, link);
}
