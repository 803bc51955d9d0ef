using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trc.Core.Api;
using Trc.Edge.Proxy;
using Trc.Edge.Routing;

namespace Trc.Edge;

/// <summary>Where an edge reads its routes from the control plane (the CLI wires this to <c>Trc.Client</c>).</summary>
public interface IEdgeRouteSource
{
    /// <summary>Every route, as of event <paramref name="after"/> at least (<c>GET /v1/edge/routes?after=</c>).</summary>
    Task<EdgeRoutesView> SnapshotAsync(long after, CancellationToken ct);

    /// <summary>The ids of events after <paramref name="after"/> that change routing, as they are appended.</summary>
    IAsyncEnumerable<long> ChangesAsync(long after, CancellationToken ct);
}

/// <summary>
/// Keeps an <see cref="EdgeServer"/>'s routes in step with the control plane: takes the route
/// snapshot, follows the change stream after its position, and on each routing event takes the
/// snapshot again as of that event (a burst of events costs one snapshot). The data plane never
/// waits on the control plane: while it is unreachable, or when a snapshot cannot be applied
/// (a port already taken, say), the routes in force stay and the feed retries with backoff.
/// </summary>
public sealed partial class ControlPlaneFeed
{
    private readonly EdgeServer _server;
    private readonly IEdgeRouteSource _source;
    private readonly EdgeListenPlan _plan;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private string _skipped = "";
    private long _position;
    private int _applied;

    /// <summary>A feed for <paramref name="server"/>.</summary>
    public ControlPlaneFeed(EdgeServer server, IEdgeRouteSource source, EdgeListenPlan plan, ILogger? log = null, TimeProvider? time = null)
    {
        _server = server;
        _source = source;
        _plan = plan;
        _log = log ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The position of the snapshot in force (0 before the first).</summary>
    public long Position => Interlocked.Read(ref _position);

    /// <summary>How many snapshots were applied.</summary>
    public int Applied => Volatile.Read(ref _applied);

    /// <summary>The last problem, or null once a snapshot applied after it.</summary>
    public string? LastError { get; private set; }

    /// <summary>The longest wait between retries.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Runs until <paramref name="ct"/> is cancelled. A snapshot already applied (<see cref="Apply"/>,
    /// at start) is followed from its position; otherwise the first step is to read one.
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var failures = 0;
        var fresh = Applied > 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (!fresh)
                {
                    await RefreshAsync(Position, ct).ConfigureAwait(false);
                }
                fresh = false;
                failures = 0;
                await FollowAsync(ct).ConfigureAwait(false);
                if (!ct.IsCancellationRequested)
                {
                    throw new InvalidOperationException("the change stream ended; taking the snapshot again");
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                fresh = false;
                if (!await FailedAsync(e, ++failures, ct).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
    }

    /// <summary>Follows the change stream; each routing event asks for a snapshot as of it (coalesced).</summary>
    private async Task FollowAsync(CancellationToken ct)
    {
        var wanted = Channel.CreateBounded<long>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var refresher = RefreshLoopAsync(wanted.Reader, stop.Token);
        try
        {
            await foreach (var id in _source.ChangesAsync(Position, ct).ConfigureAwait(false))
            {
                // Events come in order, so the newest wanted position is the only one that matters.
                wanted.Writer.TryWrite(id);
            }
        }
        finally
        {
            wanted.Writer.TryComplete();
            if (ct.IsCancellationRequested)
            {
                await stop.CancelAsync().ConfigureAwait(false);
            }
            await refresher.ConfigureAwait(false);
        }
    }

    private async Task RefreshLoopAsync(ChannelReader<long> wanted, CancellationToken ct)
    {
        long want = -1;
        var failures = 0;
        while (true)
        {
            try
            {
                if (want < 0 && !await wanted.WaitToReadAsync(ct).ConfigureAwait(false))
                {
                    return;
                }
                while (wanted.TryRead(out var id))
                {
                    want = Math.Max(want, id);
                }
                if (want <= Position)
                {
                    want = -1;
                    continue;
                }
                await RefreshAsync(want, ct).ConfigureAwait(false);
                want = -1;
                failures = 0;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                if (!await FailedAsync(e, ++failures, ct).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
    }

    private async Task RefreshAsync(long after, CancellationToken ct) =>
        Apply(await _source.SnapshotAsync(after, ct).ConfigureAwait(false));

    /// <summary>
    /// Applies a snapshot now: its routes take over new connections. Throws
    /// <see cref="EdgeListenException"/> when a listener cannot be opened (the routes in force stay).
    /// </summary>
    public void Apply(EdgeRoutesView view)
    {
        ArgumentNullException.ThrowIfNull(view);
        var (table, skipped) = ControlPlaneRoutes.Build(view, _plan);
        _server.Apply(table);
        Interlocked.Exchange(ref _position, Math.Max(Position, view.Position));
        Interlocked.Increment(ref _applied);
        LastError = null;
        LogApplied(_log, view.Position, view.Routes.Count, table.Listeners.Count);
        // A route left out is reported when that changes, not on every snapshot.
        var joined = string.Join("; ", skipped);
        if (joined != _skipped)
        {
            _skipped = joined;
            foreach (var line in skipped)
            {
                LogSkipped(_log, line);
            }
        }
    }

    /// <summary>Records and logs a failure, then waits out the backoff; false when cancelled meanwhile.</summary>
    private async Task<bool> FailedAsync(Exception e, int failures, CancellationToken ct)
    {
        LastError = e.Message;
        LogFailed(_log, e.Message, Backoff(failures).TotalSeconds);
        try
        {
            await Task.Delay(Backoff(failures), _time, ct).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private TimeSpan Backoff(int failures)
    {
        var seconds = Math.Min(MaxBackoff.TotalSeconds, 0.5 * Math.Pow(2, Math.Min(failures - 1, 10)));
        return TimeSpan.FromSeconds(seconds);
    }

    [LoggerMessage(EventId = 5200, Level = LogLevel.Information, Message = "control plane routes applied as of event {Position}: {Routes} routes on {Listeners} listeners")]
    private static partial void LogApplied(ILogger logger, long position, int routes, int listeners);

    [LoggerMessage(EventId = 5201, Level = LogLevel.Warning, Message = "control plane routes not updated, the routes in force stay (retrying in {Seconds} s): {Problem}")]
    private static partial void LogFailed(ILogger logger, string problem, double seconds);

    [LoggerMessage(EventId = 5202, Level = LogLevel.Warning, Message = "left out: {Problem}")]
    private static partial void LogSkipped(ILogger logger, string problem);
}
