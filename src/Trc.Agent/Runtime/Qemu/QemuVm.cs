using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.Versioning;
using Trc.Agent.Guest;

namespace Trc.Agent.Runtime.Qemu;

/// <summary>One QEMU microVM: its VMM process, its console socket, its cgroup.</summary>
[SupportedOSPlatform("linux")]
internal sealed class QemuVm : IVm
{
    private readonly HostProcess _process;
    private readonly Socket _console;
    private readonly Cgroups? _cgroups;
    private readonly TimeSpan _stopMargin;
    private readonly SemaphoreSlim _send = new(1, 1);
    private volatile bool _killed;
    private int _reading;

    private QemuVm(VmSpec spec, HostProcess process, Socket console, Cgroups? cgroups, TimeSpan stopMargin, bool recovered)
    {
        Spec = spec;
        _process = process;
        _console = console;
        _cgroups = cgroups;
        _stopMargin = stopMargin;
        Recovered = recovered;
    }

    public static async Task<QemuVm> AttachAsync(VmSpec spec, HostProcess process, Cgroups? cgroups, TimeSpan stopMargin, bool recovered, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(QemuCommandLine.ConsoleSocket(spec.StateDir)), ct).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new QemuVm(spec, process, socket, cgroups, stopMargin, recovered);
    }

    public VmSpec Spec { get; }

    public int? VmmPid => _process.Pid;

    public bool Recovered { get; }

    public async IAsyncEnumerable<ConsoleFrame> ReadConsoleAsync([EnumeratorCancellation] CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _reading, 1) != 0)
        {
            throw new InvalidOperationException("the console has one reader");
        }
        var decoder = new ConsoleDecoder();
        var buffer = new byte[16384];
        while (true)
        {
            int read;
            try
            {
                read = await _console.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                read = 0;
            }
            if (read == 0)
            {
                foreach (var frame in decoder.Flush())
                {
                    yield return frame;
                }
                yield break;
            }
            foreach (var frame in decoder.Decode(buffer.AsSpan(0, read)))
            {
                yield return frame;
            }
        }
    }

    public async Task SendAsync(GuestCommand command, CancellationToken ct)
    {
        await _send.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await _console.SendAsync(command.Encode(), SocketFlags.None, ct).ConfigureAwait(false);
        }
        finally
        {
            _send.Release();
        }
    }

    public async Task<VmmExit> WaitAsync(CancellationToken ct)
    {
        await _process.WaitForExitAsync(ct).ConfigureAwait(false);
        return Exit();
    }

    public async Task<VmmExit> StopAsync(TimeSpan grace, CancellationToken ct)
    {
        try
        {
            await SendAsync(new GuestCommand.Stop(grace), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The console is gone: the VMM is exiting or must be killed.
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(grace + _stopMargin);
        try
        {
            await _process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            await KillAsync(ct).ConfigureAwait(false);
        }
        return Exit();
    }

    public async Task KillAsync(CancellationToken ct)
    {
        _killed = true;
        _process.Signal(HostProcess.SigKill);
        await _process.WaitForExitAsync(ct).ConfigureAwait(false);
    }

    private VmmExit Exit()
    {
        var oom = Spec.Cgroup is { } cg && _cgroups is not null && _cgroups.OomKills(cg.Name) > 0;
        return new VmmExit(_killed, oom, _killed ? "killed by the agent" : oom ? "killed by the host's OOM killer (cgroup limit)" : "exited");
    }

    public ValueTask DisposeAsync()
    {
        _console.Dispose();
        _send.Dispose();
        return ValueTask.CompletedTask;
    }
}
