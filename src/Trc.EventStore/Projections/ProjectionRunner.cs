using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Trc.EventStore.Projections;

/// <summary>Settings of a projection runner.</summary>
public sealed record ProjectionRunnerOptions
{
    /// <summary>Most events applied in one transaction.</summary>
    public int BatchSize { get; init; } = 500;

    /// <summary>Longest idle wait before re-checking the log (notifications usually wake it sooner).</summary>
    public TimeSpan IdleWait { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a runner that is not the leader tries to become it.</summary>
    public TimeSpan LeaseRetryInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where logs go.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}

/// <summary>
/// Keeps projections up to date: for each one, a loop that leads (when it holds the lease), reads
/// the log after the checkpoint and applies each batch in one transaction with the checkpoint.
/// With several processes on one database exactly one leads each projection; the checkpoint check
/// in every batch makes a double application impossible even if two believed they led.
/// Loops never die: they stop on cancellation and back off on errors.
/// </summary>
public sealed partial class ProjectionRunner : IAsyncDisposable
{
    private readonly IProjectionBackend _backend;
    private readonly IReadOnlyList<IProjection> _projections;
    private readonly ProjectionRunnerOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<string, bool> _leading = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];

    /// <summary>Creates a runner for <paramref name="projections"/> over <paramref name="backend"/>.</summary>
    public ProjectionRunner(IProjectionBackend backend, IEnumerable<IProjection> projections, ProjectionRunnerOptions? options = null)
    {
        _backend = backend;
        _projections = projections.ToList();
        _options = options ?? new ProjectionRunnerOptions();
        _logger = _options.LoggerFactory.CreateLogger<ProjectionRunner>();
        var duplicate = _projections.GroupBy(p => p.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"two projections are named {duplicate.Key}", nameof(projections));
        }
    }

    /// <summary>The projections this runner runs.</summary>
    public IReadOnlyList<IProjection> Projections => _projections;

    /// <summary>Whether this runner leads the projection now.</summary>
    public bool IsLeading(string name)
    {
        lock (_leading)
        {
            return _leading.GetValueOrDefault(name);
        }
    }

    /// <summary>Creates the projections' tables and starts one loop per projection.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var projection in _projections)
        {
            await _backend.InitializeAsync(projection, cancellationToken).ConfigureAwait(false);
        }
        foreach (var projection in _projections)
        {
            _loops.Add(Task.Run(() => RunAsync(projection, _stop.Token), CancellationToken.None));
        }
    }

    /// <summary>
    /// Rebuilds a projection from the first event: empties its tables and resets its checkpoint in
    /// one transaction; whichever runner leads it then replays the log.
    /// </summary>
    public Task RebuildAsync(string name, CancellationToken cancellationToken)
    {
        var projection = _projections.FirstOrDefault(p => p.Name == name)
            ?? throw new ArgumentException($"no projection named {name}", nameof(name));
        return _backend.ResetAsync(projection, cancellationToken);
    }

    private async Task RunAsync(IProjection projection, CancellationToken stop)
    {
        var filter = projection.EventTypes is { Count: > 0 } types ? new EventFilter(types) : EventFilter.All;
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await using var lease = await _backend.TryAcquireLeaseAsync(projection.Name, stop).ConfigureAwait(false);
                if (lease is null)
                {
                    await Task.Delay(_options.LeaseRetryInterval, _options.TimeProvider, stop).ConfigureAwait(false);
                    continue;
                }
                SetLeading(projection.Name, true);
                LogLeading(projection.Name);
                using var run = CancellationTokenSource.CreateLinkedTokenSource(stop, lease.Lost);
                try
                {
                    await LeadAsync(projection, filter, run.Token).ConfigureAwait(false);
                }
                finally
                {
                    SetLeading(projection.Name, false);
                }
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                LogLeaseLost(projection.Name);
            }
            catch (Exception e)
            {
                LogLoopFailed(e, projection.Name, backoff);
                try
                {
                    await Task.Delay(backoff, _options.TimeProvider, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }

    private async Task LeadAsync(IProjection projection, EventFilter filter, CancellationToken token)
    {
        var store = _backend.Store;
        var checkpoint = (await _backend.GetCheckpointsAsync([projection.Name], token).ConfigureAwait(false))[projection.Name];
        while (true)
        {
            token.ThrowIfCancellationRequested();
            var page = await store.ReadAllAsync(checkpoint, _options.BatchSize, filter, token).ConfigureAwait(false);
            if (page.NextCursor <= checkpoint)
            {
                await store.WaitForEventsAsync(checkpoint, _options.IdleWait, token).ConfigureAwait(false);
                // A rebuild resets the checkpoint without appending anything: look again.
                checkpoint = (await _backend.GetCheckpointsAsync([projection.Name], token).ConfigureAwait(false))[projection.Name];
                continue;
            }
            var applied = await _backend.ApplyAsync(projection.Name, checkpoint, page.NextCursor, async context =>
            {
                foreach (var e in page.Events)
                {
                    await projection.ApplyAsync(context, e, token).ConfigureAwait(false);
                }
            }, token).ConfigureAwait(false);
            if (applied)
            {
                checkpoint = page.NextCursor;
            }
            else
            {
                // The checkpoint moved under us: a rebuild, or another runner. Start from where it is.
                checkpoint = (await _backend.GetCheckpointsAsync([projection.Name], token).ConfigureAwait(false))[projection.Name];
                LogCheckpointMoved(projection.Name, checkpoint);
            }
        }
    }

    private void SetLeading(string name, bool leading)
    {
        lock (_leading)
        {
            _leading[name] = leading;
        }
    }

    /// <summary>Stops every loop and releases the leases.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Leading projection {Projection}")]
    private partial void LogLeading(string projection);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning, Message = "Lost the lease of projection {Projection}; trying to get it back")]
    private partial void LogLeaseLost(string projection);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Error, Message = "Projection {Projection} failed; retrying in {Backoff}")]
    private partial void LogLoopFailed(Exception exception, string projection, TimeSpan backoff);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Information, Message = "Checkpoint of projection {Projection} moved elsewhere; continuing from {Checkpoint}")]
    private partial void LogCheckpointMoved(string projection, long checkpoint);
}

/// <summary>
/// Read-your-writes: waits until projections have applied the log up to an event id (the last id
/// of the append the caller just made), so the read that follows sees it.
/// </summary>
public sealed class ProjectionWaiter(IProjectionBackend backend, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>How often to re-check when no checkpoint notification arrives.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>True when every named projection has passed <paramref name="eventId"/> within <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitAsync(IReadOnlyCollection<string> projections, long eventId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Deadline.After(_time, timeout);
        while (true)
        {
            var remaining = Deadline.Remaining(_time, deadline);
            var wake = backend.CheckpointsMoved.WaitAsync(Deadline.Min(PollInterval, remaining), _time, cancellationToken);
            var checkpoints = await backend.GetCheckpointsAsync(projections, cancellationToken).ConfigureAwait(false);
            if (projections.All(p => checkpoints.GetValueOrDefault(p) >= eventId))
            {
                return true;
            }
            if (remaining <= TimeSpan.Zero)
            {
                return false;
            }
            await wake.ConfigureAwait(false);
        }
    }
}
