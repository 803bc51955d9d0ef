using System.Runtime.InteropServices;

namespace Trc.Testing.Guest;

/// <summary>
/// A guest root directory: busybox-static as /bin/busybox with a symlink per applet in /bin,
/// /etc/passwd with root and an unprivileged <c>app</c> user (uid <see cref="AppUid"/>), and
/// /etc/group with <c>app</c> and a supplementary group <c>extra</c> that lists <c>app</c>.
/// Turned into a release disk by <see cref="Ext4Disk.CreateAsync(string, int, string?, CancellationToken)"/>.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class BusyboxRoot
{
    /// <summary>The app user's uid, and its primary group's gid.</summary>
    public const int AppUid = 1000;

    /// <summary>The app user's primary gid.</summary>
    public const int AppGid = 1000;

    /// <summary>The gid of <c>extra</c>, a supplementary group of <c>app</c>.</summary>
    public const int ExtraGid = 2000;

    private BusyboxRoot(string directory) => Directory = directory;

    /// <summary>The root directory on the host.</summary>
    public string Directory { get; }

    /// <summary>Where busybox-static installs its binary (the guest has no libc, so it must be the static one).</summary>
    public static string BusyboxBinary => File.Exists("/bin/busybox") ? "/bin/busybox" : HostTool.Find("busybox") ?? "/bin/busybox";

    /// <summary>Makes the tree in <paramref name="directory"/> (created; must be empty or absent).</summary>
    public static async Task<BusyboxRoot> CreateAsync(string directory, CancellationToken ct)
    {
        var root = new BusyboxRoot(directory);
        foreach (var dir in new[] { "bin", "etc", "proc", "sys", "dev", "tmp", "run", "mnt", "root", "home/app" })
        {
            System.IO.Directory.CreateDirectory(root.PathOf(dir));
        }
        File.SetUnixFileMode(root.PathOf("tmp"), (UnixFileMode)Convert.ToInt32("1777", 8));
        File.SetUnixFileMode(root.PathOf("root"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Chown(root.PathOf("home/app"), AppUid, AppGid);

        if (!File.Exists(BusyboxBinary))
        {
            throw new InvalidOperationException("busybox is not installed (busybox-static; scripts/install-test-deps installs it)");
        }
        File.Copy(BusyboxBinary, root.PathOf("bin/busybox"));
        File.SetUnixFileMode(root.PathOf("bin/busybox"), (UnixFileMode)Convert.ToInt32("755", 8));
        var applets = await HostTool.RunCheckedAsync(BusyboxBinary, ["--list"], ct);
        foreach (var applet in applets.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (applet != "busybox" && !applet.Contains('/', StringComparison.Ordinal))
            {
                File.CreateSymbolicLink(root.PathOf("bin/" + applet), "busybox");
            }
        }

        root.WriteFile("etc/passwd", $"""
            root:x:0:0:root:/root:/bin/sh
            app:x:{AppUid}:{AppGid}:app:/home/app:/bin/sh

            """);
        root.WriteFile("etc/group", $"""
            root:x:0:
            app:x:{AppGid}:
            extra:x:{ExtraGid}:app

            """);
        return root;
    }

    /// <summary>A path inside the root ('/'-separated, leading '/' optional).</summary>
    public string PathOf(string path) => Path.Combine(Directory, path.TrimStart('/'));

    /// <summary>Writes a file (parents created), with a mode (default 0644) and owner (default root).</summary>
    public void WriteFile(string path, string content, string mode = "644", int uid = 0, int gid = 0)
    {
        var full = PathOf(path);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content.ReplaceLineEndings("\n"));
        File.SetUnixFileMode(full, (UnixFileMode)Convert.ToInt32(mode, 8));
        Chown(full, uid, gid);
    }

    /// <summary>Makes a directory with a mode and owner.</summary>
    public void CreateDirectory(string path, string mode = "755", int uid = 0, int gid = 0)
    {
        var full = PathOf(path);
        System.IO.Directory.CreateDirectory(full);
        File.SetUnixFileMode(full, (UnixFileMode)Convert.ToInt32(mode, 8));
        Chown(full, uid, gid);
    }

    /// <summary>chown(2): .NET has no managed way to change a file's owner.</summary>
    private static void Chown(string path, int uid, int gid)
    {
        if (chown(path, uid, gid) != 0)
        {
            throw new IOException($"chown {path} {uid}:{gid}: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    // DllImport rather than LibraryImport: the generated stubs would need AllowUnsafeBlocks.
    [DllImport("libc", SetLastError = true)]
    private static extern int chown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int owner, int group);
}
