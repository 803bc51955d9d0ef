using System.Threading.Channels;
using Trc.Agent.Guest;

namespace Trc.Agent.Runtime.Fake;

/// <summary>
/// What a fake VM's guest does, from power-on: it writes console frames, reads the agent's
/// commands and returns when it powers off. <paramref name="ct"/> is cancelled when the VMM is
/// killed (by the agent, the host's OOM killer or a test); the guest then simply stops.
/// </summary>
/// <param name="guest">The guest's console, commands and clock.</param>
/// <param name="ct">Cancelled when the VMM dies under the guest.</param>
public delegate Task FakeGuest(FakeGuestContext guest, CancellationToken ct);

/// <summary>The fake guest's side of its VM: console out, commands in, the host's clock.</summary>
public sealed class FakeGuestContext
{
    private readonly FakeMachine _machine;

    internal FakeGuestContext(FakeMachine machine, ChannelReader<GuestCommand> commands)
    {
        _machine = machine;
        Commands = commands;
    }

    /// <summary>The spec the VM was started from.</summary>
    public VmSpec Spec => _machine.Spec;

    /// <summary>The host's clock (the <see cref="FakeHost"/>'s time provider).</summary>
    public TimeProvider Time => _machine.Time;

    /// <summary>The commands the agent sent, in order.</summary>
    public ChannelReader<GuestCommand> Commands { get; }

    /// <summary>Writes one frame to the console; lost when no agent is attached (as on a real console).</summary>
    public void Emit(ConsoleFrame frame) => _machine.Emit(frame);

    /// <summary>A kernel line (no frame marker).</summary>
    public void Kernel(string text) => Emit(new ConsoleFrame(ConsoleFrameKind.Kernel, text));

    /// <summary><c>RS I</c>: init's progress.</summary>
    public void Info(string text) => Emit(new ConsoleFrame(ConsoleFrameKind.Info, text));

    /// <summary><c>RS R pid</c>: the app started.</summary>
    public void Ready(int pid = 100) => Emit(new ConsoleFrame(ConsoleFrameKind.Ready, pid.ToString(System.Globalization.CultureInfo.InvariantCulture), Pid: pid));

    /// <summary><c>RS O</c>: one line of the app's stdout.</summary>
    public void Stdout(string line) => Emit(new ConsoleFrame(ConsoleFrameKind.Stdout, line));

    /// <summary><c>RS E</c>: one line of the app's stderr.</summary>
    public void Stderr(string line) => Emit(new ConsoleFrame(ConsoleFrameKind.Stderr, line));

    /// <summary><c>RS X code oom</c>: the app exited (the guest powers off next: return from the script).</summary>
    public void Exit(int code, bool oom = false) =>
        Emit(new ConsoleFrame(ConsoleFrameKind.Exit, $"{code} {(oom ? 1 : 0)}", ExitCode: code, Oom: oom));

    /// <summary><c>RS F reason</c>: init failed before the app ran (return from the script next).</summary>
    public void Fatal(string reason) => Emit(new ConsoleFrame(ConsoleFrameKind.Fatal, reason));

    /// <summary>The next command from the agent.</summary>
    public ValueTask<GuestCommand> ReceiveAsync(CancellationToken ct) => Commands.ReadAsync(ct);

    /// <summary>Waits on the host's clock.</summary>
    public Task DelayAsync(TimeSpan delay, CancellationToken ct) => Task.Delay(delay, Time, ct);

    /// <summary>The host's cgroup OOM killer kills the VMM now (<see cref="VmmExit.HostOom"/>); the script is cancelled.</summary>
    public void HostOomKill() => _machine.Terminate(new VmmExit(false, true, "killed by the host's OOM killer (fake)"));
}

/// <summary>
/// How one fake VM behaves: its guest, and whether its start fails or takes a while. The static
/// members are the behaviours agent tests need most.
/// </summary>
/// <param name="Guest">The guest's script.</param>
public sealed record FakeVmScript(FakeGuest Guest)
{
    /// <summary>When set, <see cref="FakeDriver.StartAsync"/> throws a <see cref="VmStartException"/> with this message.</summary>
    public string? StartFailure { get; init; }

    /// <summary>How long <see cref="FakeDriver.StartAsync"/> takes (on the host's clock).</summary>
    public TimeSpan StartDelay { get; init; }

    /// <summary>
    /// Like <c>init</c> with a well-behaved app: Ready, the given stdout lines, then runs until a
    /// stop (exit 143, as SIGTERM ends it) or a SIGTERM/SIGINT/SIGKILL signal (128 + signal); other
    /// signals are reported as Info frames.
    /// </summary>
    public static FakeVmScript RunUntilStopped(int pid = 100, params string[] stdout) => new(async (guest, ct) =>
    {
        guest.Ready(pid);
        foreach (var line in stdout)
        {
            guest.Stdout(line);
        }
        while (true)
        {
            switch (await guest.ReceiveAsync(ct).ConfigureAwait(false))
            {
                case GuestCommand.Stop:
                    guest.Exit(128 + 15);
                    return;
                case GuestCommand.Signal { Number: 2 or 9 or 15 } signal:
                    guest.Exit(128 + signal.Number);
                    return;
                case GuestCommand.Signal signal:
                    guest.Info($"signal {signal.Number} forwarded");
                    break;
            }
        }
    });

    /// <summary>Ready, the given stdout lines, then the app exits by itself after <paramref name="after"/>.</summary>
    public static FakeVmScript ExitAfter(TimeSpan after, int code, bool oom = false, params string[] stdout) => new(async (guest, ct) =>
    {
        guest.Ready();
        foreach (var line in stdout)
        {
            guest.Stdout(line);
        }
        await guest.DelayAsync(after, ct).ConfigureAwait(false);
        guest.Exit(code, oom);
    });

    /// <summary>Ready, then deaf to every command: only a kill ends it.</summary>
    public static FakeVmScript IgnoreStop() => new(async (guest, ct) =>
    {
        guest.Ready();
        while (true)
        {
            await guest.ReceiveAsync(ct).ConfigureAwait(false);
        }
    });

    /// <summary><c>init</c> fails before the app runs (bad config disk, exec failure) and powers off.</summary>
    public static FakeVmScript FatalAtBoot(string reason) => new((guest, _) =>
    {
        guest.Fatal(reason);
        return Task.CompletedTask;
    });

    /// <summary>The VMM does not start: <see cref="FakeDriver.StartAsync"/> throws.</summary>
    public static FakeVmScript FailToStart(string message) => new((_, _) => Task.CompletedTask) { StartFailure = message };
}
