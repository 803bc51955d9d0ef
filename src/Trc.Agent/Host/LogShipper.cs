using System.Threading.Channels;
using Trc.Client;
using Trc.Core.Api;

namespace Trc.Agent.Host;

/// <summary>
/// Ships instance log lines to the control plane in batches. Lines wait in a bounded buffer while
/// the control plane cannot be reached; past the bound the oldest are dropped and a system line
/// says how many. A line longer than the API's limit is cut (and says so).
/// </summary>
public sealed class LogShipper
{
    /// <summary>The API's limit on one line, in UTF-16 characters kept (bytes are checked by the server).</summary>
    public const int MaxLineChars = LogLimits.MaxLineBytes / 4;

    /// <summary>The API's limit on lines per batch.</summary>
    public const int MaxBatch = LogLimits.MaxLinesPerBatch;

    private readonly Channel<LogLineRequest> _lines;
    private readonly TrcClient _client;
    private readonly Guid _node;
    private readonly AgentOptions _options;
    private readonly Action<string> _log;
    private long _dropped;

    /// <summary>A shipper for <paramref name="node"/>'s lines.</summary>
    public LogShipper(TrcClient client, Guid node, AgentOptions options, Action<string> log)
    {
        _client = client;
        _node = node;
        _options = options;
        _log = log;
        _lines = Channel.CreateBounded<LogLineRequest>(new BoundedChannelOptions(Math.Max(1, options.LogBufferLines))
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        }, _ => Interlocked.Increment(ref _dropped));
    }

    /// <summary>Queues one line.</summary>
    public void Add(Guid instance, string stream, string line)
    {
        if (line.Length > MaxLineChars)
        {
            line = line[..MaxLineChars] + " [line cut at 4096 characters]";
        }
        _lines.Writer.TryWrite(new LogLineRequest(instance, stream, DateTimeOffset.UtcNow, line));
    }

    /// <summary>Ships until cancelled, then sends what is left (best effort, a few seconds).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var batch = new List<LogLineRequest>(MaxBatch);
        var failures = 0;
        while (true)
        {
            try
            {
                if (batch.Count == 0 && !await _lines.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
                {
                    return;
                }
                await Task.Delay(_options.LogFlushInterval, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                await FinalFlushAsync(batch).ConfigureAwait(false);
                return;
            }
            Fill(batch);
            try
            {
                await _client.ShipLogsAsync(_node, new LogBatchRequest(batch), ct).ConfigureAwait(false);
                batch.Clear();
                failures = 0;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                await FinalFlushAsync(batch).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is TrcException or HttpRequestException or TaskCanceledException)
            {
                failures++;
                if (e is TrcApiException { IsTransient: false } refused && (int)refused.StatusCode is >= 400 and < 500)
                {
                    // The server refuses this batch (an instance it no longer knows): drop it rather than retry forever.
                    _log($"log batch of {batch.Count} lines refused: {e.Message}");
                    batch.Clear();
                    continue;
                }
                if (failures == 1 || failures % 20 == 0)
                {
                    _log($"cannot ship logs ({e.Message}); keeping up to {_options.LogBufferLines} lines and retrying");
                }
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(10_000, 250 * Math.Pow(2, Math.Min(failures, 6)))), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void Fill(List<LogLineRequest> batch)
    {
        var dropped = Interlocked.Exchange(ref _dropped, 0);
        if (dropped > 0 && batch.Count < MaxBatch)
        {
            _log($"dropped {dropped} log lines: the buffer of {_options.LogBufferLines} lines was full");
        }
        while (batch.Count < MaxBatch && _lines.Reader.TryRead(out var line))
        {
            batch.Add(line);
        }
    }

    private async Task FinalFlushAsync(List<LogLineRequest> batch)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            do
            {
                Fill(batch);
                if (batch.Count == 0)
                {
                    return;
                }
                await _client.ShipLogsAsync(_node, new LogBatchRequest(batch), timeout.Token).ConfigureAwait(false);
                batch.Clear();
            }
            while (!timeout.IsCancellationRequested);
        }
        catch (Exception e) when (e is TrcException or HttpRequestException or OperationCanceledException)
        {
            _log($"{batch.Count + _lines.Reader.Count} log lines not shipped at shutdown: {e.Message}");
        }
    }
}
