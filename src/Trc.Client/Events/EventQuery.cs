namespace Trc.Client.Events;

/// <summary>Which events to read or stream.</summary>
/// <param name="Org">The org whose events to read; null reads the platform's whole log (admin only).</param>
/// <param name="After">Start after this event id (0: from the beginning).</param>
/// <param name="Limit">Most events per page (the server's default when null; at most 1000).</param>
/// <param name="Types">Only these event types; null or empty: every type.</param>
/// <param name="Node">Only events for this node (the platform log's agent filter).</param>
public sealed record EventQuery(string? Org = null, long After = 0, int? Limit = null, IReadOnlyList<string>? Types = null, string? Node = null);

/// <summary>A dropped event stream about to be resumed.</summary>
/// <param name="Attempt">Reconnects since the stream last worked, this one included (1 for the first); it sets the backoff.</param>
/// <param name="Delay">How long the stream waits before reconnecting.</param>
/// <param name="LastEventId">The id the stream resumes after (sent as <c>Last-Event-ID</c>), or null.</param>
/// <param name="Error">Why the connection ended; null when the server closed it cleanly.</param>
public sealed record EventStreamReconnect(int Attempt, TimeSpan Delay, long? LastEventId, Exception? Error);

/// <summary>How <see cref="TrcClient.StreamEventsAsync"/> resumes a dropped stream.</summary>
public sealed record EventStreamOptions
{
    /// <summary>The defaults: 0.5 s doubling up to 15 s between attempts, forever; 60 s idle limit.</summary>
    public static EventStreamOptions Default { get; } = new();

    /// <summary>The wait before the first reconnect attempt after a drop; it doubles per failed attempt.</summary>
    public TimeSpan InitialReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest wait between attempts (the bound of the backoff).</summary>
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Consecutive failed reconnect attempts after which the last error is thrown; null retries
    /// until cancelled. A reconnect that opens the stream again resets the count.
    /// </summary>
    public int? MaxReconnectAttempts { get; init; }

    /// <summary>
    /// A connection silent for this long is treated as dropped (the server sends a comment every
    /// 15 s, so only a dead connection is this quiet).
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Called before each reconnect (for a "reconnecting..." message).</summary>
    public Action<EventStreamReconnect>? Reconnecting { get; init; }

    /// <summary>The clock the backoff waits on.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
