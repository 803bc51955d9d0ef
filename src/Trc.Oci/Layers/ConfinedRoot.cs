using System.Runtime.InteropServices;

namespace Trc.Oci.Layers;

/// <summary>
/// Resolves tar names to paths under a root directory the way a chroot would, so nothing outside the
/// root is ever reached: names are normalized lexically, then every parent component is checked on
/// disk with lstat and symlinks are expanded by hand, absolute targets and '..' at the top being
/// relative to the root. Assumes no other process changes the tree while a layer is applied.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class ConfinedRoot
{
    /// <summary>Same limit as Linux's MAXSYMLINKS: beyond it the walk is a loop.</summary>
    public const int MaxSymlinkHops = 40;

    public ConfinedRoot(string root) => Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));

    public string Root { get; }

    /// <summary>What lstat says about a path.</summary>
    public enum Kind { Missing, Directory, Symlink, Other }

    /// <summary>
    /// Splits a tar name into components relative to the root. A leading '/' or './' is dropped (the
    /// name is relative to the root); a '..' that would climb above the root is refused, as is NUL.
    /// </summary>
    public static string[] Normalize(string name, string entryName, string what)
    {
        if (name.Length == 0)
        {
            throw new LayerException($"{what} is empty", entryName);
        }
        if (name.Contains('\0'))
        {
            throw new LayerException($"{what} contains a NUL byte", entryName);
        }
        var parts = new List<string>();
        foreach (var c in name.Split('/'))
        {
            if (c is "" or ".")
            {
                continue;
            }
            if (c == "..")
            {
                if (parts.Count == 0)
                {
                    throw new LayerException($"{what} '{name}' climbs above the root with '..'", entryName);
                }
                parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(c);
        }
        return [.. parts];
    }

    /// <summary>lstat: never follows a symlink at <paramref name="path"/>.</summary>
    public static Kind Lstat(string path)
    {
        // FileInfo takes its attributes from lstat; -1 means the path does not exist.
        var attributes = new FileInfo(path).Attributes;
        if ((int)attributes == -1)
        {
            return Kind.Missing;
        }
        if (attributes.HasFlag(FileAttributes.ReparsePoint))
        {
            return Kind.Symlink;
        }
        return attributes.HasFlag(FileAttributes.Directory) ? Kind.Directory : Kind.Other;
    }

    /// <summary>
    /// Resolves <paramref name="components"/> as a directory inside the root and returns its real
    /// path (free of symlinks). Missing directories are created when <paramref name="create"/> is
    /// set; otherwise a missing one gives null.
    /// </summary>
    public string? ResolveDirectory(IReadOnlyList<string> components, bool create, string entryName)
    {
        var resolved = new List<string>();
        var pending = new Stack<string>(components.Reverse());
        var hops = 0;
        while (pending.TryPop(out var c))
        {
            if (c is "" or ".")
            {
                continue;
            }
            if (c == "..")
            {
                // '..' at the root stays at the root, as in a chroot.
                if (resolved.Count > 0)
                {
                    resolved.RemoveAt(resolved.Count - 1);
                }
                continue;
            }
            var path = Join(resolved, c);
            switch (Lstat(path))
            {
                case Kind.Directory:
                    resolved.Add(c);
                    break;
                case Kind.Symlink:
                    if (++hops > MaxSymlinkHops)
                    {
                        throw new LayerException(
                            $"too many levels of symbolic links (more than {MaxSymlinkHops}) resolving '{string.Join('/', components)}'", entryName);
                    }
                    var target = new FileInfo(path).LinkTarget ?? "";
                    if (target.StartsWith('/'))
                    {
                        resolved.Clear();
                    }
                    foreach (var t in target.Split('/').Reverse())
                    {
                        pending.Push(t);
                    }
                    break;
                case Kind.Missing when create:
                    // The prefix is a real directory inside the root, so this creates exactly one directory there.
                    Directory.CreateDirectory(path);
                    resolved.Add(c);
                    break;
                case Kind.Missing:
                    return null;
                default:
                    throw new LayerException(
                        $"'{string.Join('/', components)}' goes through '{Relative(path)}', which is not a directory", entryName);
            }
        }
        return resolved.Count == 0 ? Root : Join(resolved[..^1], resolved[^1]);
    }

    /// <summary>Deletes a path without following symlinks, at the top or anywhere below.</summary>
    public static void DeleteNoFollow(string path)
    {
        switch (Lstat(path))
        {
            case Kind.Directory:
                foreach (var child in Directory.EnumerateFileSystemEntries(path))
                {
                    DeleteNoFollow(child);
                }
                Directory.Delete(path);
                break;
            case Kind.Missing:
                break;
            default:
                File.Delete(path); // unlink: removes a symlink itself
                break;
        }
    }

    /// <summary>Creates a hard link (link(2) does not follow a symlink at <paramref name="existing"/>).</summary>
    public static void HardLink(string existing, string newPath)
    {
        if (Native.link(existing, newPath) != 0)
        {
            throw new IOException($"link failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Sets the owner of a path without following a symlink.</summary>
    public static void LChown(string path, int uid, int gid)
    {
        if (Native.lchown(path, uid, gid) != 0)
        {
            throw new IOException($"lchown failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>The root-relative form of an absolute path under the root, for messages.</summary>
    public string Relative(string path) =>
        path.Length > Root.Length ? path[(Root.Length + 1)..] : ".";

    private string Join(List<string> resolved, string last) =>
        resolved.Count == 0 ? Root + "/" + last : Root + "/" + string.Join('/', resolved) + "/" + last;

    private static class Native
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int link([MarshalAs(UnmanagedType.LPUTF8Str)] string oldPath, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath);

        [DllImport("libc", SetLastError = true)]
        public static extern int lchown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int owner, int group);
    }
}
