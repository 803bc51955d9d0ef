namespace Trc.Oci.Registry;

/// <summary>How a <see cref="RegistryClient"/> reaches registries.</summary>
public sealed record RegistryClientOptions
{
    /// <summary>Credentials by registry host; anonymous where there are none.</summary>
    public RegistryCredentialStore Credentials { get; init; } = RegistryCredentialStore.Empty;

    /// <summary>
    /// Registries (<c>host[:port]</c>) reached over plain HTTP. Loopback registries (<c>localhost</c>,
    /// <c>127.0.0.0/8</c>, <c>[::1]</c>) always are, as with Docker; every other one uses HTTPS.
    /// </summary>
    public IReadOnlyCollection<string> InsecureRegistries { get; init; } = [];

    /// <summary>Attempts per request before a transient failure (connection error, 5xx, 429, stall) is final (default 4).</summary>
    public int MaxAttempts { get; init; } = 4;

    /// <summary>The wait before the first retry; it doubles per retry (default 250 ms).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest wait between retries, also the cap on a server's <c>Retry-After</c> (default 10 s).</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long to wait for a response's headers (default 60 s).</summary>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a body may go without a byte arriving before the download is retried (default 60 s).</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Redirects followed per request (default 5).</summary>
    public int MaxRedirects { get; init; } = 5;

    /// <summary>Blobs downloaded at once by one pull (default 4).</summary>
    public int ParallelDownloads { get; init; } = 4;

    /// <summary>The <c>User-Agent</c> sent.</summary>
    public string UserAgent { get; init; } = "trc-oci/1";

    /// <summary>The clock (token expiry, retry waits).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}
