using System.Text;

using Trc.Oci.Native;

namespace Trc.Oci.RootDisks;

/// <summary>One entry of a populated tree, as lstat saw it.</summary>
/// <param name="Path">Root-relative, '/'-separated, no leading slash; empty for the root itself.</param>
/// <param name="Status">What lstat said (after <see cref="RootTree.Scan"/> made it readable, if it did).</param>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal readonly record struct TreeEntry(string Path, Libc.FileStatus Status);

/// <summary>
/// The populated tree walked once: every entry with its lstat, the inodes counted once however many
/// hard links they have, and the blocks ext4 will need for them. Symlinks are never followed.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class RootTree
{
    public const int BlockSize = 4096;

    /// <summary>Symlink targets shorter than this live in the inode (ext4 "fast" symlinks).</summary>
    private const int FastSymlinkMax = 60;

    /// <summary>With metadata_csum each directory block ends in a 12-byte checksum entry.</summary>
    private const int DirectoryBlockUsable = BlockSize - 12;

    /// <summary>Initialised extents hold at most 32768 blocks; an inode holds 4 extents, an index block 340.</summary>
    private const long BlocksPerExtent = 32768;

    private RootTree(string root) => Root = root;

    public string Root { get; }

    /// <summary>Every entry, the root first, each directory before what is in it, names in ordinal order.</summary>
    public List<TreeEntry> Entries { get; } = [];

    /// <summary>Distinct inodes, the root included.</summary>
    public long Inodes { get; private set; }

    /// <summary>Bytes of regular file content, each inode once.</summary>
    public long ContentBytes { get; private set; }

    /// <summary>Blocks for file data (with extent index blocks), directories and slow symlinks.</summary>
    public long Blocks { get; private set; }

    /// <summary>
    /// Original modes (type bits included) of the entries <see cref="Scan"/> made readable, by path.
    /// The disk must get these back.
    /// </summary>
    public Dictionary<string, uint> ModesChanged { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Walks <paramref name="root"/>. With <paramref name="makeReadable"/>, an entry the process owns
    /// but could not read (a file without u+r, a directory without u+rx: Fedora's /etc/shadow is 0000)
    /// gets those bits so mkfs can copy it, and its original mode is kept in <see cref="ModesChanged"/>.
    /// </summary>
    public static RootTree Scan(string root, bool makeReadable, CancellationToken cancellationToken)
    {
        var tree = new RootTree(root);
        var euid = Libc.EffectiveUserId;
        var seen = new HashSet<(uint, uint, ulong)>();
        var pending = new Stack<string>();
        pending.Push("");
        while (pending.TryPop(out var relative))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var full = relative.Length == 0 ? root : root + "/" + relative;
            var status = Libc.LStat(full)
                ?? throw new RootDiskException($"'{Printable(relative)}' disappeared from the populated tree while it was being read");
            status = MakeReadable(tree, relative, full, status, makeReadable, euid);
            tree.Entries.Add(new TreeEntry(relative, status));
            if (!seen.Add((status.DeviceMajor, status.DeviceMinor, status.Inode)))
            {
                continue; // another name of an inode already counted
            }
            tree.Inodes++;
            switch (status.Type)
            {
                case Libc.TypeRegular:
                    tree.ContentBytes += (long)status.Size;
                    tree.Blocks += FileBlocks((long)status.Size);
                    break;
                case Libc.TypeSymlink:
                    tree.Blocks += (long)status.Size < FastSymlinkMax ? 0 : 1;
                    break;
                case Libc.TypeDirectory:
                    var names = Directory.EnumerateFileSystemEntries(full).Select(Path.GetFileName).ToArray();
                    Array.Sort(names, StringComparer.Ordinal);
                    long entryBytes = 24; // '.' and '..'
                    // Pushed in reverse so they pop in order: the walk is depth-first, names sorted.
                    for (var i = names.Length - 1; i >= 0; i--)
                    {
                        var name = names[i]!;
                        entryBytes += 8 + ((Encoding.UTF8.GetByteCount(name) + 3) & ~3);
                        pending.Push(relative.Length == 0 ? name : relative + "/" + name);
                    }
                    tree.Blocks += DirectoryBlocks(entryBytes);
                    break;
                default:
                    // mkfs -d would copy a device node or FIFO; the applier never makes one, so this
                    // is something populate should not have left.
                    throw new RootDiskException($"'{Printable(relative)}' in the populated tree is not a file, directory or symlink (mode {Convert.ToString(status.Mode, 8)})");
            }
        }
        return tree;
    }

    /// <summary>Data blocks of a file, plus extent index blocks once it needs more than the inode's 4 extents.</summary>
    internal static long FileBlocks(long size)
    {
        var blocks = (size + BlockSize - 1) / BlockSize;
        return blocks <= 4 * BlocksPerExtent ? blocks : blocks + blocks / (BlocksPerExtent * 340) + 1;
    }

    /// <summary>
    /// Blocks of a directory whose entries take <paramref name="entryBytes"/>. One block when they
    /// fit; beyond that, leaves are assumed half full (hashed directories split them) plus index blocks.
    /// </summary>
    internal static long DirectoryBlocks(long entryBytes)
    {
        if (entryBytes <= DirectoryBlockUsable)
        {
            return 1;
        }
        const int half = DirectoryBlockUsable / 2;
        var leaves = (entryBytes + half - 1) / half;
        return leaves + 1 + leaves / 500;
    }

    private static Libc.FileStatus MakeReadable(RootTree tree, string relative, string full, Libc.FileStatus status, bool makeReadable, uint euid)
    {
        const uint userRead = 0x100, userExecute = 0x40;
        var needed = status.Type switch
        {
            Libc.TypeDirectory => userRead | userExecute,
            Libc.TypeRegular => userRead,
            _ => 0u, // symlinks have no permissions of their own
        };
        if (!makeReadable || needed == 0 || (status.Mode & needed) == needed || status.Uid != euid)
        {
            return status;
        }
        // A real file or directory (lstat'ed just now, and the tree is ours alone): chmod does not go through a link.
        File.SetUnixFileMode(full, (UnixFileMode)((status.Mode | needed) & 0xfff));
        tree.ModesChanged[relative] = status.Mode;
        return Libc.LStat(full) ?? status;
    }

    /// <summary>Names are image content: keep control characters out of messages.</summary>
    internal static string Printable(string s) =>
        string.Concat(s.Select(c => char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString()));
}
