using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Trc.Cli.Dev;

/// <summary>
/// The libc calls trc dev needs where .NET has no public API: realpath (every symlink of a path
/// resolved), a non-blocking open that refuses a final symlink (a FIFO must not hang a reader),
/// statx (a file's owner and type; its layout is the same on every architecture), geteuid.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class LinuxFiles
{
    public const int ENoent = 2;
    public const int ENotDir = 20;
    private const int EIntr = 4;
    private const int ORdOnly = 0;
    private const int ONonBlock = 0x800; // same on x86_64 and aarch64
    private const int OCloExec = 0x80000; // same on x86_64 and aarch64
    private const int AtEmptyPath = 0x1000;
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    private const uint TypeMask = 0xf000;
    private const uint TypeRegular = 0x8000;

    // O_NOFOLLOW differs between architectures; elsewhere the /proc check after open covers it.
    private static readonly int ONoFollow = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 0x20000,
        Architecture.Arm64 => 0x8000,
        _ => 0,
    };

    /// <summary>The path with every symlink, '.' and '..' resolved; null (with errno) when that fails.</summary>
    public static string? RealPath(string path, out int errno)
    {
        var resolved = realpath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        try
        {
            errno = 0;
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            free(resolved);
        }
    }

    /// <summary>open(O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC): a FIFO does not block, a final symlink fails.</summary>
    public static SafeFileHandle? OpenReadOnly(string path, out int errno)
    {
        while (true)
        {
            var fd = open(path, ORdOnly | ONonBlock | OCloExec | ONoFollow, 0);
            if (fd >= 0)
            {
                errno = 0;
                return new SafeFileHandle(fd, ownsHandle: true);
            }
            errno = Marshal.GetLastPInvokeError();
            if (errno != EIntr)
            {
                return null;
            }
        }
    }

    /// <summary>The path the kernel has for an open descriptor, or null when /proc cannot say.</summary>
    public static string? OpenedPath(SafeFileHandle handle)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{handle.DangerousGetHandle()}").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The effective user id of this process.</summary>
    public static uint EffectiveUser => geteuid();

    /// <summary>The owner and mode (type bits included) of <paramref name="path"/>, not following a last symlink; null when it cannot be read.</summary>
    public static (uint Uid, uint Mode)? Stat(string path)
    {
        while (true)
        {
            if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, out var buffer) == 0)
            {
                return (buffer.Uid, buffer.Mode);
            }
            if (Marshal.GetLastPInvokeError() != EIntr)
            {
                return null;
            }
        }
    }

    /// <summary>Whether an open descriptor is a regular file, and its size.</summary>
    public static (bool IsRegular, long Length) Describe(SafeFileHandle handle)
    {
        while (true)
        {
            if (statx((int)handle.DangerousGetHandle(), "", AtEmptyPath, StatxBasicStats, out var buffer) == 0)
            {
                return ((buffer.Mode & TypeMask) == TypeRegular, (long)buffer.Size);
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno != EIntr)
            {
                throw new IOException($"cannot stat an open file: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
    }

    // struct statx from <linux/stat.h>: fixed layout, 256 bytes, the same on all architectures.
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct Statx
    {
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(40)] public ulong Size;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc")]
    private static extern void free(IntPtr pointer);

    [DllImport("libc")]
    private static extern uint geteuid();

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, out Statx buffer);
}
