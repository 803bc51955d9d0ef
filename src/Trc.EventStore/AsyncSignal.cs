namespace Trc.EventStore;

/// <summary>
/// A pulse that wakes every current waiter. Waiters that arrive after a pulse wait for the next
/// one, so callers re-check their condition before waiting (check, then wait, then check again).
/// </summary>
public sealed class AsyncSignal
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Wakes everyone waiting now.</summary>
    public void Pulse() => Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Waits for the next pulse, up to <paramref name="timeout"/>; true when pulsed.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        var pulse = Volatile.Read(ref _next).Task;
        if (timeout <= TimeSpan.Zero)
        {
            return pulse.IsCompleted;
        }
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(timeout, time, cts.Token);
        var winner = await Task.WhenAny(pulse, delay).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return winner == pulse;
    }
}

/// <summary>Deadlines measured on a <see cref="TimeProvider"/>'s timestamps.</summary>
internal static class Deadline
{
    /// <summary>The timestamp <paramref name="timeout"/> from now.</summary>
    public static long After(TimeProvider time, TimeSpan timeout) =>
        time.GetTimestamp() + (long)(timeout.TotalSeconds * time.TimestampFrequency);

    /// <summary>Time left until <paramref name="deadline"/>, never negative.</summary>
    public static TimeSpan Remaining(TimeProvider time, long deadline) =>
        TimeSpan.FromSeconds(Math.Max(0, deadline - time.GetTimestamp()) / (double)time.TimestampFrequency);

    /// <summary>The shorter of two spans.</summary>
    public static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
