using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Trc.Agent.Guest;

namespace Trc.Agent.Runtime.Fake;

/// <summary>An agent's handle on a <see cref="FakeMachine"/>; disposing it detaches the console and leaves the VM running.</summary>
internal sealed class FakeVm : IVm
{
    private readonly FakeMachine _machine;
    private readonly Channel<ConsoleFrame> _console;
    private readonly TimeSpan _stopMargin;
    private int _reading;

    public FakeVm(FakeMachine machine, TimeSpan stopMargin, bool recovered)
    {
        _machine = machine;
        _stopMargin = stopMargin;
        _console = machine.Attach();
        Recovered = recovered;
    }

    public VmSpec Spec => _machine.Spec;

    public int? VmmPid => _machine.Pid;

    public bool Recovered { get; }

    public async IAsyncEnumerable<ConsoleFrame> ReadConsoleAsync([EnumeratorCancellation] CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _reading, 1) != 0)
        {
            throw new InvalidOperationException("the console has one reader at a time");
        }
        try
        {
            await foreach (var frame in _console.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                yield return frame;
            }
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
        }
    }

    public Task SendAsync(GuestCommand command, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        _machine.Host.Record(FakeVmEventKind.CommandSent, Spec.InstanceId, Describe(command));
        if (!_machine.Send(command))
        {
            throw new InvalidOperationException($"the VMM of instance {Spec.InstanceId} is not running");
        }
        return Task.CompletedTask;
    }

    public Task<VmmExit> WaitAsync(CancellationToken ct) => _machine.Exit.WaitAsync(ct);

    public async Task<VmmExit> StopAsync(TimeSpan grace, CancellationToken ct)
    {
        if (_machine.Exit.IsCompleted)
        {
            return await _machine.Exit.ConfigureAwait(false);
        }
        _machine.Host.Record(FakeVmEventKind.StopRequested, Spec.InstanceId, grace.ToString("c", CultureInfo.InvariantCulture));
        _machine.Send(new GuestCommand.Stop(grace));
        try
        {
            return await _machine.Exit.WaitAsync(grace + _stopMargin, _machine.Time, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await KillAsync(ct).ConfigureAwait(false);
            return await _machine.Exit.ConfigureAwait(false);
        }
    }

    public async Task KillAsync(CancellationToken ct)
    {
        if (!_machine.Exit.IsCompleted)
        {
            _machine.Host.Record(FakeVmEventKind.Killed, Spec.InstanceId);
            _machine.Terminate(new VmmExit(true, false, "killed by the agent"));
        }
        await _machine.Exit.WaitAsync(ct).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        _machine.Detach(_console);
        return ValueTask.CompletedTask;
    }

    private static string Describe(GuestCommand command) => command switch
    {
        GuestCommand.Stop stop => "stop " + stop.Grace.ToString("c", CultureInfo.InvariantCulture),
        GuestCommand.Signal signal => "signal " + signal.Number.ToString(CultureInfo.InvariantCulture),
        _ => command.ToString() ?? "",
    };
}
