using Microsoft.Extensions.Logging;
using Npgsql;

namespace Trc.EventStore.Postgres;

/// <summary>
/// LISTEN/NOTIFY for one store: a listener that pulses the store's signals when another process
/// appends or moves a checkpoint, and a sender that tells other processes about this one's.
/// Notifications are only wake-ups; everything is read from tables, so a lost one delays a waiter
/// by at most the poll interval. NOTIFY is sent after commit, never inside the append: a notifying
/// commit takes a cluster-wide lock that would serialise every append.
/// </summary>
internal sealed partial class PostgresNotifier(PostgresEventStore store, ILogger<PostgresNotifier> logger) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly AsyncSignal _send = new();
    private Task? _listen;
    private Task? _sender;
    private long _pendingEventId;
    private int _pendingCheckpoints;
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Starts listening; completes when LISTEN is active, or after <paramref name="wait"/> (then waiters poll until it is).</summary>
    public async Task StartAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        _listen ??= Task.Run(() => ListenLoopAsync(_stop.Token));
        _sender ??= Task.Run(() => SendLoopAsync(_stop.Token));
        await Task.WhenAny(_listening.Task, Task.Delay(wait, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Tells other processes that events up to <paramref name="lastEventId"/> are committed.</summary>
    public void NotifyEvents(long lastEventId)
    {
        InterlockedMax(ref _pendingEventId, lastEventId);
        _send.Pulse();
    }

    internal static void InterlockedMax(ref long target, long value)
    {
        var current = Volatile.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }
            current = seen;
        }
    }

    public void NotifyCheckpoints()
    {
        Volatile.Write(ref _pendingCheckpoints, 1);
        _send.Pulse();
    }

    private async Task ListenLoopAsync(CancellationToken stop)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await using var connection = await store.DedicatedDataSource.OpenConnectionAsync(stop).ConfigureAwait(false);
                connection.Notification += (_, e) =>
                {
                    // Payload: "<instance tag>:<last event id>". This process already woke its own waiters.
                    var colon = e.Payload.IndexOf(':', StringComparison.Ordinal);
                    if (colon < 0 || e.Payload.AsSpan(0, colon).SequenceEqual(store.InstanceTag))
                    {
                        return;
                    }
                    if (e.Channel == store.EventsChannel)
                    {
                        if (long.TryParse(e.Payload.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                        {
                            store.NoteCommitted(id);
                        }
                        store.EventsAppended.Pulse();
                    }
                    else if (e.Channel == store.CheckpointsChannel)
                    {
                        store.CheckpointsMoved.Pulse();
                    }
                };
                await PostgresEventStore.ExecuteAsync(connection, $"LISTEN {store.EventsChannel}; LISTEN {store.CheckpointsChannel}", stop).ConfigureAwait(false);
                _listening.TrySetResult();
                // Anything that happened while we were not listening: let waiters re-check.
                store.EventsAppended.Pulse();
                store.CheckpointsMoved.Pulse();
                backoff = TimeSpan.FromMilliseconds(200);
                while (!stop.IsCancellationRequested)
                {
                    await connection.WaitAsync(stop).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException or IOException)
            {
                LogListenFailed(e, backoff);
                await DelayAsync(backoff, stop).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
    }

    private async Task SendLoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var wake = _send.WaitAsync(TimeSpan.FromSeconds(30), store.Options.TimeProvider, stop);
                var eventId = Interlocked.Exchange(ref _pendingEventId, 0);
                var checkpoints = Interlocked.Exchange(ref _pendingCheckpoints, 0) == 1;
                if (eventId > 0 || checkpoints)
                {
                    await using var connection = await store.DataSource.OpenConnectionAsync(stop).ConfigureAwait(false);
                    await using var command = new NpgsqlCommand { Connection = connection };
                    var calls = new List<string>();
                    if (eventId > 0)
                    {
                        // The payload is the committed id, so a waiter knows the event exists even while
                        // an older open transaction keeps it below the readers' horizon.
                        calls.Add("pg_notify($1, $2)");
                        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store.EventsChannel });
                        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store.InstanceTag + ":" + eventId.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                    }
                    if (checkpoints)
                    {
                        calls.Add($"pg_notify(${command.Parameters.Count + 1}, ${command.Parameters.Count + 2})");
                        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store.CheckpointsChannel });
                        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store.InstanceTag + ":" });
                    }
                    // A notifying transaction gets a transaction id and so a commit record; it
                    // need not wait for that record to reach disk.
                    command.CommandText = "SELECT set_config('synchronous_commit', 'off', true), " + string.Join(", ", calls);
                    await command.ExecuteNonQueryAsync(stop).ConfigureAwait(false);
                    // Let further appends gather into the next notification.
                    await Task.Delay(store.Options.NotifyInterval, store.Options.TimeProvider, stop).ConfigureAwait(false);
                    continue;
                }
                await wake.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException or IOException)
            {
                // Other processes fall back to polling; this loop tries again shortly.
                LogNotifyFailed(e);
                await DelayAsync(TimeSpan.FromSeconds(1), stop).ConfigureAwait(false);
            }
        }
    }

    private static async Task DelayAsync(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            await Task.Delay(delay, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var task in new[] { _listen, _sender })
        {
            if (task is not null)
            {
                try
                {
                    await task.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "LISTEN connection failed; waiters poll until it is back (retry in {Backoff})")]
    private partial void LogListenFailed(Exception exception, TimeSpan backoff);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "NOTIFY failed; other processes poll instead")]
    private partial void LogNotifyFailed(Exception exception);
}
