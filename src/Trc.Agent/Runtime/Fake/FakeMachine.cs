using System.Threading.Channels;
using Trc.Agent.Guest;

namespace Trc.Agent.Runtime.Fake;

/// <summary>
/// One fake VMM on a <see cref="FakeHost"/>: its guest script runs as a task, its console is a
/// channel that exists only while an agent is attached (frames written in between are lost), and
/// its exit is decided once, by whichever comes first: the guest powering off, a kill, a crash.
/// </summary>
internal sealed class FakeMachine
{
    private readonly FakeHost _host;
    private readonly FakeVmScript _script;
    private readonly Channel<GuestCommand> _commands = Channel.CreateUnbounded<GuestCommand>();
    private readonly TaskCompletionSource<VmmExit> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _power = new();
    private readonly Lock _gate = new();
    private Channel<ConsoleFrame>? _console;

    public FakeMachine(FakeHost host, VmSpec spec, FakeVmScript script, int pid)
    {
        _host = host;
        _script = script;
        Spec = spec;
        Pid = pid;
    }

    public VmSpec Spec { get; }

    public int Pid { get; }

    public TimeProvider Time => _host.Time;

    public FakeHost Host => _host;

    public Task<VmmExit> Exit => _exit.Task;

    /// <summary>Runs the guest; call once, after the first console is attached.</summary>
    public void PowerOn()
    {
        var guest = new FakeGuestContext(this, _commands.Reader);
        _ = Task.Run(async () =>
        {
            try
            {
                await _script.Guest(guest, _power.Token).ConfigureAwait(false);
                Terminate(new VmmExit(false, false, "the guest powered off"));
            }
            catch (OperationCanceledException) when (_power.IsCancellationRequested)
            {
                // Terminated from outside: the exit is already decided.
            }
            catch (Exception e)
            {
                Terminate(new VmmExit(false, false, "the VMM crashed: " + e.Message));
            }
        });
    }

    /// <summary>Ends the VMM with this exit, unless it already ended; false then.</summary>
    public bool Terminate(VmmExit exit)
    {
        Channel<ConsoleFrame>? console;
        lock (_gate)
        {
            if (!_exit.TrySetResult(exit))
            {
                return false;
            }
            console = _console;
            _console = null;
        }
        _power.Cancel();
        _commands.Writer.TryComplete();
        console?.Writer.TryComplete();
        _host.Gone(this);
        _host.Record(FakeVmEventKind.Exited, Spec.InstanceId, exit.Detail);
        return true;
    }

    /// <summary>A new console attachment (the previous one, if any, ends); completed at once when the VMM is gone.</summary>
    public Channel<ConsoleFrame> Attach()
    {
        var console = Channel.CreateUnbounded<ConsoleFrame>();
        Channel<ConsoleFrame>? previous;
        lock (_gate)
        {
            if (_exit.Task.IsCompleted)
            {
                console.Writer.TryComplete();
                return console;
            }
            previous = _console;
            _console = console;
        }
        previous?.Writer.TryComplete();
        return console;
    }

    /// <summary>Ends an attachment if it is the current one: frames from now on are lost.</summary>
    public void Detach(Channel<ConsoleFrame> console)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_console, console))
            {
                _console = null;
            }
        }
        console.Writer.TryComplete();
    }

    public void Emit(ConsoleFrame frame)
    {
        lock (_gate)
        {
            _console?.Writer.TryWrite(frame);
        }
    }

    /// <summary>Queues a command for the guest; false when the VMM is gone.</summary>
    public bool Send(GuestCommand command) => !_exit.Task.IsCompleted && _commands.Writer.TryWrite(command);
}
