using System.Net;
using Trc.Core.Api;

namespace Trc.Client;

/// <summary>
/// A call to the trc API did not succeed. Messages name the server's URL (without any user
/// info) and never contain the token.
/// </summary>
public abstract class TrcException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected TrcException(string message, Uri server, Exception? inner = null)
        : base(message, inner)
    {
        Server = server;
    }

    /// <summary>The server's base URL, as shown in messages (user info removed).</summary>
    public Uri Server { get; }
}

/// <summary>
/// The server answered, but not with success: a problem (<see cref="Problem"/>, with its stable
/// <c>code</c> and offending <c>field</c>), or something that is not an API answer at all, such as
/// a proxy's HTML error page (then <see cref="Problem"/> is null and the message says what came).
/// </summary>
public sealed class TrcApiException : TrcException
{
    /// <summary>Creates the exception.</summary>
    public TrcApiException(HttpStatusCode statusCode, ProblemView? problem, string message, Uri server, TimeSpan? retryAfter = null)
        : base(message, server)
    {
        StatusCode = statusCode;
        Problem = problem;
        RetryAfter = retryAfter;
    }

    /// <summary>The HTTP status.</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>The problem the server sent, or null when the body was not an API problem.</summary>
    public ProblemView? Problem { get; }

    /// <summary>The problem's stable code (<c>hostname_bound</c>, <c>not_found</c>, ...), or null.</summary>
    public string? Code => Problem?.Code;

    /// <summary>The request field or header at fault, or null.</summary>
    public string? Field => Problem?.Field;

    /// <summary>How long the server asked the caller to wait before retrying (on 503), or null.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>Whether trying the same call again later may succeed (5xx, 408, 429).</summary>
    public bool IsTransient => (int)StatusCode >= 500 || StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests;
}

/// <summary>
/// The server could not be reached or stopped answering: connection refused, DNS failure, TLS
/// failure, a dropped connection, or a timeout.
/// </summary>
public sealed class TrcConnectionException : TrcException
{
    /// <summary>Creates the exception.</summary>
    public TrcConnectionException(string message, Uri server, Exception? inner = null)
        : base(message, server, inner)
    {
    }
}
