using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Trc.Core.Api;

namespace Trc.Client;

// The plumbing under every endpoint method: requests, deadlines, answers and errors.
public sealed partial class TrcClient
{
    /// <summary>The largest JSON answer read (an event page of 1000 releases with manifests stays far below).</summary>
    private const int MaxJsonBytes = 64 * 1024 * 1024;

    /// <summary>A secrets file is at most 4 MiB; leave room, but not unbounded.</summary>
    private const int MaxSecretsBytes = 8 * 1024 * 1024;

    /// <summary>Enough of an error body to find a problem or a proxy's page title.</summary>
    private const int MaxErrorBytes = 256 * 1024;

    private readonly HttpClient _http;
    private readonly string _base;
    private readonly string _token;
    private readonly TrcClientOptions _options;

    /// <summary>Releases the connections.</summary>
    public void Dispose() => _http.Dispose();

    private Task<T> GetAsync<T>(string pathAndQuery, CancellationToken ct) =>
        SendAsync<T>(HttpMethod.Get, pathAndQuery, null, null, ct);

    private async Task<T> SendAsync<T>(HttpMethod method, string pathAndQuery, object? body, string? idempotencyKey, CancellationToken ct)
    {
        using var request = NewRequest(method, pathAndQuery, body, idempotencyKey);
        return await ExecuteAsync(request, async (response, token) =>
        {
            await EnsureSuccessAsync(response, token).ConfigureAwait(false);
            return await ReadJsonAsync<T>(response, token).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
    }

    private Task SendNoContentAsync(HttpMethod method, string pathAndQuery, string? idempotencyKey, CancellationToken ct) =>
        SendNoContentAsync(method, pathAndQuery, null, idempotencyKey, ct);

    private async Task SendNoContentAsync(HttpMethod method, string pathAndQuery, object? body, string? idempotencyKey, CancellationToken ct)
    {
        using var request = NewRequest(method, pathAndQuery, body, idempotencyKey);
        await ExecuteAsync(request, async (response, token) =>
        {
            await EnsureSuccessAsync(response, token).ConfigureAwait(false);
            return true;
        }, ct).ConfigureAwait(false);
    }

    private HttpRequestMessage NewRequest(HttpMethod method, string pathAndQuery, object? body, string? idempotencyKey)
    {
        var request = new HttpRequestMessage(method, new Uri(_base + pathAndQuery, UriKind.Absolute));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/problem+json"));
        if (idempotencyKey is not null)
        {
            if (idempotencyKey.Length is 0 or > 200 || idempotencyKey.Any(c => c is < (char)0x21 or > (char)0x7E))
            {
                throw new ArgumentException("an idempotency key is 1-200 printable ASCII characters without spaces", nameof(idempotencyKey));
            }
            request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
        }
        if (body is not null)
        {
            request.Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body, body.GetType(), ApiJson.ClientOptions));
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        }
        return request;
    }

    /// <summary>
    /// Sends a request and reads its answer under one deadline (<see cref="TrcClientOptions.RequestTimeout"/>),
    /// turning transport failures into <see cref="TrcConnectionException"/>.
    /// </summary>
    private async Task<T> ExecuteAsync<T>(HttpRequestMessage request, Func<HttpResponseMessage, CancellationToken, Task<T>> read, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(_options.RequestTimeout);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
            return await read(response, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TrcConnectionException($"the trc server at {BaseAddress} did not answer {request.Method} {request.RequestUri!.AbsolutePath} within {_options.RequestTimeout.TotalSeconds:0.#} s", BaseAddress);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw ConnectionFailed(e);
        }
    }

    private TrcConnectionException ConnectionFailed(Exception e)
    {
        // HttpRequestException's messages name the host and port ("Connection refused
        // (127.0.0.1:7080)"), never headers.
        var reason = e is IOException ? $"the connection broke ({e.Message})" : e.Message;
        return new TrcConnectionException($"cannot reach the trc server at {BaseAddress}: {reason}", BaseAddress, e);
    }

    private async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw await ErrorAsync(response, ct).ConfigureAwait(false);
        }
    }

    private async Task<T> ReadJsonAsync<T>(HttpResponseMessage response, CancellationToken ct)
    {
        var media = response.Content.Headers.ContentType?.MediaType;
        if (!IsJson(media))
        {
            throw new TrcApiException(response.StatusCode, null,
                $"the server at {BaseAddress} answered HTTP {(int)response.StatusCode} with {Describe(media)} instead of JSON; is this the URL of a trc server?", BaseAddress);
        }
        var body = await ReadBodyAsync(response, MaxJsonBytes, ct).ConfigureAwait(false);
        try
        {
            return JsonSerializer.Deserialize<T>(body, ApiJson.ClientOptions)
                ?? throw new JsonException("the answer is JSON null");
        }
        catch (JsonException e)
        {
            throw new TrcApiException(response.StatusCode, null,
                $"the server at {BaseAddress} answered with JSON this client cannot read as {typeof(T).Name} (at {e.Path ?? "$"}); is the server a compatible trc version?", BaseAddress);
        }
    }

    private async Task<byte[]> ReadBodyAsync(HttpResponseMessage response, int limit, CancellationToken ct)
    {
        if (response.Content.Headers.ContentLength > limit)
        {
            throw TooLarge(response, limit);
        }
        var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[16384];
            int n;
            while ((n = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + n > limit)
                {
                    throw TooLarge(response, limit);
                }
                buffer.Write(chunk, 0, n);
            }
            return buffer.ToArray();
        }
    }

    private TrcApiException TooLarge(HttpResponseMessage response, int limit) =>
        new(response.StatusCode, null, $"the answer of the server at {BaseAddress} is larger than {limit / (1024 * 1024)} MiB, more than this client reads", BaseAddress);

    /// <summary>The exception for an answer that is not a success: the problem when there is one, else a description of what came.</summary>
    private async Task<TrcApiException> ErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var status = response.StatusCode;
        var retryAfter = response.Headers.RetryAfter is { } ra
            ? ra.Delta ?? (ra.Date is { } date ? date - DateTimeOffset.UtcNow : null)
            : null;
        if ((int)status is >= 300 and < 400)
        {
            var location = response.Headers.Location is { } l ? Sanitize(l.IsAbsoluteUri ? l : new Uri(BaseAddress, l)) : "another address";
            return new TrcApiException(status, null,
                $"the server at {BaseAddress} redirects (HTTP {(int)status}) to {location}; use that address as the server URL", BaseAddress, retryAfter);
        }
        byte[] body;
        try
        {
            body = await ReadBodyAsync(response, MaxErrorBytes, ct).ConfigureAwait(false);
        }
        catch (TrcApiException)
        {
            body = [];
        }
        var media = response.Content.Headers.ContentType?.MediaType;
        if (IsJson(media) && body.Length > 0)
        {
            try
            {
                var problem = JsonSerializer.Deserialize<ProblemView>(body, ApiJson.ClientOptions);
                if (problem is not null && !string.IsNullOrEmpty(problem.Code))
                {
                    return new TrcApiException(status, problem, RedactToken(problem.Detail ?? problem.Title ?? problem.Code), BaseAddress, retryAfter);
                }
            }
            catch (JsonException)
            {
                // Not a problem after all: described below.
            }
        }
        var excerpt = Excerpt(media, body);
        var hint = media is "text/html" ? "; a proxy or another web server seems to answer at this URL" : "";
        // The reason phrase is the server's (or a proxy's) text, like the body: cleaned the same way.
        var reason = response.ReasonPhrase is { Length: > 0 } phrase ? " " + Printable(RedactToken(phrase), 100) : "";
        return new TrcApiException(status, null,
            $"the server at {BaseAddress} answered HTTP {(int)status}{reason} with {Describe(Printable(media, 100))}, not a trc API problem{hint}{(excerpt.Length > 0 ? $": \"{excerpt}\"" : "")}",
            BaseAddress, retryAfter);
    }

    /// <summary>A short, single-line, printable excerpt: an HTML page's title, or a text body's first line.</summary>
    private string Excerpt(string? media, byte[] body)
    {
        if (body.Length == 0 || media is null || !(media.StartsWith("text/", StringComparison.Ordinal) || IsJson(media)))
        {
            return "";
        }
        var text = Encoding.UTF8.GetString(body);
        if (media == "text/html")
        {
            var start = text.IndexOf("<title>", StringComparison.OrdinalIgnoreCase);
            var end = start < 0 ? -1 : text.IndexOf("</title>", start, StringComparison.OrdinalIgnoreCase);
            text = start >= 0 && end > start ? text[(start + 7)..end] : "";
        }
        var line = text.Trim().Split('\n', 2)[0].Trim();
        // The token is never printed, even if something in between echoes request headers.
        return Printable(RedactToken(line), 200);
    }

    /// <summary>The text with the token replaced, should a server or proxy echo the request's headers.</summary>
    private string RedactToken(string text) => text.Replace(_token, "[token]", StringComparison.Ordinal);

    /// <summary>At most <paramref name="max"/> characters on one line: control characters become spaces.</summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(text))]
    private static string? Printable(string? text, int max)
    {
        if (text is null)
        {
            return null;
        }
        var printable = new string(text.Take(max).Select(c => char.IsControl(c) ? ' ' : c).ToArray());
        return text.Length > max ? printable + "..." : printable;
    }

    private static bool IsJson(string? media) =>
        media is not null && (media == "application/json" || media.EndsWith("+json", StringComparison.Ordinal));

    private static string Describe(string? media) => media is null ? "no content type" : $"content of type {media}";

    private static string Sanitize(Uri uri) =>
        uri.IsAbsoluteUri ? new UriBuilder(uri) { UserName = "", Password = "", Query = "", Fragment = "" }.Uri.ToString() : uri.ToString();
}
