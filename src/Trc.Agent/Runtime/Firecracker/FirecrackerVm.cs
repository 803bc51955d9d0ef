using System.Runtime.CompilerServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;
using Trc.Agent.Guest;

namespace Trc.Agent.Runtime.Firecracker;

/// <summary>
/// One Firecracker microVM: its VMM process and its serial console, which is the VMM's stdin and
/// stdout connected to two FIFOs in the state directory. The VMM holds both FIFOs open read-write,
/// so it never sees end-of-file or a broken pipe while no agent is attached, and its stdout is
/// non-blocking with a large pipe buffer: a guest is never stalled by an absent agent, what it
/// writes meanwhile beyond the buffer is lost (as docs/guest.md allows).
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class FirecrackerVm : IVm
{
    private readonly VmmProcess _process;
    private readonly string _consoleIn;
    private readonly string? _jailDirectory;
    private readonly Cgroups? _cgroups;
    private readonly FirecrackerOptions _options;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _disposed = new();
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly ConsoleDecoder _decoder = new();
    private readonly SafeFileHandle _consoleReader;
    private readonly Task<VmmExit> _exit;
    private volatile bool _killed;
    private volatile bool _endedAfterPowerOff;
    private int _reading;
    private int _watchdog;

    public FirecrackerVm(VmSpec spec, VmmProcess process, string consoleIn, string consoleOut, string? jailDirectory,
        Cgroups? cgroups, FirecrackerOptions options, TimeProvider time, bool recovered)
    {
        Spec = spec;
        _process = process;
        _consoleIn = consoleIn;
        _jailDirectory = jailDirectory;
        _cgroups = cgroups;
        _options = options;
        _time = time;
        Recovered = recovered;
        // The read end stays open for this object's life: a FIFO's buffer is dropped once nobody
        // has it open, so frames the guest wrote last (its exit) would be lost if the VMM exited
        // while no ReadConsoleAsync was running. O_NONBLOCK: opening never waits for a writer and
        // reads return EAGAIN rather than park a thread. End of file means no writer is left: the
        // VMM, which holds the only write end, is gone.
        _consoleReader = FirecrackerNative.Open(consoleOut, FirecrackerNative.ORdOnly | FirecrackerNative.ONonBlock);
        _exit = MonitorAsync(_disposed.Token);
    }

    public VmSpec Spec { get; }

    public int? VmmPid => _process.Pid;

    public bool Recovered { get; }

    public async IAsyncEnumerable<ConsoleFrame> ReadConsoleAsync([EnumeratorCancellation] CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _reading, 1) != 0)
        {
            throw new InvalidOperationException("the console has one reader at a time");
        }
        try
        {
            var buffer = new byte[64 * 1024];
            var idle = TimeSpan.FromMilliseconds(5);
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var n = FirecrackerNative.ReadNonBlocking(_consoleReader, buffer);
                if (n > 0)
                {
                    idle = TimeSpan.FromMilliseconds(5);
                    foreach (var frame in _decoder.Decode(buffer.AsSpan(0, n)))
                    {
                        WatchForPowerOff(frame);
                        yield return frame;
                    }
                    continue;
                }
                if (n == 0 || (n < 0 && _exit.IsCompleted))
                {
                    foreach (var frame in _decoder.Flush())
                    {
                        yield return frame;
                    }
                    yield break;
                }
                // Nothing yet: back off up to the poll interval (no thread is parked on the FIFO).
                await Task.Delay(idle, _time, ct).ConfigureAwait(false);
                idle = TimeSpan.FromTicks(Math.Min(_options.PollInterval.Ticks, idle.Ticks * 2));
            }
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
        }
    }

    // After RS X or RS F the guest powers off. On x86 Firecracker cannot see a power-off (no ACPI
    // power management); the guest's panic=-1 reboot normally ends the VMM, and this ends it when
    // the guest halted instead.
    private void WatchForPowerOff(ConsoleFrame frame)
    {
        if (frame.Kind is not (ConsoleFrameKind.Exit or ConsoleFrameKind.Fatal) || Interlocked.Exchange(ref _watchdog, 1) != 0)
        {
            return;
        }
        var disposed = _disposed.Token;
        _ = Task.Run(async () =>
        {
            try
            {
                await _exit.WaitAsync(_options.PowerOffTimeout, _time, disposed).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                _endedAfterPowerOff = true;
                _process.Kill();
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                // This object was disposed: the VMM is the next agent's to watch.
            }
        });
    }

    public async Task SendAsync(GuestCommand command, CancellationToken ct)
    {
        var bytes = command.Encode();
        await _send.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // O_NONBLOCK on a FIFO's write end fails with ENXIO when nobody has it open for
            // reading: the VMM (which holds it read-write) is gone.
            using var fifo = FirecrackerNative.TryOpen(_consoleIn, FirecrackerNative.OWrOnly | FirecrackerNative.ONonBlock, 0, out var errno)
                ?? throw new InvalidOperationException(errno == FirecrackerNative.ENxio
                    ? $"the VMM of instance {Spec.InstanceId} is not running"
                    : $"cannot open the console of instance {Spec.InstanceId}: {FirecrackerNative.Message(errno)}");
            var written = 0;
            var deadline = _time.GetTimestamp() + (long)(_time.TimestampFrequency * 2);
            while (written < bytes.Length)
            {
                var n = FirecrackerNative.WriteNonBlocking(fifo, bytes.AsSpan(written));
                if (n > 0)
                {
                    written += n;
                    continue;
                }
                // The pipe is full: the VMM is not draining its stdin (a wedged VMM).
                if (_time.GetTimestamp() > deadline)
                {
                    throw new IOException($"the console of instance {Spec.InstanceId} takes no input");
                }
                await Task.Delay(TimeSpan.FromMilliseconds(10), _time, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            _send.Release();
        }
    }

    public Task<VmmExit> WaitAsync(CancellationToken ct) => _exit.WaitAsync(ct);

    public async Task<VmmExit> StopAsync(TimeSpan grace, CancellationToken ct)
    {
        if (!_exit.IsCompleted)
        {
            try
            {
                await SendAsync(new GuestCommand.Stop(grace), ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                // The VMM is exiting or wedged: the deadline below decides.
            }
            try
            {
                return await _exit.WaitAsync(grace + _options.StopMargin, _time, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                await KillAsync(ct).ConfigureAwait(false);
            }
        }
        return await _exit.WaitAsync(ct).ConfigureAwait(false);
    }

    public async Task KillAsync(CancellationToken ct)
    {
        if (!_exit.IsCompleted)
        {
            _killed = true;
            _process.Kill();
        }
        await _exit.WaitAsync(ct).ConfigureAwait(false);
    }

    private async Task<VmmExit> MonitorAsync(CancellationToken ct)
    {
        await Task.Yield();
        string detail;
        while (!_process.HasExited(out detail))
        {
            await Task.Delay(_options.PollInterval, _time, ct).ConfigureAwait(false);
        }
        var oom = Spec.Cgroup is { } cg && _cgroups is not null && _cgroups.OomKills(cg.Name) > 0;
        CleanUp();
        if (_killed)
        {
            return new VmmExit(true, oom, "killed by the agent");
        }
        if (oom)
        {
            return new VmmExit(false, true, "killed by the host's OOM killer (cgroup memory limit): " + detail);
        }
        return new VmmExit(false, false, _endedAfterPowerOff
            ? "the guest halted after its app ended; the agent ended the VMM"
            : detail);
    }

    // The jail (hard links, device nodes) and the cgroup die with the VMM; the state directory is
    // the caller's.
    private void CleanUp()
    {
        if (_jailDirectory is not null)
        {
            FirecrackerJail.Remove(_jailDirectory);
        }
        if (Spec.Cgroup is { } cg)
        {
            _cgroups?.Remove(cg.Name);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The VMM outlives this object (and the agent): only watching it stops here.
        await _disposed.CancelAsync().ConfigureAwait(false);
        try
        {
            await _exit.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _process.Dispose();
        _consoleReader.Dispose();
        _disposed.Dispose();
        _send.Dispose();
    }
}
