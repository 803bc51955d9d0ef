using System.Text;
using Trc.Oci.Layers;

using Trc.Oci.Native;

namespace Trc.Oci.RootDisks;

/// <summary>A debugfs command file and how many inodes it changes.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed record DebugfsScript(IReadOnlyList<string> Lines, int InodesFixed)
{
    /// <summary>debugfs reads its command file with fgets into a BUFSIZ (8192-byte) buffer: a longer line would be cut in two commands.</summary>
    private const int MaxLineBytes = 8000;

    /// <summary>
    /// The commands that give the disk the owners the image records and the modes
    /// <see cref="RootTree.Scan"/> had to change. The owner of an inode is the one recorded for its
    /// path by the last layer that wrote it; for an inode with several hard links, the earliest-recorded
    /// of its paths wins (the file, not the link to it); an inode with no record (a directory the
    /// applier created implicitly, the root) belongs to root. Only fields that differ from the host
    /// file are set, so a tree already owned right (applied as root) gives no owner command.
    /// </summary>
    /// <exception cref="RootDiskException">A path that needs a command cannot be written in debugfs syntax.</exception>
    public static DebugfsScript Plan(RootTree tree, IReadOnlyList<EntryOwner> owners)
    {
        var recorded = new Dictionary<string, (int Index, int Uid, int Gid)>(StringComparer.Ordinal);
        for (var i = 0; i < owners.Count; i++)
        {
            var o = owners[i];
            if (o.Uid < 0 || o.Gid < 0)
            {
                throw new RootDiskException($"'{RootTree.Printable(o.Path)}' has a negative owner ({o.Uid}:{o.Gid})");
            }
            recorded[o.Path] = (i, o.Uid, o.Gid);
        }
        var inodes = new Dictionary<(uint, uint, ulong), InodeFix>();
        var order = new List<InodeFix>();
        foreach (var entry in tree.Entries)
        {
            if (entry.Path.Length == 0)
            {
                continue; // the root: mkfs -E root_owner=0:0, and the scan leaves its mode alone
            }
            var s = entry.Status;
            if (!inodes.TryGetValue((s.DeviceMajor, s.DeviceMinor, s.Inode), out var fix))
            {
                fix = new InodeFix(entry.Path, s);
                inodes.Add((s.DeviceMajor, s.DeviceMinor, s.Inode), fix);
                order.Add(fix);
            }
            if (recorded.TryGetValue(entry.Path, out var owner) && owner.Index < fix.RecordIndex)
            {
                fix.RecordIndex = owner.Index;
                fix.Uid = owner.Uid;
                fix.Gid = owner.Gid;
            }
        }
        var lines = new List<string>();
        var fixedCount = 0;
        foreach (var fix in order)
        {
            var count = lines.Count;
            var path = "/" + fix.Path;
            if ((uint)fix.Uid != fix.Status.Uid)
            {
                lines.Add(SetField(path, "uid", ((uint)fix.Uid).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
            if ((uint)fix.Gid != fix.Status.Gid)
            {
                lines.Add(SetField(path, "gid", ((uint)fix.Gid).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
            if (tree.ModesChanged.TryGetValue(fix.Path, out var mode))
            {
                lines.Add(SetField(path, "mode", "0" + Convert.ToString(mode, 8))); // type bits included, octal
            }
            if (lines.Count > count)
            {
                fixedCount++;
            }
        }
        return new DebugfsScript(lines, fixedCount);
    }

    /// <summary>
    /// Quotes <paramref name="path"/> for a debugfs command line. debugfs (its ss library) reads a
    /// double-quoted argument literally, a doubled quote standing for one quote; there is no escape,
    /// so a newline or carriage return (the command file is line-based, and both end a line) or a NUL
    /// cannot be written.
    /// </summary>
    public static bool TryQuote(string path, out string quoted)
    {
        quoted = "";
        if (path.AsSpan().IndexOfAny('\n', '\r', '\0') >= 0)
        {
            return false;
        }
        quoted = "\"" + path.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
        return true;
    }

    private static string SetField(string path, string field, string value)
    {
        if (!TryQuote(path, out var quoted))
        {
            throw new RootDiskException(
                $"'{RootTree.Printable(path)}' needs its {field} set on the disk, but debugfs cannot name it: its command file is line-based " +
                "and has no escape for a newline or carriage return in a name. Build as root with the owners applied to the files, or keep such names out of the image");
        }
        var line = $"set_inode_field {quoted} {field} {value}";
        return Encoding.UTF8.GetByteCount(line) < MaxLineBytes
            ? line
            : throw new RootDiskException($"'{RootTree.Printable(path[..Math.Min(path.Length, 200)])}…' is too long for a debugfs command line ({MaxLineBytes} bytes)");
    }

    private sealed class InodeFix(string path, Libc.FileStatus status)
    {
        public string Path { get; } = path;

        public Libc.FileStatus Status { get; } = status;

        public int RecordIndex { get; set; } = int.MaxValue;

        public int Uid { get; set; }

        public int Gid { get; set; }
    }
}
