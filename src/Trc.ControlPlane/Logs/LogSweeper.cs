using Microsoft.Extensions.Logging;

namespace Trc.ControlPlane.Logs;

/// <summary>
/// Applies log retention now and then: lines received longer ago than the retention go, and so do
/// each env's oldest lines beyond its cap. Every replica sweeps; deleting what is already gone
/// is harmless. The loop never dies: it logs a failed sweep and tries again next time.
/// </summary>
public sealed partial class LogSweeper(LogStore logs, TimeSpan retention, int maxLinesPerEnv, TimeSpan interval, TimeProvider time, ILogger logger) : IAsyncDisposable
{
    private BackgroundLoop? _loop;

    /// <summary>Starts the loop.</summary>
    public void Start() => _loop = new BackgroundLoop(RunAsync);

    /// <summary>One sweep; returns the lines deleted.</summary>
    public async Task<long> SweepAsync(CancellationToken ct)
    {
        var deleted = await logs.SweepAsync(time.GetUtcNow() - retention, maxLinesPerEnv, ct).ConfigureAwait(false);
        if (deleted > 0)
        {
            LogSwept(deleted);
        }
        return deleted;
    }

    private async Task RunAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, time, stop).ConfigureAwait(false);
                await SweepAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogSweepFailed(e);
            }
        }
    }

    /// <summary>Stops the loop.</summary>
    public ValueTask DisposeAsync() => _loop?.DisposeAsync() ?? ValueTask.CompletedTask;

    [LoggerMessage(EventId = 2301, Level = LogLevel.Information, Message = "Log retention removed {Lines} line(s)")]
    private partial void LogSwept(long lines);

    [LoggerMessage(EventId = 2302, Level = LogLevel.Error, Message = "Log retention sweep failed; trying again at the next interval")]
    private partial void LogSweepFailed(Exception exception);
}
