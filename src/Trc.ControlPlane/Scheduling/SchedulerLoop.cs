using Microsoft.Extensions.Logging;
using Trc.ControlPlane.Auth;
using Trc.ControlPlane.Catalog;
using Trc.ControlPlane.Commands;
using Trc.ControlPlane.Logs;
using Trc.ControlPlane.Nodes;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Core.Manifest;
using Trc.Core.Scheduling;
using Trc.EventStore;
using Trc.EventStore.Projections;

namespace Trc.ControlPlane.Scheduling;

/// <summary>The scheduler's settings.</summary>
/// <param name="Interval">How often a pass runs when nothing woke the loop.</param>
/// <param name="Timings">Rollout health timeout and drain.</param>
/// <param name="CpuOvercommit">vCPU a node may promise per core.</param>
/// <param name="MemoryBufferPercent">Share of a node's offered memory kept free (0-50).</param>
public sealed record SchedulerOptions(TimeSpan Interval, RolloutTimings Timings, double CpuOvercommit, int MemoryBufferPercent)
{
    /// <summary>Memory the scheduler places instances into on a node offering <paramref name="offered"/>.</summary>
    public long Allocatable(long offered) => offered - offered / 100 * MemoryBufferPercent;
}

/// <summary>
/// The control plane's scheduler (DESIGN section 7), run by one leader among the server replicas
/// (a lease of the store: a Postgres advisory lock, or the one SQLite process). A pass:
/// <list type="number">
/// <item>Node liveness: a node whose lease (renewed by heartbeats through any replica) ran out is
/// declared <c>lost</c>; a lost node heard from again is <c>recovered</c>.</item>
/// <item>Every env is planned by <see cref="Rollouts"/> from its aggregate (kept in memory and
/// caught up each pass) and its instances' last states: rollouts advance, fail or complete, and
/// instances on gone or draining nodes are replaced.</item>
/// <item>All instances wanted across the fleet are placed in one call of <see cref="Placement"/>,
/// so capacity is shared fairly and consistently.</item>
/// <item>Each env's decisions are appended at the version they were planned from; a lost race is
/// planned again next pass.</item>
/// </list>
/// A pass runs when something that matters is logged (deploys, instance states, node changes,
/// scaling), when a node becomes ready, right after a pass that changed something, and otherwise
/// every interval (which also moves time-based steps: drains and health timeouts).
/// </summary>
public sealed partial class SchedulerLoop(IEventStore store, IProjectionBackend leases, CatalogReader catalog, CommandRunner runner, NodeLiveness liveness, LogStore logs, SchedulerOptions options, TimeProvider time, ILogger logger)
    : IAsyncDisposable
{
    /// <summary>The name of the leader lease.</summary>
    public const string LeaseName = "leader:scheduler";

    private static readonly string[] Triggers =
    [
        EventNames.ReleaseDeployed, EventNames.NodeRegistered, EventNames.NodeUpdated, EventNames.InstanceStateChanged, EventNames.EnvScaled,
        EventNames.NodeAdminStateSet, EventNames.NodeRecovered, EventNames.TrafficSwitched,
    ];

    private static readonly Principal Scheduler = new(DomainIds.V5(DomainIds.Org("trc-platform"), "scheduler"), "scheduler", Roles.Admin, null, null);

    private readonly Dictionary<Guid, EnvState> _envs = [];
    private readonly Dictionary<(Guid Env, string Process), string> _waiting = [];
    private BackgroundLoop? _loop;
    private DateTimeOffset _leadingSince;
    private long _passes;
    private volatile bool _leading;

    /// <summary>Passes completed (for tests and diagnostics).</summary>
    public long Passes => Interlocked.Read(ref _passes);

    /// <summary>Whether this replica leads the scheduler now.</summary>
    public bool IsLeading => _leading;

    /// <summary>Starts the loop.</summary>
    public void Start() => _loop = new BackgroundLoop(RunAsync);

    private async Task RunAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await using var lease = await leases.TryAcquireLeaseAsync(LeaseName, stop).ConfigureAwait(false);
                if (lease is null)
                {
                    await Task.Delay(options.Interval, time, stop).ConfigureAwait(false);
                    continue;
                }
                using var leading = CancellationTokenSource.CreateLinkedTokenSource(stop, lease.Lost);
                _leading = true;
                _leadingSince = time.GetUtcNow();
                _envs.Clear();
                LogLeading();
                try
                {
                    await LeadAsync(leading.Token).ConfigureAwait(false);
                }
                finally
                {
                    _leading = false;
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                LogLeaseLost();
            }
            catch (Exception e)
            {
                LogPassFailed(e, options.Interval);
                try
                {
                    await Task.Delay(options.Interval, time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task LeadAsync(CancellationToken stop)
    {
        var cursor = await store.GetHeadAsync(stop).ConfigureAwait(false);
        var backoff = TimeSpan.FromMilliseconds(200);
        var again = true;
        while (true)
        {
            stop.ThrowIfCancellationRequested();
            try
            {
                if (!again)
                {
                    cursor = await WaitForTriggerAsync(cursor, stop).ConfigureAwait(false);
                }
                again = await PassAsync(stop).ConfigureAwait(false);
                Interlocked.Increment(ref _passes);
                backoff = TimeSpan.FromMilliseconds(200);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                LogPassFailed(e, backoff);
                await Task.Delay(backoff, time, stop).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
                again = true;
            }
        }
    }

    /// <summary>
    /// Waits for a trigger event after <paramref name="cursor"/>, a node becoming ready, or the
    /// interval; returns the new cursor. A trigger event is waited for in the catalog too, so the
    /// pass that follows sees it.
    /// </summary>
    private async Task<long> WaitForTriggerAsync(long cursor, CancellationToken stop)
    {
        var deadline = time.GetUtcNow() + options.Interval;
        while (true)
        {
            var remaining = deadline - time.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
            {
                return cursor;
            }
            using var wake = CancellationTokenSource.CreateLinkedTokenSource(stop);
            var ready = liveness.BecameReady.WaitAsync(remaining, time, wake.Token);
            var events = store.WaitForEventsAsync(cursor, remaining, wake.Token);
            var first = await Task.WhenAny(ready, events).ConfigureAwait(false);
            await wake.CancelAsync().ConfigureAwait(false);
            stop.ThrowIfCancellationRequested();
            if (first == ready && ready.IsCompletedSuccessfully && ready.Result)
            {
                return cursor;
            }
            var page = await store.ReadAllAsync(cursor, 1000, new EventFilter(Triggers), stop).ConfigureAwait(false);
            cursor = page.NextCursor;
            if (page.Events.Count > 0)
            {
                try
                {
                    await runner.CatalogPositionAsync(page.Events[^1].EventId, stop).ConfigureAwait(false);
                }
                catch (NotReadyException)
                {
                    // The pass reads what the catalog has; the interval brings the rest.
                }
                return cursor;
            }
        }
    }

    /// <summary>One pass over the fleet; true when it changed something (so another pass follows at once).</summary>
    internal async Task<bool> PassAsync(CancellationToken ct)
    {
        var changed = await LivenessAsync(ct).ConfigureAwait(false);
        var nodes = await catalog.NodesAsync(ct).ConfigureAwait(false);
        var seen = await liveness.LastSeenAsync(ct).ConfigureAwait(false);
        var use = nodes.ToDictionary(n => n.Id, n => Use(n, seen.TryGetValue(n.Id, out var at) ? at : null));
        var instances = await catalog.SchedulingInstancesAsync(ct).ConfigureAwait(false);
        var byEnv = instances.ToLookup(i => i.EnvId);
        var now = time.GetUtcNow();

        // Plan every env from its aggregate.
        var plans = new List<(EnvState Env, RolloutPlan Plan)>();
        var envs = await catalog.SchedulingEnvsAsync(ct).ConfigureAwait(false);
        foreach (var key in _envs.Keys.Except(envs.Select(e => e.Env)).ToList())
        {
            _envs.Remove(key);
        }
        foreach (var (envId, times) in envs)
        {
            var env = await EnvAsync(envId, ct).ConfigureAwait(false);
            var known = byEnv[envId].ToDictionary(i => i.Status.Id, i => i.Status);
            // The aggregate says which instances exist and were not asked to stop; the catalog (which
            // may lag) says how they are. One it has not seen yet is still "scheduled".
            var live = env.Instances.Values.Where(i => !i.StopRequested)
                .Select(i => known.TryGetValue(i.Id, out var s) ? s with { Deployment = i.Deployment }
                    : new InstanceStatus(i.Id, i.NodeId, i.Process, i.Release, i.Deployment, InstanceStates.Scheduled, 0))
                .ToList();
            var current = times is not null && times.Deployment == env.Deployment ? times : null;
            var plan = Rollouts.Plan(new RolloutInput(env, live, use, now, current?.StartedAt, current?.SwitchedAt, options.Timings));
            if (!plan.IsEmpty)
            {
                plans.Add((env, plan));
            }
        }

        // Place everything wanted across the fleet at once.
        var requests = new List<(EnvState Env, InstanceRequest Request, PlacementRequest Placement)>();
        foreach (var (env, plan) in plans)
        {
            foreach (var request in plan.Requests)
            {
                requests.Add((env, request, new PlacementRequest(Guid.NewGuid(), Group(env.Id, request.Process), request.MemoryBytes, request.Cpu, request.PinnedNode)));
            }
        }
        var placed = new Dictionary<Guid, Guid>();
        var unplaced = new Dictionary<Guid, string>();
        if (requests.Count > 0)
        {
            var fleet = nodes.Select(n => new PlacementNode(n.Id, n.Name, options.Allocatable(n.MemoryBytes), n.Cpus * options.CpuOvercommit, use[n.Id] == NodeUse.Usable)).ToList();
            var nodeIds = fleet.Select(n => n.Id).ToHashSet();
            var current = instances.Where(i => nodeIds.Contains(i.Status.NodeId))
                .Select(i => new PlacedInstance(i.Status.Id, i.Status.NodeId, Group(i.EnvId, i.Status.Process), i.MemoryBytes, i.Cpu)).ToList();
            var result = Placement.Place(fleet, current, requests.Select(r => r.Placement).ToList());
            foreach (var decision in result.Placed)
            {
                placed[decision.RequestId] = decision.NodeId;
            }
            foreach (var miss in result.Unplaced)
            {
                unplaced[miss.RequestId] = miss.Reason;
            }
        }

        // Append each env's decisions at the version they were planned from.
        var stillWaiting = new HashSet<(Guid, string)>();
        foreach (var (env, plan) in plans)
        {
            var events = new List<DomainEvent>(plan.Events);
            foreach (var (_, request, placement) in requests.Where(r => r.Env == env))
            {
                if (placed.TryGetValue(placement.Id, out var node))
                {
                    events.Add(new DomainEvent(EventNames.InstanceScheduled,
                        new InstanceScheduled(Guid.NewGuid(), node, request.Process, request.Release, request.Reason, request.Deployment), node.ToString("D")));
                }
                else if (unplaced.TryGetValue(placement.Id, out var why))
                {
                    stillWaiting.Add((env.Id, request.Process));
                    await NoteWaitingAsync(env, request, why, ct).ConfigureAwait(false);
                }
            }
            if (events.Count == 0)
            {
                continue;
            }
            try
            {
                var version = env.Version;
                var last = await runner.RunAsync(Scheduler, null, $"scheduler {env.Id:D}", async load =>
                {
                    var fresh = await load.LoadAsync(env.Id, i => new EnvState(i), ct).ConfigureAwait(false);
                    // Planned from an older state: plan again next pass rather than apply stale decisions.
                    return fresh.Version != version ? [] : [fresh.Change(fresh.OrgId, events.ToArray())];
                }, ct).ConfigureAwait(false);
                changed = true;
                if (last > 0)
                {
                    LogPlanned(env.Id, events.Count(e => e.Type == EventNames.InstanceScheduled), events.Count(e => e.Type == EventNames.InstanceStopRequested),
                        string.Join(", ", events.Select(e => e.Type).Where(t => t is not EventNames.InstanceScheduled and not EventNames.InstanceStopRequested)));
                }
            }
            catch (DomainException e) when (e.Kind == DomainErrorKind.Conflict)
            {
                changed = true; // someone else changed the env (a deploy): the next pass plans again
            }
            catch (NotReadyException)
            {
                changed = true;
            }
        }
        foreach (var key in _waiting.Keys.Where(k => !stillWaiting.Contains(k)).ToList())
        {
            _waiting.Remove(key);
        }
        return changed;
    }

    /// <summary>Declares nodes lost past their lease, and recovered when heard from again; true when it changed something.</summary>
    private async Task<bool> LivenessAsync(CancellationToken ct)
    {
        var changed = false;
        var seen = await liveness.LastSeenAsync(ct).ConfigureAwait(false);
        foreach (var node in await catalog.NodesAsync(ct).ConfigureAwait(false))
        {
            DateTimeOffset? lastSeen = seen.TryGetValue(node.Id, out var at) ? at : null;
            // A node never heard from by any replica gets a lease from when this leader took over.
            var fresh = liveness.IsFresh(lastSeen ?? _leadingSince);
            IReadOnlyList<Change> Decide(NodeState state) => fresh
                ? NodeDecisions.MarkRecovered(state, $"heard from again at {lastSeen:u}")
                : NodeDecisions.MarkLost(state, lastSeen, lastSeen is null
                    ? $"not heard from within the {Duration.Format(liveness.Lease)} lease"
                    : $"silent since {lastSeen:u} (lease {Duration.Format(liveness.Lease)})");
            if (fresh == !node.Lost)
            {
                continue;
            }
            try
            {
                var last = await runner.RunAsync(Scheduler, null, $"liveness {node.Id:D}", async load =>
                    Decide(await load.LoadAsync(node.Id, i => new NodeState(i), ct).ConfigureAwait(false)), ct).ConfigureAwait(false);
                if (last > 0)
                {
                    changed = true;
                    if (fresh)
                    {
                        LogRecovered(node.Name);
                    }
                    else
                    {
                        LogLost(node.Name, lastSeen);
                    }
                }
            }
            catch (DomainException e) when (e.Kind == DomainErrorKind.Conflict)
            {
                changed = true;
            }
        }
        return changed;
    }

    private NodeUse Use(NodeRow node, DateTimeOffset? lastSeen) =>
        node.AdminState == NodeAdminStates.Disabled || node.Lost ? NodeUse.Gone
        : node.AdminState == NodeAdminStates.Draining ? NodeUse.Draining
        : liveness.IsFresh(lastSeen) ? NodeUse.Usable
        : NodeUse.Keep;

    /// <summary>The env's aggregate, caught up with the log.</summary>
    private async Task<EnvState> EnvAsync(Guid id, CancellationToken ct)
    {
        if (!_envs.TryGetValue(id, out var env))
        {
            _envs[id] = env = new EnvState(id);
        }
        foreach (var e in await store.ReadAggregateAsync(EventNames.EnvAggregate, id, env.Version, ct).ConfigureAwait(false))
        {
            env.Apply(e.EventType, e.PayloadJson);
        }
        return env;
    }

    private static string Group(Guid env, string process) => $"{env:N}/{process}";

    /// <summary>
    /// Says once (per leader, per change) why instances wait: in the server's log, and as a
    /// <c>system</c> line in the env's logs, where <c>trc logs</c> shows it to the env's users.
    /// </summary>
    private async Task NoteWaitingAsync(EnvState env, InstanceRequest request, string why, CancellationToken ct)
    {
        var reason = $"deployment {request.Deployment}: an instance of {request.Process} waits for a node: {why}";
        if (_waiting.TryGetValue((env.Id, request.Process), out var said) && said == reason)
        {
            return;
        }
        _waiting[(env.Id, request.Process)] = reason;
        LogWaiting(env.Id, reason);
        if (await catalog.EnvNamesAsync(env.Id, ct).ConfigureAwait(false) is { } names)
        {
            await logs.AppendAsync([new LogRecord(env.Id, names.Org, names.App, names.Env, request.Process, Guid.Empty, request.Release, LogStreams.System, time.GetUtcNow(), "trc: " + reason)], ct).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the loop (and gives up the lease).</summary>
    public ValueTask DisposeAsync() => _loop?.DisposeAsync() ?? ValueTask.CompletedTask;

    [LoggerMessage(EventId = 2201, Level = LogLevel.Information, Message = "Scheduler: env {Env}: scheduled {Scheduled} instance(s), stop-requested {Stopped}; {Steps}")]
    private partial void LogPlanned(Guid env, int scheduled, int stopped, string steps);

    [LoggerMessage(EventId = 2202, Level = LogLevel.Warning, Message = "Scheduler: env {Env}: {Reason}")]
    private partial void LogWaiting(Guid env, string reason);

    [LoggerMessage(EventId = 2203, Level = LogLevel.Error, Message = "Scheduler pass failed; retrying in {Backoff}")]
    private partial void LogPassFailed(Exception exception, TimeSpan backoff);

    [LoggerMessage(EventId = 2204, Level = LogLevel.Information, Message = "Scheduler: this replica leads")]
    private partial void LogLeading();

    [LoggerMessage(EventId = 2205, Level = LogLevel.Warning, Message = "Scheduler: lost the leader lease; trying to get it back")]
    private partial void LogLeaseLost();

    [LoggerMessage(EventId = 2206, Level = LogLevel.Warning, Message = "Scheduler: node {Node} is lost (last heard from {LastSeen}); its instances are rescheduled")]
    private partial void LogLost(string node, DateTimeOffset? lastSeen);

    [LoggerMessage(EventId = 2207, Level = LogLevel.Information, Message = "Scheduler: node {Node} is back; what moved away stays away")]
    private partial void LogRecovered(string node);
}
