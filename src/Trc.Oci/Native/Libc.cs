using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Trc.Oci.Native;

/// <summary>
/// The few libc calls .NET has no public API for: lstat with the inode number and link count
/// (statx, whose layout is the same on every architecture, unlike struct stat), flock without
/// .NET's own advisory FileShare locks in the way, and fsync of a directory.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class Libc
{
    // Same values on x86_64 and aarch64 (O_DIRECTORY is not: it is not used).
    private const int ORdOnly = 0;
    private const int ORdWr = 2;
    private const int OCreat = 0x40;
    private const int OCloExec = 0x80000;
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7ff;
    private const int LockEx = 2;
    private const int LockNb = 4;
    private const int EIntr = 4;
    private const int EAgain = 11;
    private const int ENoent = 2;

    /// <summary>File type bits of a mode.</summary>
    public const uint TypeMask = 0xf000;

    /// <summary>Regular file.</summary>
    public const uint TypeRegular = 0x8000;

    /// <summary>Directory.</summary>
    public const uint TypeDirectory = 0x4000;

    /// <summary>Symbolic link.</summary>
    public const uint TypeSymlink = 0xa000;

    /// <summary>What lstat says about a path, with the fields the root disk builder needs.</summary>
    public readonly record struct FileStatus(uint Mode, uint Uid, uint Gid, ulong Inode, uint DeviceMajor, uint DeviceMinor, uint Links, ulong Size, ulong Blocks, DateTime LastWriteUtc)
    {
        public uint Type => Mode & TypeMask;

        public uint Permissions => Mode & 0xfff;

        /// <summary>Bytes allocated on disk (st_blocks is in 512-byte units whatever the block size).</summary>
        public long AllocatedBytes => (long)Blocks * 512;
    }

    /// <summary>lstat: never follows a symlink at <paramref name="path"/>; null when it does not exist.</summary>
    public static FileStatus? LStat(string path)
    {
        while (true)
        {
            if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, out var buffer) == 0)
            {
                return ToStatus(buffer);
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EIntr)
            {
                continue;
            }
            if (errno == ENoent)
            {
                return null;
            }
            throw new IOException($"cannot stat '{path}': {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }

    /// <summary>fstat of an open descriptor.</summary>
    public static FileStatus FStat(SafeFileHandle handle)
    {
        while (true)
        {
            if (statx((int)handle.DangerousGetHandle(), "", AtEmptyPath, StatxBasicStats, out var buffer) == 0)
            {
                return ToStatus(buffer);
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno != EIntr)
            {
                throw new IOException($"cannot stat an open file: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
    }

    /// <summary>
    /// Opens (creating it if missing) a lock file for reading and writing, close-on-exec so mkfs and
    /// debugfs do not inherit it. Opened with open(2), not <see cref="FileStream"/>: .NET takes a shared
    /// flock on every file it opens, which would fight the exclusive one taken here.
    /// </summary>
    public static SafeFileHandle OpenLockFile(string path)
    {
        while (true)
        {
            var fd = open(path, ORdWr | OCreat | OCloExec, 0x1a4); // 0644
            if (fd >= 0)
            {
                return new SafeFileHandle(fd, ownsHandle: true);
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno != EIntr)
            {
                throw new IOException($"cannot open the lock file '{path}': {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
    }

    /// <summary>flock(LOCK_EX | LOCK_NB): false when another open file holds the lock.</summary>
    public static bool TryLockExclusive(SafeFileHandle handle)
    {
        while (true)
        {
            if (flock((int)handle.DangerousGetHandle(), LockEx | LockNb) == 0)
            {
                return true;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EAgain)
            {
                return false;
            }
            if (errno != EIntr)
            {
                throw new IOException($"flock failed: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
    }

    /// <summary>fsync of a directory, so renames in it survive a crash.</summary>
    public static void FsyncDirectory(string path)
    {
        int fd;
        while ((fd = open(path, ORdOnly | OCloExec, 0)) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != EIntr)
            {
                throw new IOException($"cannot open the directory '{path}': {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (fsync(fd) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"fsync of the directory '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }

    /// <summary>The effective user id.</summary>
    public static uint EffectiveUserId => geteuid();

    private static FileStatus ToStatus(in Statx s) => new(
        s.Mode, s.Uid, s.Gid, s.Inode, s.DevMajor, s.DevMinor, s.Nlink, s.Size, s.Blocks,
        DateTime.UnixEpoch.AddTicks(s.MtimeSeconds * TimeSpan.TicksPerSecond + s.MtimeNanoseconds / 100));

    // struct statx from <linux/stat.h>: fixed layout, 256 bytes, the same on all architectures.
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct Statx
    {
        [FieldOffset(16)] public uint Nlink;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Inode;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(48)] public ulong Blocks;
        [FieldOffset(112)] public long MtimeSeconds;
        [FieldOffset(120)] public uint MtimeNanoseconds;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, out Statx buffer);

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int flock(int fd, int operation);

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport("libc")]
    private static extern uint geteuid();
}
