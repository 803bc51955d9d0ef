using Trc.Agent.Runtime;
using Trc.Client;
using Trc.Client.Events;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.Agent.Host;

/// <summary>
/// The node agent's main loop: registers the node, adopts VMs an earlier agent left running,
/// heartbeats, follows the control plane's desired state for this node (a snapshot, then the
/// change stream filtered to the node; the snapshot again on every change), and converges: a
/// supervisor per wanted instance, a stop for every other.
/// </summary>
public sealed class NodeAgent
{
    private readonly AgentOptions _options;
    private readonly TrcClient _client;
    private readonly IVmDriver _driver;
    private readonly Func<NodeView, IInstanceLauncher> _launcherFactory;
    private readonly Action<string> _log;
    private readonly Dictionary<Guid, InstanceSupervisor> _supervisors = [];
    private readonly Dictionary<Guid, IVm> _adoptable = [];
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<NodeView> _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _leaveRunning = new();
    private IInstanceLauncher? _launcher;
    private StateReporter? _states;
    private LogShipper? _logs;

    /// <summary>An agent; <paramref name="launcherFactory"/> makes the launcher once the node's prefix is known.</summary>
    public NodeAgent(AgentOptions options, TrcClient client, IVmDriver driver, Func<NodeView, IInstanceLauncher> launcherFactory, Action<string> log)
    {
        _options = options;
        _client = client;
        _driver = driver;
        _launcherFactory = launcherFactory;
        _log = log;
    }

    /// <summary>The node as registered (completes once registration succeeded).</summary>
    public Task<NodeView> Registered => _registered.Task;

    /// <summary>The instances supervised now, by id.</summary>
    public IReadOnlyCollection<Guid> Instances
    {
        get
        {
            lock (_gate)
            {
                return [.. _supervisors.Keys];
            }
        }
    }

    /// <summary>Whether, at shutdown, every instance is stopped (as <c>trc dev</c> does) instead of left running for the next agent.</summary>
    public bool StopInstancesOnShutdown { get; init; }

    /// <summary>Runs until cancelled.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var fingerprint = await _driver.FingerprintAsync(ct).ConfigureAwait(false);
        if (!fingerprint.Available)
        {
            throw new InvalidOperationException($"the {_driver.Name} driver cannot run on this host: {fingerprint.Reason}");
        }
        _log($"driver {fingerprint.Driver} ({fingerprint.Version}), acceleration {fingerprint.Acceleration}{(fingerprint.Reason is { } why ? $": {why}" : "")}");
        var node = await RegisterAsync(fingerprint, ct).ConfigureAwait(false);
        _log($"registered as node {node.Name} ({node.Id}), instances in {node.Prefix}");
        _launcher = _launcherFactory(node);
        _states = new StateReporter(_client, node.Id, _log);
        _logs = new LogShipper(_client, node.Id, _options, _log);
        foreach (var vm in await _driver.RecoverAsync(_launcher.InstancesDir, ct).ConfigureAwait(false))
        {
            if (Guid.TryParse(vm.Spec.InstanceId, out var id))
            {
                _adoptable[id] = vm;
            }
        }
        if (_adoptable.Count > 0)
        {
            _log($"found {_adoptable.Count} VM(s) still running from before; adopting those still wanted");
        }
        _registered.TrySetResult(node);

        // Not linked to ct: state reports, logs and heartbeats go on while the shutdown stops the
        // instances (trc dev), so the control plane hears that each stopped.
        using var background = new CancellationTokenSource();
        var shipping = _logs.RunAsync(background.Token);
        var reporting = _states.RunAsync(background.Token);
        var heartbeats = HeartbeatLoopAsync(node.Id, background.Token);
        try
        {
            await FollowAsync(node.Id, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            try
            {
                await ShutdownAsync().ConfigureAwait(false);
            }
            finally
            {
                await background.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll(Quiet(shipping), Quiet(reporting), Quiet(heartbeats)).ConfigureAwait(false);
            }
        }
    }

    private static async Task Quiet(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task<NodeView> RegisterAsync(DriverFingerprint fingerprint, CancellationToken ct)
    {
        var request = new RegisterNodeRequest(_options.NodeName, OfferedMemory(), Environment.ProcessorCount, fingerprint.Driver, fingerprint.Acceleration, _options.Region, AgentVersion);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await _client.RegisterNodeAsync(request, ct: ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TrcConnectionException or HttpRequestException || e is TrcApiException { IsTransient: true })
            {
                var delay = TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, Math.Min(attempt, 5)) / 2));
                _log($"cannot register with {_client.BaseAddress} ({e.Message}); retrying in {delay.TotalSeconds:0.#} s");
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The agent's version string.</summary>
    public static string AgentVersion => typeof(NodeAgent).Assembly.GetName().Version?.ToString() ?? "0";

    private long OfferedMemory()
    {
        if (_options.MemoryBytes is { } set)
        {
            return set;
        }
        var total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return Math.Max(0, total - _options.ReservedMemoryBytes);
    }

    private async Task HeartbeatLoopAsync(Guid node, CancellationToken ct)
    {
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _client.HeartbeatAsync(node, new HeartbeatRequest(OfferedMemory(), Environment.ProcessorCount, HeartbeatInstances()), ct).ConfigureAwait(false);
                if (failures > 0)
                {
                    _log("heartbeats reach the control plane again");
                }
                failures = 0;
            }
            catch (Exception e) when (e is TrcException or HttpRequestException && !ct.IsCancellationRequested)
            {
                if (failures++ == 0)
                {
                    _log($"heartbeat failed: {e.Message}");
                }
            }
            await Task.Delay(_options.HeartbeatInterval, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Every instance this node has a VM or a supervisor for: the last reported states, and the VMs
    /// found at start not yet adopted or stopped (the control plane takes an instance asked to
    /// stop that a heartbeat leaves out as stopped).
    /// </summary>
    private List<InstanceHeartbeat> HeartbeatInstances()
    {
        var known = _states!.Snapshot();
        var ids = known.Select(i => i.Id).ToHashSet();
        lock (_gate)
        {
            return [.. known, .. _adoptable.Keys.Where(id => !ids.Contains(id)).Select(id => new InstanceHeartbeat(id, InstanceStates.Running))];
        }
    }

    private async Task FollowAsync(Guid node, CancellationToken ct)
    {
        long after = 0;
        var failures = 0;
        var first = true;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var snapshot = await _client.GetNodeInstancesAsync(node, after, ct).ConfigureAwait(false);
                await ReconcileAsync(snapshot.Instances, first, ct).ConfigureAwait(false);
                first = false;
                failures = 0;
                after = snapshot.Position;
                using var resync = CancellationTokenSource.CreateLinkedTokenSource(ct);
                resync.CancelAfter(_options.ResyncInterval);
                try
                {
                    var query = new EventQuery(After: snapshot.Position, Types: EventNames.NodeDesiredState, Node: node.ToString("D"));
                    await foreach (var change in _client.StreamEventsAsync(query, ct: resync.Token).ConfigureAwait(false))
                    {
                        after = change.Id;
                        break;
                    }
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    // Quiet for a resync interval: take the snapshot again anyway.
                }
            }
            catch (Exception e) when (e is TrcException or HttpRequestException && !ct.IsCancellationRequested)
            {
                failures++;
                var delay = TimeSpan.FromSeconds(Math.Min(15, 0.5 * Math.Pow(2, Math.Min(failures, 5))));
                _log($"cannot read this node's instances ({e.Message}); retrying in {delay.TotalSeconds:0.#} s");
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task ReconcileAsync(IReadOnlyList<InstanceSpecView> wanted, bool first, CancellationToken ct)
    {
        var want = wanted.ToDictionary(i => i.Id);
        lock (_gate)
        {
            foreach (var (id, instance) in want)
            {
                if (_supervisors.ContainsKey(id))
                {
                    continue;
                }
                _adoptable.Remove(id, out var adopted);
                var supervisor = new InstanceSupervisor(instance, _driver, _launcher!, _states!, _logs!, _options, _log);
                _supervisors[id] = supervisor;
                _log(adopted is null
                    ? $"starting instance {id} ({instance.App}/{instance.Env} {instance.Process}, release {instance.Release})"
                    : $"adopted running instance {id} ({instance.App}/{instance.Env} {instance.Process})");
                supervisor.Start(adopted, _leaveRunning.Token);
                var captured = id;
                _ = supervisor.Completion.ContinueWith(_ => OnFinished(captured, supervisor), TaskScheduler.Default);
            }
            foreach (var (id, supervisor) in _supervisors)
            {
                if (!want.ContainsKey(id) && !supervisor.StopRequested)
                {
                    _log($"stopping instance {id}: no longer wanted on this node");
                    supervisor.RequestStop();
                }
            }
        }
        if (first)
        {
            // VMs from before that are no longer wanted: stop them, then clear every leftover directory.
            List<KeyValuePair<Guid, IVm>> leftovers;
            lock (_gate)
            {
                leftovers = [.. _adoptable];
            }
            foreach (var (id, vm) in leftovers)
            {
                _log($"stopping VM of instance {id} left from before: no longer wanted");
                await vm.StopAsync(_options.StopGrace, ct).ConfigureAwait(false);
                await _launcher!.CleanupAsync(vm.Spec, ct).ConfigureAwait(false);
                await vm.DisposeAsync().ConfigureAwait(false);
                // Said, so the instance leaves the env's list (it moved away while this node was gone).
                _states?.Report(id, new InstanceStateRequest(InstanceStates.Stopped, Reason: "stopped when its node came back: no longer wanted here"));
            }
            lock (_gate)
            {
                _adoptable.Clear();
            }
            if (Directory.Exists(_launcher!.InstancesDir))
            {
                foreach (var dir in Directory.EnumerateDirectories(_launcher.InstancesDir))
                {
                    if (Guid.TryParse(Path.GetFileName(dir), out var id) && !want.ContainsKey(id))
                    {
                        _launcher.Remove(id);
                    }
                }
            }
        }
    }

    private void OnFinished(Guid id, InstanceSupervisor supervisor)
    {
        lock (_gate)
        {
            // A stopped instance never runs again (instance ids are not reused): forget it.
            if (_supervisors.TryGetValue(id, out var current) && current == supervisor && supervisor.Stopped)
            {
                _supervisors.Remove(id);
                _states!.Forget(id);
                try
                {
                    _launcher!.Remove(id);
                }
                catch (IOException e)
                {
                    _log($"cannot remove instance {id}'s directory: {e.Message}");
                }
            }
        }
    }

    private async Task ShutdownAsync()
    {
        List<InstanceSupervisor> all;
        lock (_gate)
        {
            all = [.. _supervisors.Values];
        }
        if (StopInstancesOnShutdown)
        {
            foreach (var s in all)
            {
                s.RequestStop();
            }
        }
        else
        {
            await _leaveRunning.CancelAsync().ConfigureAwait(false);
        }
        await Task.WhenAll(all.Select(s => s.Completion)).ConfigureAwait(false);
        if (_states is not null)
        {
            // Give the last state reports a moment to leave.
            for (var i = 0; i < 30 && !_states.Idle; i++)
            {
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }
}
