using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Trc.Agent.Runtime.Firecracker;

/// <summary>
/// A Firecracker process, started by this agent (a child it reaps, so its exit status is known) or
/// adopted from an earlier one. It is named by pid and start time, and held by a pidfd where the
/// kernel has them (5.3+), so a recycled pid is never signalled or mistaken for it.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class VmmProcess : IDisposable
{
    private readonly bool _child;
    private readonly SafeFileHandle? _pidfd;
    private readonly Lock _gate = new();
    private string? _exitDetail;
    private bool _disposed;

    private VmmProcess(HostProcess process, bool child, SafeFileHandle? pidfd)
    {
        Process = process;
        _child = child;
        _pidfd = pidfd;
    }

    /// <summary>Pid and start time, as the recovery record keeps them.</summary>
    public HostProcess Process { get; }

    /// <summary>The pid.</summary>
    public int Pid => Process.Pid;

    /// <summary>A child this agent just spawned; null (and reaped) when it is already gone.</summary>
    public static VmmProcess? OfChild(int pid)
    {
        var pidfd = FirecrackerNative.TryOpenPidfd(pid);
        var found = HostProcess.Find(pid);
        if (found is null)
        {
            FirecrackerNative.TryReap(pid);
            pidfd?.Dispose();
            return null;
        }
        return new VmmProcess(found, child: true, pidfd);
    }

    /// <summary>
    /// The process a recovery record names, when that very process still runs; null otherwise.
    /// The start time is checked again after the pidfd is open, so the pidfd is known to be it.
    /// </summary>
    public static VmmProcess? Adopt(int pid, long startTicks)
    {
        var process = new HostProcess(pid, startTicks);
        if (!process.IsAlive)
        {
            return null;
        }
        var pidfd = FirecrackerNative.TryOpenPidfd(pid);
        if (!process.IsAlive)
        {
            pidfd?.Dispose();
            return null;
        }
        return new VmmProcess(process, child: false, pidfd);
    }

    /// <summary>Whether the process has exited; reaps it when it is our child. Cheap: one syscall or two.</summary>
    public bool HasExited(out string detail)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_exitDetail is null)
            {
                _exitDetail = Check();
            }
            detail = _exitDetail ?? "";
            return _exitDetail is not null;
        }
    }

    private string? Check()
    {
        if (_pidfd is not null)
        {
            // The pidfd turns readable at exit; only then is the pid reaped (when it is ours), so
            // a pid that someone else reaped and the kernel reused is never waited for.
            if (!FirecrackerNative.PidfdExited(_pidfd))
            {
                return null;
            }
            return FirecrackerNative.TryReap(Pid) switch
            {
                null => null, // not yet a zombie as waitpid sees it: the next check has it
                FirecrackerNative.NotAChild => Unknown,
                var status => FirecrackerNative.DescribeWaitStatus(status.Value),
            };
        }
        if (_child)
        {
            var status = FirecrackerNative.TryReap(Pid);
            if (status is null)
            {
                return null;
            }
            if (status != FirecrackerNative.NotAChild)
            {
                return FirecrackerNative.DescribeWaitStatus(status.Value);
            }
        }
        return Process.IsAlive ? null : Unknown;
    }

    private const string Unknown = "exited (status unknown: not a child of this agent)";

    /// <summary>SIGKILL; false when it was already gone.</summary>
    public bool Kill()
    {
        lock (_gate)
        {
            if (_exitDetail is not null || _disposed)
            {
                return false;
            }
            return _pidfd is not null
                ? FirecrackerNative.PidfdSignal(_pidfd, HostProcess.SigKill)
                : Process.Signal(HostProcess.SigKill);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _pidfd?.Dispose();
        }
    }
}
