using System.Runtime.InteropServices;

namespace Trc.Cli.Dev;

/// <summary>Who owns a file, and whether a file holding a token may be trusted (Linux <c>statx</c>, whose layout is the same on every architecture).</summary>
internal static class FileOwner
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    private const int GroupOrOtherWrite = 0x12; // 0o022

    /// <summary>The effective user id of this process.</summary>
    public static uint EffectiveUser => geteuid();

    /// <summary>The owner, mode and kind of <paramref name="path"/> without following a last symlink; null when it cannot be read.</summary>
    public static (uint Uid, uint Mode)? Stat(string path)
    {
        var buffer = new byte[256];
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            return null;
        }
        // struct statx: stx_mask u32 @0, stx_blksize u32 @4, stx_attributes u64 @8, stx_nlink u32 @16,
        // stx_uid u32 @20, stx_gid u32 @24, stx_mode u16 @28.
        return (BitConverter.ToUInt32(buffer, 20), BitConverter.ToUInt16(buffer, 28));
    }

    /// <summary>
    /// Whether a file others could have planted or changed: it must be a regular file (not a
    /// symlink), owned by this user or root, and neither it nor its directory writable by group or
    /// others. Null when trusted, else why not.
    /// </summary>
    public static string? Untrusted(string path)
    {
        var me = EffectiveUser;
        foreach (var (target, what) in new[] { (path, "the file"), (Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/", "its directory") })
        {
            if (Stat(target) is not { } st)
            {
                return $"{what} cannot be read";
            }
            var kind = st.Mode & 0xF000;
            if (target == path && kind != 0x8000)
            {
                return "it is not a regular file (a symlink?)";
            }
            if (st.Uid != me && st.Uid != 0)
            {
                return $"{what} belongs to uid {st.Uid}, neither you nor root";
            }
            if ((st.Mode & GroupOrOtherWrite) != 0)
            {
                return $"{what} is writable by group or others (mode {Convert.ToString(st.Mode & 0xFFF, 8)})";
            }
        }
        return null;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    [DllImport("libc")]
    private static extern uint geteuid();
}
