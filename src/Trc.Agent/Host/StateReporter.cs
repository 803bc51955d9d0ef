using System.Threading.Channels;
using Trc.Client;
using Trc.Core.Api;

namespace Trc.Agent.Host;

/// <summary>
/// Reports instance state changes to the control plane in the order they happened, retrying while
/// it cannot be reached. The last reported state per instance is also what heartbeats carry.
/// </summary>
public sealed class StateReporter
{
    private readonly TrcClient _client;
    private readonly Guid _node;
    private readonly Action<string> _log;

    /// <summary>A reporter for <paramref name="node"/>'s instances.</summary>
    public StateReporter(TrcClient client, Guid node, Action<string> log)
    {
        _client = client;
        _node = node;
        _log = log;
        // A dropped report (the queue full while the control plane is away) is no longer pending.
        _queue = Channel.CreateBounded<(Guid, InstanceStateRequest)>(
            new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            _ => Interlocked.Decrement(ref _pending));
    }

    private readonly Channel<(Guid Instance, InstanceStateRequest State)> _queue;

    private readonly Lock _gate = new();

    private readonly Dictionary<Guid, InstanceStateRequest> _latest = [];

    /// <summary>Records a new state and queues its report.</summary>
    public void Report(Guid instance, InstanceStateRequest state)
    {
        lock (_gate)
        {
            if (_latest.TryGetValue(instance, out var last) && last == state)
            {
                return;
            }
            _latest[instance] = state;
            // Counted before it is queued, so that Idle never reads true while a report is on its
            // way (between the reader taking it and sending it, the queue is empty); queued under
            // the lock, so that two reports of one instance leave in the order they were made.
            Interlocked.Increment(ref _pending);
            if (!_queue.Writer.TryWrite((instance, state)))
            {
                Interlocked.Decrement(ref _pending);
            }
        }
    }

    /// <summary>Forgets an instance that is gone.</summary>
    public void Forget(Guid instance)
    {
        lock (_gate)
        {
            _latest.Remove(instance);
        }
    }

    /// <summary>Every instance's last state, for heartbeats.</summary>
    public IReadOnlyList<InstanceHeartbeat> Snapshot()
    {
        lock (_gate)
        {
            return _latest.Select(kv => new InstanceHeartbeat(kv.Key, kv.Value.State)).ToList();
        }
    }

    /// <summary>Whether every queued report has been sent (or refused, or dropped).</summary>
    public bool Idle => Volatile.Read(ref _pending) <= 0;

    private int _pending;

    /// <summary>Sends reports until cancelled.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        await foreach (var (instance, state) in _queue.Reader.ReadAllAsync(ct).ConfigureAwait(false))
        {
            try
            {
                await SendAsync(instance, state, ct).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _pending);
            }
        }
    }

    private async Task SendAsync(Guid instance, InstanceStateRequest state, CancellationToken ct)
    {
        var failures = 0;
        while (true)
        {
            try
            {
                await _client.ReportInstanceStateAsync(_node, instance, state, ct: ct).ConfigureAwait(false);
                break;
            }
            catch (TrcApiException e) when (!e.IsTransient)
            {
                _log($"state '{state.State}' of instance {instance} refused: {e.Message}");
                break;
            }
            catch (Exception e) when (e is TrcException or HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                failures++;
                if (failures == 1 || failures % 20 == 0)
                {
                    _log($"cannot report instance {instance} as '{state.State}' ({e.Message}); retrying");
                }
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(10_000, 250 * Math.Pow(2, Math.Min(failures, 6)))), ct).ConfigureAwait(false);
            }
        }
    }
}
