using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trc.Edge.Metrics;
using Trc.Edge.Proxy;
using Trc.Edge.Routing;

namespace Trc.Edge;

/// <summary>What <see cref="EdgeHost"/> runs.</summary>
public sealed record EdgeHostOptions
{
    /// <summary>The routes file (<c>trc edge --routes FILE</c>); null when the routes come from <see cref="ControlPlane"/>.</summary>
    public string? RoutesFile { get; init; }

    /// <summary>The control plane the routes come from (<c>trc edge --control-plane URL</c>), or null.</summary>
    public IEdgeRouteSource? ControlPlane { get; init; }

    /// <summary>
    /// With <see cref="ControlPlane"/>: the snapshot already read, applied before the start returns (so a
    /// port that cannot be opened fails the start, as with a routes file); null to read it in the background.
    /// </summary>
    public Core.Api.EdgeRoutesView? InitialRoutes { get; init; }

    /// <summary>With <see cref="ControlPlane"/>: the edge's public addresses and port map.</summary>
    public EdgeListenPlan ListenPlan { get; init; } = new();

    /// <summary>With <see cref="ControlPlane"/>: timeouts and limits (a routes file carries its own).</summary>
    public EdgeSettings Settings { get; init; } = new();

    /// <summary>Where to serve Prometheus metrics (<c>GET /metrics</c>), or null for nowhere.</summary>
    public IPEndPoint? Metrics { get; init; }

    /// <summary>How often the routes file is checked for changes. Default 1 s.</summary>
    public TimeSpan ReloadInterval { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// <c>trc edge</c>: an <see cref="EdgeServer"/> fed either from a routes file (standalone mode),
/// which is read again when it changes (or on <see cref="Reload"/>, which SIGHUP calls), or from the
/// control plane (<see cref="ControlPlaneFeed"/>). A file that does not parse, a snapshot that
/// cannot be applied, or listeners that cannot be opened are reported and the routes in force stay.
/// </summary>
public sealed partial class EdgeHost : IAsyncDisposable
{
    private readonly EdgeHostOptions _options;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _reloadLock = new();
    private Metrics.MetricsEndpoint? _metrics;
    private Task _watch = Task.CompletedTask;
    private (long Length, DateTime Written) _seen;

    private EdgeHost(EdgeHostOptions options, EdgeServer server, ILogger log)
    {
        _options = options;
        Server = server;
        _log = log;
    }

    /// <summary>The edge.</summary>
    public EdgeServer Server { get; }

    /// <summary>Where metrics are served, once started.</summary>
    public IPEndPoint? MetricsBound => _metrics?.Bound;

    /// <summary>How many times the routes file (or a control plane snapshot) was applied, the first included.</summary>
    public int Applied => Feed?.Applied ?? _fileApplied;

    /// <summary>The control plane feed, in that mode.</summary>
    public ControlPlaneFeed? Feed { get; private set; }

    private int _fileApplied;

    /// <summary>The last problem with the routes file (or the control plane), or null when the last read was applied.</summary>
    public string? LastError => Feed?.LastError ?? _lastError;

    private string? _lastError;

    /// <summary>
    /// Reads the routes file and starts the edge. The first read must succeed (the edge does not
    /// start without routes it can serve): its problem is thrown as <see cref="RoutesFileException"/>
    /// or <see cref="EdgeListenException"/>.
    /// </summary>
    public static Task<EdgeHost> StartAsync(EdgeHostOptions options, ILoggerFactory? loggers = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        loggers ??= NullLoggerFactory.Instance;
        if (options.ControlPlane is { } source)
        {
            if (options.RoutesFile is not null)
            {
                throw new ArgumentException("a routes file or a control plane, not both", nameof(options));
            }
            return Task.FromResult(StartFed(options, source, loggers));
        }
        if (options.RoutesFile is null)
        {
            throw new ArgumentException("a routes file or a control plane is needed", nameof(options));
        }
        var (settings, table) = RoutesFile.Load(options.RoutesFile);
        var server = new EdgeServer(settings, loggers.CreateLogger<EdgeServer>());
        var host = new EdgeHost(options, server, loggers.CreateLogger<EdgeHost>());
        try
        {
            host._seen = Stamp(options.RoutesFile);
            server.Apply(table, settings);
            host._fileApplied = 1;
            if (options.Metrics is { } metrics)
            {
                host._metrics = Metrics.MetricsEndpoint.Start(metrics, server.Metrics.Render);
            }
        }
        catch
        {
            _ = server.DisposeAsync().AsTask();
            throw;
        }
        host._watch = Task.Run(() => host.WatchAsync(host._stop.Token), CancellationToken.None);
        return Task.FromResult(host);
    }

    private static EdgeHost StartFed(EdgeHostOptions options, IEdgeRouteSource source, ILoggerFactory loggers)
    {
        var server = new EdgeServer(options.Settings, loggers.CreateLogger<EdgeServer>());
        var host = new EdgeHost(options, server, loggers.CreateLogger<EdgeHost>());
        host.Feed = new ControlPlaneFeed(server, source, options.ListenPlan, loggers.CreateLogger<ControlPlaneFeed>());
        try
        {
            if (options.InitialRoutes is { } initial)
            {
                host.Feed.Apply(initial);
            }
            if (options.Metrics is { } metrics)
            {
                host._metrics = Metrics.MetricsEndpoint.Start(metrics, server.Metrics.Render);
            }
        }
        catch
        {
            _ = server.DisposeAsync().AsTask();
            throw;
        }
        host._watch = Task.Run(() => host.Feed.RunAsync(host._stop.Token), CancellationToken.None);
        return host;
    }

    /// <summary>
    /// Reads the routes file again and applies it; false (with <see cref="LastError"/> set and logged) when it cannot be.
    /// Fed by the control plane, the edge follows its change stream instead, and this does nothing.
    /// </summary>
    public bool Reload()
    {
        if (_options.RoutesFile is null)
        {
            return true;
        }
        lock (_reloadLock)
        {
            try
            {
                _seen = Stamp(_options.RoutesFile);
                var (settings, table) = RoutesFile.Load(_options.RoutesFile);
                Server.Apply(table, settings);
                _fileApplied++;
                _lastError = null;
                LogReloaded(_log, _options.RoutesFile, table.Routes.Count);
                return true;
            }
            catch (Exception e) when (e is RoutesFileException or EdgeListenException)
            {
                _lastError = e.Message;
                LogReloadFailed(_log, e.Message);
                return false;
            }
        }
    }

    private async Task WatchAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.ReloadInterval, ct).ConfigureAwait(false);
                if (Stamp(_options.RoutesFile!) != _seen)
                {
                    Reload();
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e)
            {
                LogReloadFailed(_log, e.Message);
            }
        }
    }

    private static (long, DateTime) Stamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.Length, info.LastWriteTimeUtc) : (-1, default);
    }

    /// <summary>Stops accepting and gives open connections up to <paramref name="grace"/> to finish.</summary>
    public async Task StopAsync(TimeSpan grace, CancellationToken ct = default)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _watch.ConfigureAwait(false);
        await Server.StopAsync(grace, ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        if (_metrics is not null)
        {
            await _metrics.DisposeAsync().ConfigureAwait(false);
        }
        await Server.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 5100, Level = LogLevel.Information, Message = "routes file {File} applied: {Routes} routes")]
    private static partial void LogReloaded(ILogger logger, string file, int routes);

    [LoggerMessage(EventId = 5101, Level = LogLevel.Error, Message = "routes file not applied, the routes in force stay: {Problem}")]
    private static partial void LogReloadFailed(ILogger logger, string problem);
}
