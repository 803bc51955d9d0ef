namespace Trc.ControlPlane;

/// <summary>
/// The lifetime of one background loop of the server (the scheduler, log retention): started on
/// the thread pool, stopped by cancelling its token and awaiting it. What the loop does when a
/// round fails is the loop's own business; it must return once its token is cancelled.
/// </summary>
internal sealed class BackgroundLoop : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _task;

    /// <summary>Starts <paramref name="run"/> with the token that <see cref="DisposeAsync"/> cancels.</summary>
    public BackgroundLoop(Func<CancellationToken, Task> run) => _task = Task.Run(() => run(_stop.Token));

    /// <summary>Cancels the loop and waits for it to return.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
