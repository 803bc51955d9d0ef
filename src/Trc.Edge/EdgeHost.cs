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
    /// <summary>The routes file (<c>trc edge --routes FILE</c>).</summary>
    public required string RoutesFile { get; init; }

    /// <summary>Where to serve Prometheus metrics (<c>GET /metrics</c>), or null for nowhere.</summary>
    public IPEndPoint? Metrics { get; init; }

    /// <summary>How often the routes file is checked for changes. Default 1 s.</summary>
    public TimeSpan ReloadInterval { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// <c>trc edge</c> in standalone mode: an <see cref="EdgeServer"/> fed from a routes file, which is
/// read again when it changes (or on <see cref="Reload"/>, which SIGHUP calls). A file that does
/// not parse, or whose listeners cannot be opened, is reported and the routes in force stay.
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

    /// <summary>How many times the routes file was applied (the first load included).</summary>
    public int Applied { get; private set; }

    /// <summary>The last problem with the routes file, or null when the last read was applied.</summary>
    public string? LastError { get; private set; }

    /// <summary>
    /// Reads the routes file and starts the edge. The first read must succeed (the edge does not
    /// start without routes it can serve): its problem is thrown as <see cref="RoutesFileException"/>
    /// or <see cref="EdgeListenException"/>.
    /// </summary>
    public static Task<EdgeHost> StartAsync(EdgeHostOptions options, ILoggerFactory? loggers = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        loggers ??= NullLoggerFactory.Instance;
        var (settings, table) = RoutesFile.Load(options.RoutesFile);
        var server = new EdgeServer(settings, loggers.CreateLogger<EdgeServer>());
        var host = new EdgeHost(options, server, loggers.CreateLogger<EdgeHost>());
        try
        {
            host._seen = Stamp(options.RoutesFile);
            server.Apply(table, settings);
            host.Applied = 1;
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

    /// <summary>Reads the routes file again and applies it; false (with <see cref="LastError"/> set and logged) when it cannot be.</summary>
    public bool Reload()
    {
        lock (_reloadLock)
        {
            try
            {
                _seen = Stamp(_options.RoutesFile);
                var (settings, table) = RoutesFile.Load(_options.RoutesFile);
                Server.Apply(table, settings);
                Applied++;
                LastError = null;
                LogReloaded(_log, _options.RoutesFile, table.Routes.Count);
                return true;
            }
            catch (Exception e) when (e is RoutesFileException or EdgeListenException)
            {
                LastError = e.Message;
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
                if (Stamp(_options.RoutesFile) != _seen)
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
