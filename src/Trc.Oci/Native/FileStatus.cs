using System.Runtime.InteropServices;

namespace Trc.Oci.Native;

/// <summary>
/// What <c>statx(2)</c> says about a path, without following a final symlink: the file type, the
/// inode identity (for hard links) and the owner, none of which <see cref="FileSystemInfo"/> exposes.
/// </summary>
internal readonly record struct FileStatus(FileType Type, ulong Device, ulong Inode, uint Links, uint Uid, uint Gid, long Size)
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;

    /// <summary>lstat a path.</summary>
    /// <exception cref="IOException">The call failed (the path is missing, or permission).</exception>
    public static FileStatus Lstat(string path)
    {
        // struct statx has one layout on every architecture (that is its point); 256 bytes.
        var buffer = new byte[256];
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"{path}: statx failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        var links = MemoryMarshal.Read<uint>(buffer.AsSpan(16));
        var uid = MemoryMarshal.Read<uint>(buffer.AsSpan(20));
        var gid = MemoryMarshal.Read<uint>(buffer.AsSpan(24));
        var mode = MemoryMarshal.Read<ushort>(buffer.AsSpan(28));
        var inode = MemoryMarshal.Read<ulong>(buffer.AsSpan(32));
        var size = MemoryMarshal.Read<long>(buffer.AsSpan(40));
        var deviceMajor = MemoryMarshal.Read<uint>(buffer.AsSpan(136));
        var deviceMinor = MemoryMarshal.Read<uint>(buffer.AsSpan(140));
        var type = (mode & 0xF000) switch
        {
            0x8000 => FileType.Regular,
            0x4000 => FileType.Directory,
            0xA000 => FileType.Symlink,
            0x1000 => FileType.Fifo,
            0xC000 => FileType.Socket,
            0x2000 => FileType.CharacterDevice,
            0x6000 => FileType.BlockDevice,
            _ => FileType.Unknown,
        };
        return new FileStatus(type, ((ulong)deviceMajor << 32) | deviceMinor, inode, links, uid, gid, size);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string pathname, int flags, uint mask, [Out] byte[] buffer);
}

/// <summary>The type bits of a file's mode.</summary>
internal enum FileType
{
    Unknown,
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharacterDevice,
    BlockDevice,
}
