namespace Trc.Oci.Registry;

/// <summary>What kind of failure a <see cref="RegistryException"/> is.</summary>
public enum RegistryErrorKind
{
    /// <summary>The manifest, tag, blob or repository does not exist (404).</summary>
    NotFound,

    /// <summary>The registry wants credentials, or refused the ones given (401).</summary>
    Unauthorized,

    /// <summary>The credentials are valid but not allowed this (403).</summary>
    Denied,

    /// <summary>The registry answered something that breaks the protocol (wrong digest, bad JSON, unexpected status).</summary>
    BadResponse,

    /// <summary>The registry could not be reached or kept failing (connection errors, 5xx, 429, stalls) after every retry.</summary>
    Unavailable,

    /// <summary>The bytes received are not the ones asked for (digest or size); nothing was stored.</summary>
    Verification,
}

/// <summary>A registry operation failed; the message names the registry, the repository and what went wrong.</summary>
public sealed class RegistryException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="kind">The kind of failure.</param>
    /// <param name="message">What went wrong, for a person.</param>
    /// <param name="inner">The cause, or null.</param>
    public RegistryException(RegistryErrorKind kind, string message, Exception? inner = null) : base(message, inner) => Kind = kind;

    /// <summary>The kind of failure.</summary>
    public RegistryErrorKind Kind { get; }

    /// <summary>How long the registry asked to wait before trying again (<c>Retry-After</c>), or null.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>Whether trying again later may succeed.</summary>
    public bool IsTransient => Kind == RegistryErrorKind.Unavailable;
}
