using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Trc.ControlPlane.Auth;
using Trc.ControlPlane.Commands;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Api;

/// <summary>A malformed request (400/413/415), naming the field or header at fault.</summary>
public sealed class BadRequestException(int status, string code, string message, string? field = null) : Exception(message)
{
    /// <summary>The HTTP status.</summary>
    public int Status { get; } = status;

    /// <summary>The stable code.</summary>
    public string Code { get; } = code;

    /// <summary>The field or header.</summary>
    public string? Field { get; } = field;
}

/// <summary>Reads request bodies strictly: JSON only, size-capped, unknown fields refused, errors naming the field.</summary>
public static class JsonBody
{
    /// <summary>The body as <typeparamref name="T"/>, and its fingerprint (method, path, body) for Idempotency-Key.</summary>
    public static async Task<(T Value, string Fingerprint)> ReadAsync<T>(HttpContext http, long maxBytes)
    {
        var contentType = http.Request.ContentType ?? "";
        if (!contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            throw new BadRequestException(415, "unsupported_media_type", $"send the body as application/json (got \"{Printable(contentType)}\")", "Content-Type");
        }
        var body = await ReadBytesAsync(http, maxBytes).ConfigureAwait(false);
        if (body.Length == 0)
        {
            throw new BadRequestException(400, "invalid_json", "the request has no body");
        }
        T? value;
        try
        {
            value = JsonSerializer.Deserialize<T>(body, ApiJson.Options);
        }
        catch (JsonException e)
        {
            var field = FieldOf(e.Path);
            // System.Text.Json's own message may quote the input; say what and where instead.
            var what = e.Message.Contains("could not be mapped", StringComparison.Ordinal) ? "is not a known field"
                : e.Message.Contains("Duplicate", StringComparison.Ordinal) ? "appears more than once"
                : e.Message.Contains("missing required", StringComparison.Ordinal) ? "a required field is missing"
                : e.Message.Contains("could not be converted", StringComparison.Ordinal) ? "has the wrong type"
                : e.Message.Contains("null", StringComparison.OrdinalIgnoreCase) ? "must not be null"
                : "is not valid JSON";
            var missing = e.Message.Contains("missing required", StringComparison.Ordinal) ? MissingNames(e.Message) : null;
            throw new BadRequestException(400, "invalid_json",
                missing is not null ? $"missing required field(s): {missing}" : $"{(field is null ? "the body" : field)} {what} (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})",
                field ?? missing);
        }
        if (value is null)
        {
            throw new BadRequestException(400, "invalid_json", "the body must be a JSON object, not null");
        }
        return (value, Fingerprint(http, body));
    }

    /// <summary>The fingerprint of a request without a body.</summary>
    public static string Fingerprint(HttpContext http, byte[]? body = null) =>
        $"{http.Request.Method} {http.Request.Path}{http.Request.QueryString} {Convert.ToHexStringLower(SHA256.HashData(body ?? []))}";

    private static async Task<byte[]> ReadBytesAsync(HttpContext http, long maxBytes)
    {
        if (http.Request.ContentLength > maxBytes)
        {
            throw new BadRequestException(413, "body_too_large", $"the body is {http.Request.ContentLength} bytes; at most {maxBytes} are accepted");
        }
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        while (true)
        {
            int n;
            try
            {
                n = await http.Request.Body.ReadAsync(chunk, http.RequestAborted).ConfigureAwait(false);
            }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (e.StatusCode == 413)
            {
                throw new BadRequestException(413, "body_too_large", $"the body is larger than {maxBytes} bytes");
            }
            if (n == 0)
            {
                break;
            }
            buffer.Write(chunk, 0, n);
            if (buffer.Length > maxBytes)
            {
                throw new BadRequestException(413, "body_too_large", $"the body is larger than {maxBytes} bytes");
            }
        }
        return buffer.ToArray();
    }

    /// <summary>"$.routes[0].hostname" to "routes[0].hostname".</summary>
    private static string? FieldOf(string? path) =>
        string.IsNullOrEmpty(path) || path == "$" ? null : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');

    private static string? MissingNames(string message)
    {
        var colon = message.LastIndexOf(':');
        return colon < 0 ? null : message[(colon + 1)..].Trim().TrimEnd('.');
    }

    internal static string Printable(string s) => new(s.Take(64).Select(c => char.IsControl(c) ? '?' : c).ToArray());
}

/// <summary>Writes RFC 7807 problems and maps exceptions to them.</summary>
public static partial class Problems
{
    /// <summary>A problem response.</summary>
    public static IResult Result(int status, string code, string detail, string? field = null, IReadOnlyList<string>? errors = null, IReadOnlyDictionary<string, JsonElement>? details = null) =>
        Results.Json(new ProblemView($"urn:trc:problem:{code}", Title(status), status, detail, code, field, errors, details), ApiJson.Options, "application/problem+json", status);

    /// <summary>The problem for an exception, or null when it is not one of ours.</summary>
    public static IResult? For(Exception e) => e switch
    {
        DomainException d => Result(d.Kind switch
        {
            DomainErrorKind.NotFound => 404,
            DomainErrorKind.Conflict => 409,
            DomainErrorKind.QuotaExceeded => 403,
            DomainErrorKind.Forbidden => 403,
            _ => 422,
        }, d.Code, d.Message, d.Field, details: d.Extensions.Count == 0 ? null : d.Extensions.ToDictionary(p => p.Key, p => JsonSerializer.SerializeToElement(p.Value))),
        ManifestInvalidException m => Result(422, "invalid_manifest", m.Message, "manifest", m.Errors),
        BadRequestException b => Result(b.Status, b.Code, b.Message, b.Field),
        NotReadyException n => Result(503, "not_ready", n.Message),
        _ => null,
    };

    private static string Title(int status) => status switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        409 => "Conflict",
        413 => "Payload too large",
        415 => "Unsupported media type",
        422 => "Unprocessable entity",
        503 => "Service unavailable",
        _ => "Error",
    };

    /// <summary>Turns exceptions thrown by handlers into problems; anything unexpected is a logged 500 with no details.</summary>
    public static async Task HandleAsync(HttpContext http, Func<Task> next, ILogger logger)
    {
        try
        {
            await next().ConfigureAwait(false);
            if (http.Response is { HasStarted: false, StatusCode: >= 400, ContentType: null })
            {
                // The framework answered on its own (no such path, wrong method, a body that is not
                // JSON where JSON is declared): still a problem, with a code.
                await EmptyStatusProblem(http.Response.StatusCode).ExecuteAsync(http).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception e) when (!http.Response.HasStarted)
        {
            var problem = For(e);
            if (problem is null)
            {
                LogUnexpected(logger, e, http.Request.Method, http.Request.Path);
                problem = Result(500, "internal_error", "something went wrong on the server; it has been logged");
            }
            if (e is NotReadyException)
            {
                http.Response.Headers.RetryAfter = "1";
            }
            await problem.ExecuteAsync(http).ConfigureAwait(false);
        }
    }

    private static IResult EmptyStatusProblem(int status) => status switch
    {
        404 => Result(404, "not_found", "there is no such endpoint; see /v1/openapi.json"),
        405 => Result(405, "method_not_allowed", "this endpoint does not take that method; see /v1/openapi.json"),
        413 => Result(413, "body_too_large", "the body is too large"),
        415 => Result(415, "unsupported_media_type", "send the body as application/json", "Content-Type"),
        _ => Result(status, "http_" + status.ToString(System.Globalization.CultureInfo.InvariantCulture), "the request was refused"),
    };

    [LoggerMessage(EventId = 2001, Level = LogLevel.Error, Message = "Unexpected error serving {Method} {Path}")]
    private static partial void LogUnexpected(ILogger logger, Exception exception, string method, string path);
}

/// <summary>A manifest that does not validate: every problem, as <c>manifest:line:col: path: message</c>.</summary>
public sealed class ManifestInvalidException(IReadOnlyList<string> errors)
    : Exception($"the manifest has {errors.Count} problem{(errors.Count == 1 ? "" : "s")}: {errors.FirstOrDefault()}")
{
    /// <summary>Every problem.</summary>
    public IReadOnlyList<string> Errors { get; } = errors;
}

/// <summary>Per-request access to the caller.</summary>
public static class Caller
{
    private const string Key = "trc.principal";

    /// <summary>Stores the principal for the request.</summary>
    public static void Set(HttpContext http, Principal principal) => http.Items[Key] = principal;

    /// <summary>The principal (authentication ran before any handler).</summary>
    public static Principal Get(HttpContext http) => (Principal)http.Items[Key]!;
}
