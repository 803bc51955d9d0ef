using System.Collections.Concurrent;

namespace Trc.Agent.Runtime.Fake;

/// <summary>
/// An in-process driver for tests of the agent's logic: each VM is a scripted guest
/// (<see cref="FakeVmScript"/>) on a <see cref="FakeHost"/>, with the real driver's semantics —
/// console frames, commands, stop with a grace period then a kill, waits, and recovery of what an
/// earlier agent left running on the same host. Thread-safe.
/// </summary>
public sealed class FakeDriver : IVmDriver
{
    private readonly ConcurrentDictionary<string, FakeVmScript> _scripts = new(StringComparer.Ordinal);
    private volatile FakeVmScript _defaultScript = FakeVmScript.RunUntilStopped();
    private volatile DriverFingerprint _fingerprint = new("fake", true, "fake", "none", null);

    /// <summary>A driver on <paramref name="host"/>; a new host of its own when null.</summary>
    public FakeDriver(FakeHost? host = null)
    {
        Host = host ?? new FakeHost();
    }

    /// <summary>The host its VMs run on (share it between agents to test adoption).</summary>
    public FakeHost Host { get; }

    /// <summary>The driver's name: <c>fake</c>.</summary>
    public string Name => "fake";

    /// <summary>What <see cref="FingerprintAsync"/> says: available, acceleration <c>none</c>, unless a test says otherwise.</summary>
    public DriverFingerprint Fingerprint
    {
        get => _fingerprint;
        set => _fingerprint = value;
    }

    /// <summary>The script of instances without their own (<see cref="FakeVmScript.RunUntilStopped"/> by default).</summary>
    public FakeVmScript DefaultScript
    {
        get => _defaultScript;
        set => _defaultScript = value;
    }

    /// <summary>Added to a stop's grace period before the VMM is killed, as with the real drivers.</summary>
    public TimeSpan StopMargin { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Scripts the next starts of one instance.</summary>
    public void Script(string instanceId, FakeVmScript script) => _scripts[instanceId] = script;

    /// <inheritdoc />
    public Task<DriverFingerprint> FingerprintAsync(CancellationToken ct) => Task.FromResult(_fingerprint);

    /// <inheritdoc />
    public async Task<IVm> StartAsync(VmSpec spec, CancellationToken ct)
    {
        var script = _scripts.TryGetValue(spec.InstanceId, out var own) ? own : _defaultScript;
        if (script.StartDelay > TimeSpan.Zero)
        {
            await Task.Delay(script.StartDelay, Host.Time, ct).ConfigureAwait(false);
        }
        if (script.StartFailure is { } failure)
        {
            Host.Record(FakeVmEventKind.StartFailed, spec.InstanceId, failure);
            throw new VmStartException(failure);
        }
        FakeMachine machine;
        try
        {
            machine = Host.Add(spec, script);
        }
        catch (VmStartException e)
        {
            Host.Record(FakeVmEventKind.StartFailed, spec.InstanceId, e.Message);
            throw;
        }
        Host.Record(FakeVmEventKind.Started, spec.InstanceId);
        // Attached before power-on: nothing the guest writes first is lost.
        var vm = new FakeVm(machine, StopMargin, recovered: false);
        machine.PowerOn();
        return vm;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<IVm>> RecoverAsync(string instancesDir, CancellationToken ct)
    {
        var found = new List<IVm>();
        foreach (var machine in Host.RunningUnder(instancesDir))
        {
            Host.Record(FakeVmEventKind.Recovered, machine.Spec.InstanceId);
            found.Add(new FakeVm(machine, StopMargin, recovered: true));
        }
        return Task.FromResult<IReadOnlyList<IVm>>(found);
    }
}
