namespace Trc.Agent.Runtime.Fake;

/// <summary>What happened to a fake VM, as <see cref="FakeHost.Events"/> records it.</summary>
public enum FakeVmEventKind
{
    /// <summary>A VM was started.</summary>
    Started,

    /// <summary>A start failed (the script said so, or the instance's VM still runs).</summary>
    StartFailed,

    /// <summary>A running VM was adopted by <see cref="FakeDriver.RecoverAsync"/>.</summary>
    Recovered,

    /// <summary>The agent sent a command (<see cref="FakeVmEvent.Detail"/> says which).</summary>
    CommandSent,

    /// <summary>The agent asked for a stop (<see cref="FakeVmEvent.Detail"/> holds the grace period).</summary>
    StopRequested,

    /// <summary>The agent killed the VMM.</summary>
    Killed,

    /// <summary>The VMM is gone (<see cref="FakeVmEvent.Detail"/> is its exit's detail).</summary>
    Exited,
}

/// <summary>One entry of the host's log.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="InstanceId">To which instance's VM.</param>
/// <param name="At">When, on the host's clock.</param>
/// <param name="Detail">The command, the grace period or the exit detail, when there is one.</param>
public sealed record FakeVmEvent(FakeVmEventKind Kind, string InstanceId, DateTimeOffset At, string? Detail = null);

/// <summary>
/// The fake machine the fake VMs run on: it outlives any agent (and any <see cref="FakeDriver"/>)
/// given it, so a test can drop an agent, build a new one on the same host and check that it
/// adopts what was left running. Records every start, stop, kill and exit. Thread-safe.
/// </summary>
public sealed class FakeHost
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, FakeMachine> _running = new(StringComparer.Ordinal);
    private readonly List<FakeVmEvent> _events = [];
    private int _nextPid = 10_000;

    /// <summary>A host on <paramref name="time"/> (the system clock by default).</summary>
    public FakeHost(TimeProvider? time = null)
    {
        Time = time ?? TimeProvider.System;
    }

    /// <summary>The host's clock: guests' delays, start delays and stop deadlines run on it.</summary>
    public TimeProvider Time { get; }

    /// <summary>Everything that happened so far, in order.</summary>
    public IReadOnlyList<FakeVmEvent> Events
    {
        get
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>The events of one instance.</summary>
    public IReadOnlyList<FakeVmEvent> EventsOf(string instanceId) => [.. Events.Where(e => e.InstanceId == instanceId)];

    /// <summary>The specs of every start that succeeded, in order.</summary>
    public IReadOnlyList<VmSpec> Starts
    {
        get
        {
            lock (_gate)
            {
                return [.. _starts];
            }
        }
    }

    private readonly List<VmSpec> _starts = [];

    /// <summary>The instances whose VMM runs now.</summary>
    public IReadOnlyList<string> Running
    {
        get
        {
            lock (_gate)
            {
                return [.. _running.Keys.Order(StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>Whether the instance's VMM runs now.</summary>
    public bool IsRunning(string instanceId)
    {
        lock (_gate)
        {
            return _running.ContainsKey(instanceId);
        }
    }

    /// <summary>
    /// The VMM dies from outside the agent (a crash, an operator's kill -9, the host's OOM killer):
    /// not <see cref="VmmExit.Killed"/>, as the agent did not do it. False when it was not running.
    /// </summary>
    public bool Crash(string instanceId, bool hostOom = false, string detail = "killed from outside the agent (fake)")
    {
        FakeMachine? machine;
        lock (_gate)
        {
            _running.TryGetValue(instanceId, out machine);
        }
        return machine is not null && machine.Terminate(new VmmExit(false, hostOom, detail));
    }

    internal FakeMachine Add(VmSpec spec, FakeVmScript script)
    {
        lock (_gate)
        {
            if (_running.ContainsKey(spec.InstanceId))
            {
                throw new VmStartException($"a VMM for instance {spec.InstanceId} still runs (fake)");
            }
            var machine = new FakeMachine(this, spec, script, _nextPid++);
            _running.Add(spec.InstanceId, machine);
            _starts.Add(spec);
            return machine;
        }
    }

    internal IReadOnlyList<FakeMachine> RunningUnder(string instancesDir)
    {
        var dir = Normalize(instancesDir);
        lock (_gate)
        {
            return [.. _running.Values.Where(m => Path.GetDirectoryName(Normalize(m.Spec.StateDir)) is { } parent && Normalize(parent) == dir)];
        }
    }

    internal void Gone(FakeMachine machine)
    {
        lock (_gate)
        {
            if (_running.TryGetValue(machine.Spec.InstanceId, out var current) && ReferenceEquals(current, machine))
            {
                _running.Remove(machine.Spec.InstanceId);
            }
        }
    }

    internal void Record(FakeVmEventKind kind, string instanceId, string? detail = null)
    {
        lock (_gate)
        {
            _events.Add(new FakeVmEvent(kind, instanceId, Time.GetUtcNow(), detail));
        }
    }

    private static string Normalize(string path) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
}
