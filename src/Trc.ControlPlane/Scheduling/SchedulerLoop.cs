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

namespace Trc.ControlPlane.Scheduling;

/// <summary>
/// Keeps every env's deployed release scheduled (issue 7's single-node scheduler; see
/// <see cref="ReleasePlacement"/>). A pass plans each env from the catalog and, only where that plan
/// changes something, decides again on the env aggregate and appends at its version. It runs on
/// every replica: two replicas planning the same env at once append at the same version, so one
/// loses and re-decides on the winner's state, which then needs nothing. A pass runs when a
/// release is deployed or a node registers (both followed on the event log), when a node becomes
/// ready, right after a pass that changed something, and otherwise every interval. The loop never
/// dies: it stops on cancellation and backs off on errors.
/// </summary>
/// <param name="store">The event log (followed for deploys and registrations).</param>
/// <param name="catalog">The catalog a pass plans from.</param>
/// <param name="runner">Appends the env's decisions.</param>
/// <param name="liveness">Which nodes are ready.</param>
/// <param name="logs">Where the env's users are told why instances wait.</param>
/// <param name="interval">How often a pass runs when nothing woke the loop.</param>
/// <param name="time">The clock.</param>
/// <param name="logger">The server's log.</param>
public sealed partial class SchedulerLoop(IEventStore store, CatalogReader catalog, CommandRunner runner, NodeLiveness liveness, LogStore logs, TimeSpan interval, TimeProvider time, ILogger logger)
    : IAsyncDisposable
{
    private static readonly string[] Triggers = [EventNames.ReleaseDeployed, EventNames.NodeRegistered, EventNames.NodeUpdated];

    private static readonly Principal Scheduler = new(DomainIds.V5(DomainIds.Org("trc-platform"), "scheduler"), "scheduler", Roles.Admin, null, null);

    private readonly Dictionary<(Guid, int), AppManifest> _manifests = [];
    private readonly Dictionary<(Guid Env, string Process), string> _waiting = [];
    private BackgroundLoop? _loop;

    private long _passes;

    /// <summary>Passes completed (for tests and diagnostics).</summary>
    public long Passes => Interlocked.Read(ref _passes);

    /// <summary>Starts the loop.</summary>
    public void Start() => _loop = new BackgroundLoop(RunAsync);

    private async Task RunAsync(CancellationToken stop)
    {
        var cursor = 0L;
        var backoff = TimeSpan.FromMilliseconds(200);
        var again = true;
        while (!stop.IsCancellationRequested)
        {
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
                return;
            }
            catch (Exception e)
            {
                LogPassFailed(e, backoff);
                try
                {
                    await Task.Delay(backoff, time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
                again = true;
            }
        }
    }

    /// <summary>
    /// Waits for a deploy or a registration after <paramref name="cursor"/>, a node becoming ready,
    /// or the interval; returns the new cursor. A trigger event is waited for in the catalog too,
    /// so the pass that follows sees it.
    /// </summary>
    private async Task<long> WaitForTriggerAsync(long cursor, CancellationToken stop)
    {
        var deadline = time.GetUtcNow() + interval;
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

    /// <summary>One pass over every env with a deployed release; true when it changed something (so another pass follows at once).</summary>
    internal async Task<bool> PassAsync(CancellationToken ct)
    {
        var nodes = await NodesAsync(ct).ConfigureAwait(false);
        var live = await catalog.LiveInstancesAsync(ct).ConfigureAwait(false);
        var changed = false;
        var stillWaiting = new HashSet<(Guid, string)>();
        var deployed = await catalog.DeployedEnvsAsync(ct).ConfigureAwait(false);
        // Only the deployed releases' manifests stay cached.
        foreach (var key in _manifests.Keys.Except(deployed).ToList())
        {
            _manifests.Remove(key);
        }
        foreach (var (envId, release) in deployed)
        {
            if (!_manifests.TryGetValue((envId, release), out var manifest))
            {
                manifest = await catalog.ReleaseManifestAsync(envId, release, ct).ConfigureAwait(false);
                if (manifest is null)
                {
                    continue;
                }
                _manifests[(envId, release)] = manifest;
            }
            var plan = ReleasePlacement.Plan(release, manifest.Processes, live.GetValueOrDefault(envId) ?? [], nodes, Guid.NewGuid);
            foreach (var w in plan.Waiting)
            {
                stillWaiting.Add((envId, w.Process));
                await NoteWaitingAsync(envId, release, w, ct).ConfigureAwait(false);
            }
            if (plan.IsEmpty)
            {
                continue;
            }
            try
            {
                var last = await runner.RunAsync(Scheduler, null, $"scheduler {envId:D}", async load =>
                {
                    // The catalog may lag the log: decide again on the aggregate itself, at its version.
                    var env = await load.LoadAsync(envId, i => new EnvState(i), ct).ConfigureAwait(false);
                    var decided = ReleasePlacement.Plan(env, nodes, Guid.NewGuid);
                    return decided.IsEmpty ? [] : [env.Change(env.OrgId, decided.Events.ToArray())];
                }, ct).ConfigureAwait(false);
                if (last > 0)
                {
                    changed = true;
                    LogScheduled(envId, plan.Events.Count(e => e.Type == EventNames.InstanceScheduled), plan.Events.Count(e => e.Type == EventNames.InstanceStopRequested));
                    // Free memory moved: the next env of this pass plans with the new numbers.
                    nodes = await NodesAsync(ct).ConfigureAwait(false);
                }
            }
            catch (DomainException e) when (e.Kind == DomainErrorKind.Conflict)
            {
                // Someone else changed the env (a deploy): the next pass decides on the new state.
                changed = true;
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

    private async Task<List<NodeCapacity>> NodesAsync(CancellationToken ct) =>
        (await catalog.NodesAsync(ct).ConfigureAwait(false))
            .Select(n => new NodeCapacity(n.Id, n.Name, n.MemoryBytes - n.UsedMemoryBytes, liveness.IsReady(n.Id)))
            .ToList();

    /// <summary>
    /// Says once (per replica, per change) why instances wait: in the server's log, and as a
    /// <c>system</c> line in the env's logs, where <c>trc logs</c> shows it to the env's users.
    /// </summary>
    private async Task NoteWaitingAsync(Guid envId, int release, WaitingProcess waiting, CancellationToken ct)
    {
        if (_waiting.TryGetValue((envId, waiting.Process), out var said) && said == waiting.Reason)
        {
            return;
        }
        _waiting[(envId, waiting.Process)] = waiting.Reason;
        LogWaiting(envId, waiting.Reason);
        if (await catalog.EnvNamesAsync(envId, ct).ConfigureAwait(false) is { } names)
        {
            await logs.AppendAsync([new LogRecord(envId, names.Org, names.App, names.Env, waiting.Process, Guid.Empty, release, LogStreams.System, time.GetUtcNow(), "trc: " + waiting.Reason)], ct).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the loop.</summary>
    public ValueTask DisposeAsync() => _loop?.DisposeAsync() ?? ValueTask.CompletedTask;

    [LoggerMessage(EventId = 2201, Level = LogLevel.Information, Message = "Scheduler: env {Env}: scheduled {Scheduled} instance(s), stop-requested {Stopped}")]
    private partial void LogScheduled(Guid env, int scheduled, int stopped);

    [LoggerMessage(EventId = 2202, Level = LogLevel.Warning, Message = "Scheduler: env {Env}: {Reason}")]
    private partial void LogWaiting(Guid env, string reason);

    [LoggerMessage(EventId = 2203, Level = LogLevel.Error, Message = "Scheduler pass failed; retrying in {Backoff}")]
    private partial void LogPassFailed(Exception exception, TimeSpan backoff);
}
