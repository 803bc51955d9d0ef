using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Trc.Agent.Runtime.Firecracker;

/// <summary>
/// The libc calls the Firecracker driver needs and .NET has no API for: FIFOs and raw descriptors
/// (the VMM's console is its stdin and stdout), <c>posix_spawn</c> (exact descriptors, a new
/// session, default signal dispositions), <c>waitpid</c>, pidfds, hard links, <c>chown</c>, and the
/// ioctls of the KVM probe. Flag values are those of x86_64 and aarch64, which agree on every one
/// used here.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class FirecrackerNative
{
    public const int ORdOnly = 0;
    public const int OWrOnly = 1;
    public const int ORdWr = 2;
    public const int OCreat = 0x40;
    public const int OAppend = 0x400;
    public const int ONonBlock = 0x800;
    public const int OCloExec = 0x80000;

    public const int EIntr = 4;
    public const int ENoent = 2;
    public const int ESrch = 3;
    public const int EChild = 10;
    public const int EAgain = 11;
    public const int EAccess = 13;
    public const int EExist = 17;
    public const int EXDev = 18;
    public const int ENxio = 6;
    public const int ENoSys = 38;


    private const int FSetPipeSize = 1031;
    private const short PollIn = 0x1;
    private const int WNoHang = 1;
    private const int SysPidfdSendSignal = 424;
    private const int SysPidfdOpen = 434;
    private const short SpawnSetSigDef = 0x04;
    private const short SpawnSetSigMask = 0x08;
    private const short SpawnSetSid = 0x80;

    /// <summary>The message for an errno value.</summary>
    public static string Message(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>Creates a FIFO (mode 0600); an existing one is left as it is.</summary>
    public static void MakeFifo(string path)
    {
        if (mkfifo(path, 0x180) == 0)
        {
            return;
        }
        var errno = Marshal.GetLastPInvokeError();
        if (errno != EExist)
        {
            throw new IOException($"cannot create the FIFO '{path}': {Message(errno)}");
        }
    }

    /// <summary>open(2), retried on EINTR; the errno on failure.</summary>
    public static SafeFileHandle? TryOpen(string path, int flags, int mode, out int errno)
    {
        while (true)
        {
            var fd = open(path, flags | OCloExec, mode);
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

    /// <summary>open(2) that throws an <see cref="IOException"/> naming the path.</summary>
    public static SafeFileHandle Open(string path, int flags, int mode = 0) =>
        TryOpen(path, flags, mode, out var errno) ?? throw new IOException($"cannot open '{path}': {Message(errno)}");

    /// <summary>A pipe's buffer size (F_SETPIPE_SZ); false when the host refuses it.</summary>
    public static bool TrySetPipeSize(SafeFileHandle pipe, int bytes) =>
        fcntl((int)pipe.DangerousGetHandle(), FSetPipeSize, bytes) >= 0;

    /// <summary>
    /// A non-blocking read: the byte count, 0 at end of file, or -1 when nothing is there yet
    /// (EAGAIN). Other errors throw; a closed handle throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public static int ReadNonBlocking(SafeFileHandle fd, byte[] buffer) =>
        Using(fd, raw => RetryNonBlocking(() => read(raw, buffer, buffer.Length), "console read"));

    /// <summary>One write(2): the byte count, or -1 with EAGAIN. Other errors throw.</summary>
    public static int WriteNonBlocking(SafeFileHandle fd, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        return Using(fd, raw => RetryNonBlocking(() => write(raw, copy, copy.Length), "console write"));
    }

    // One read(2) or write(2) on a non-blocking descriptor: retried on EINTR; -1 on EAGAIN.
    private static int RetryNonBlocking(Func<nint> call, string what)
    {
        while (true)
        {
            var n = call();
            if (n >= 0)
            {
                return (int)n;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EAgain)
            {
                return -1;
            }
            if (errno != EIntr)
            {
                throw new IOException($"{what} failed: {Message(errno)}");
            }
        }
    }

    // The descriptor number, kept from being closed (and reused for another file) while in use.
    private static T Using<T>(SafeHandle handle, Func<int, T> use)
    {
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return use((int)handle.DangerousGetHandle());
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>A hard link; the errno (0 on success).</summary>
    public static int Link(string existing, string newPath) =>
        link(existing, newPath) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>chown(2) that throws naming the path.</summary>
    public static void Chown(string path, int uid, int gid)
    {
        if (chown(path, uid, gid) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot give '{path}' to {uid}:{gid}: {Message(errno)}");
        }
    }

    /// <summary>
    /// Starts <paramref name="file"/> with exactly these standard descriptors, in a new session (so
    /// the agent's terminal and process group never reach it), with every signal at its default
    /// disposition and none blocked (.NET ignores SIGPIPE, which exec would pass on).
    /// Returns the child's pid.
    /// </summary>
    public static int Spawn(string file, IReadOnlyList<string> argv, IReadOnlyList<string> environment, SafeFileHandle stdin, SafeFileHandle stdout, SafeFileHandle stderr)
    {
        // posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336 bytes with glibc;
        // 1 KiB each leaves room for any libc.
        var actions = Marshal.AllocHGlobal(1024);
        var attributes = Marshal.AllocHGlobal(1024);
        var sigDefault = new byte[128];
        var sigMask = new byte[128];
        var strings = new List<IntPtr>();
        var addStdin = false;
        var addStdout = false;
        var addStderr = false;
        try
        {
            Check(posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Check(posix_spawnattr_init(attributes), "posix_spawnattr_init");
            stdin.DangerousAddRef(ref addStdin);
            stdout.DangerousAddRef(ref addStdout);
            stderr.DangerousAddRef(ref addStderr);
            Check(posix_spawn_file_actions_adddup2(actions, (int)stdin.DangerousGetHandle(), 0), "adddup2 stdin");
            Check(posix_spawn_file_actions_adddup2(actions, (int)stdout.DangerousGetHandle(), 1), "adddup2 stdout");
            Check(posix_spawn_file_actions_adddup2(actions, (int)stderr.DangerousGetHandle(), 2), "adddup2 stderr");
            TryCloseFrom(actions);
            sigfillset(sigDefault);
            sigemptyset(sigMask);
            Check(posix_spawnattr_setsigdefault(attributes, sigDefault), "setsigdefault");
            Check(posix_spawnattr_setsigmask(attributes, sigMask), "setsigmask");
            Check(posix_spawnattr_setflags(attributes, (short)(SpawnSetSid | SpawnSetSigDef | SpawnSetSigMask)), "setflags");
            var args = ToCStrings([file, .. argv], strings);
            var env = ToCStrings(environment, strings);
            var error = posix_spawn(out var pid, file, actions, attributes, args, env);
            if (error != 0)
            {
                throw new IOException($"cannot start '{file}': {Message(error)}");
            }
            return pid;
        }
        finally
        {
            if (addStdin)
            {
                stdin.DangerousRelease();
            }
            if (addStdout)
            {
                stdout.DangerousRelease();
            }
            if (addStderr)
            {
                stderr.DangerousRelease();
            }
            posix_spawn_file_actions_destroy(actions);
            posix_spawnattr_destroy(attributes);
            Marshal.FreeHGlobal(actions);
            Marshal.FreeHGlobal(attributes);
            foreach (var s in strings)
            {
                Marshal.FreeCoTaskMem(s);
            }
        }
    }

    // Descriptors a native library opened without O_CLOEXEC must not reach the VMM (the jailer
    // closes them itself; a VMM started without it would not). glibc 2.34+; older ones skip it.
    private static void TryCloseFrom(IntPtr actions)
    {
        try
        {
            posix_spawn_file_actions_addclosefrom_np(actions, 3);
        }
        catch (EntryPointNotFoundException)
        {
        }
    }

    private static IntPtr[] ToCStrings(IReadOnlyList<string> values, List<IntPtr> owned)
    {
        var result = new IntPtr[values.Count + 1];
        for (var i = 0; i < values.Count; i++)
        {
            result[i] = Marshal.StringToCoTaskMemUTF8(values[i]);
            owned.Add(result[i]);
        }
        return result;
    }

    private static void Check(int error, string what)
    {
        if (error != 0)
        {
            throw new IOException($"{what} failed: {Message(error)}");
        }
    }

    /// <summary>
    /// waitpid(WNOHANG) on a child: its raw wait status once it has exited, null while it runs, and
    /// <see cref="NotAChild"/> when it is not (or no longer) ours to reap.
    /// </summary>
    public static int? TryReap(int pid)
    {
        while (true)
        {
            var r = waitpid(pid, out var status, WNoHang);
            if (r == pid)
            {
                return status;
            }
            if (r == 0)
            {
                return null;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EIntr)
            {
                continue;
            }
            return NotAChild;
        }
    }

    /// <summary>What <see cref="TryReap"/> returns for a process that is not our child.</summary>
    public const int NotAChild = int.MinValue;

    /// <summary>A wait status in words.</summary>
    public static string DescribeWaitStatus(int status)
    {
        var signal = status & 0x7f;
        if (signal == 0)
        {
            return $"exited with status {(status >> 8) & 0xff}";
        }
        return signal == 0x7f ? "stopped" : $"killed by signal {signal}";
    }

    /// <summary>A pidfd for <paramref name="pid"/>, or null where the kernel has none (before 5.3) or the process is gone.</summary>
    public static SafeFileHandle? TryOpenPidfd(int pid)
    {
        var fd = syscall(SysPidfdOpen, pid, 0);
        return fd >= 0 ? new SafeFileHandle((IntPtr)fd, ownsHandle: true) : null;
    }

    /// <summary>Whether the process behind a pidfd has exited (the pidfd turns readable then).</summary>
    public static bool PidfdExited(SafeFileHandle pidfd) => Using(pidfd, raw =>
    {
        var fds = new PollFd[] { new() { Fd = raw, Events = PollIn } };
        while (true)
        {
            var r = poll(fds, 1, 0);
            if (r >= 0)
            {
                return r > 0 && (fds[0].Revents & PollIn) != 0;
            }
            if (Marshal.GetLastPInvokeError() != EIntr)
            {
                return false;
            }
        }
    });

    /// <summary>Signals the process behind a pidfd (immune to pid reuse); false when it is gone.</summary>
    public static bool PidfdSignal(SafeFileHandle pidfd, int signal) =>
        Using(pidfd, raw => syscall(SysPidfdSendSignal, raw, signal, 0, 0) == 0);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    // --- KVM probe ---

    public const int ProtRead = 1;
    public const int ProtWrite = 2;
    public const int MapShared = 0x01;
    public const int MapPrivate = 0x02;
    public const int MapAnonymous = 0x20;
    public const int MapNoReserve = 0x4000;

    /// <summary>ioctl with an integer argument; the result, or -1 with the errno.</summary>
    public static long Ioctl(SafeFileHandle fd, ulong request, long argument, out int errno)
    {
        var r = ioctl((int)fd.DangerousGetHandle(), (nuint)request, (IntPtr)argument);
        errno = r < 0 ? Marshal.GetLastPInvokeError() : 0;
        return r;
    }

    /// <summary>ioctl with a buffer argument (read or written in place).</summary>
    public static long Ioctl(SafeFileHandle fd, ulong request, byte[] buffer, out int errno)
    {
        var r = ioctl((int)fd.DangerousGetHandle(), (nuint)request, buffer);
        errno = r < 0 ? Marshal.GetLastPInvokeError() : 0;
        return r;
    }

    /// <summary>mmap(2); <see cref="IntPtr.Zero"/> with the errno on failure.</summary>
    public static IntPtr Map(long length, int protection, int flags, SafeFileHandle? fd, out int errno)
    {
        var r = mmap(IntPtr.Zero, (nuint)length, protection, flags, fd is null ? -1 : (int)fd.DangerousGetHandle(), 0);
        errno = r == new IntPtr(-1) ? Marshal.GetLastPInvokeError() : 0;
        return r == new IntPtr(-1) ? IntPtr.Zero : r;
    }

    /// <summary>munmap(2).</summary>
    public static void Unmap(IntPtr address, long length) => munmap(address, (nuint)length);

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int mkfifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int fcntl(int fd, int command, int argument);

    [DllImport("libc", SetLastError = true)]
    private static extern nint read(int fd, byte[] buffer, nint count);

    [DllImport("libc", SetLastError = true)]
    private static extern nint write(int fd, byte[] buffer, nint count);

    [DllImport("libc", SetLastError = true)]
    private static extern int link([MarshalAs(UnmanagedType.LPUTF8Str)] string existing, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath);

    [DllImport("libc", SetLastError = true)]
    private static extern int chown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int owner, int group);

    [DllImport("libc", SetLastError = true)]
    private static extern int waitpid(int pid, out int status, int options);

    [DllImport("libc", SetLastError = true)]
    private static extern long syscall(long number, long a1, long a2);

    [DllImport("libc", SetLastError = true)]
    private static extern long syscall(long number, long a1, long a2, long a3, long a4);

    [DllImport("libc", SetLastError = true)]
    private static extern int poll([In, Out] PollFd[] fds, nuint count, int timeoutMs);

    [DllImport("libc")]
    private static extern int posix_spawn(out int pid, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr fileActions, IntPtr attributes, IntPtr[] argv, IntPtr[] envp);

    [DllImport("libc")]
    private static extern int posix_spawn_file_actions_init(IntPtr actions);

    [DllImport("libc")]
    private static extern int posix_spawn_file_actions_destroy(IntPtr actions);

    [DllImport("libc")]
    private static extern int posix_spawn_file_actions_adddup2(IntPtr actions, int fd, int newFd);

    [DllImport("libc")]
    private static extern int posix_spawn_file_actions_addclosefrom_np(IntPtr actions, int from);

    [DllImport("libc")]
    private static extern int posix_spawnattr_init(IntPtr attributes);

    [DllImport("libc")]
    private static extern int posix_spawnattr_destroy(IntPtr attributes);

    [DllImport("libc")]
    private static extern int posix_spawnattr_setflags(IntPtr attributes, short flags);

    [DllImport("libc")]
    private static extern int posix_spawnattr_setsigdefault(IntPtr attributes, byte[] set);

    [DllImport("libc")]
    private static extern int posix_spawnattr_setsigmask(IntPtr attributes, byte[] set);

    [DllImport("libc")]
    private static extern int sigfillset(byte[] set);

    [DllImport("libc")]
    private static extern int sigemptyset(byte[] set);

    [DllImport("libc", SetLastError = true)]
    private static extern int ioctl(int fd, nuint request, IntPtr argument);

    [DllImport("libc", SetLastError = true)]
    private static extern int ioctl(int fd, nuint request, byte[] argument);

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr mmap(IntPtr address, nuint length, int protection, int flags, int fd, long offset);

    [DllImport("libc", SetLastError = true)]
    private static extern int munmap(IntPtr address, nuint length);
}
