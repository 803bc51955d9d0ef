namespace Trc.Edge.Proxy;

/// <summary>Timeouts and limits of the edge. Defaults suit the public internet.</summary>
public sealed record EdgeSettings
{
    /// <summary>How long a client has to send its whole ClientHello (not per read). Default 10 s.</summary>
    public TimeSpan HelloTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one backend connect may take before the next backend is tried. Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A connection with no byte either way for this long is closed. Default 1 h.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How long connections to a removed backend may go on before they are closed. Default 30 s.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The most live connections of the whole edge; more are closed at accept. Default 100,000.</summary>
    public int MaxConnections { get; init; } = 100_000;

    /// <summary>How long a backend that refused or timed out a connect is skipped (when another is left). Default 2 s.</summary>
    public TimeSpan BackendRetryAfter { get; init; } = TimeSpan.FromSeconds(2);
}
