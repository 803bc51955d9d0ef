using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Trc.Oci.Images;
using Trc.Oci.Store;

namespace Trc.Oci.Registry;

/// <summary>
/// A client of the Distribution API v2 (the OCI distribution spec) for pulling: manifests by tag or
/// digest, and blobs streamed into a <see cref="BlobStore"/> with their size and digest checked on
/// the exact bytes received.
/// </summary>
/// <remarks>
/// Authentication follows the registry's <c>WWW-Authenticate</c> challenge: anonymous first, then
/// HTTP Basic or a Bearer token from the challenge's realm. Credentials only ever go to the
/// registry's own origin, to a token realm on that origin (or one the credentials list in
/// <see cref="RegistryCredentials.TokenHosts"/>), never to the target of a redirect to another
/// origin (where blobs are often served from object storage), and never from HTTPS down to HTTP.
/// Transient failures (connection errors, 5xx, 429, a body that stalls) are retried with
/// exponential backoff; wrong bytes are not: they are a <see cref="RegistryErrorKind.Verification"/>
/// error and nothing is stored.
/// </remarks>
public sealed class RegistryClient : IDisposable
{
    /// <summary>The most bytes read from a token service's answer or an error body.</summary>
    private const int MaxSmallBody = 1024 * 1024;

    private readonly HttpClient _http;
    private readonly RegistryClientOptions _options;
    private readonly ConcurrentDictionary<(string Authority, string Scope), CachedToken> _tokens = new();
    private readonly ConcurrentDictionary<string, bool> _basicAuthorities = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Creates a client.</summary>
    /// <param name="options">How to reach registries; defaults when null.</param>
    /// <param name="handler">The HTTP handler, for tests; a <see cref="SocketsHttpHandler"/> that never follows redirects by itself when null.</param>
    public RegistryClient(RegistryClientOptions? options = null, HttpMessageHandler? handler = null)
    {
        _options = options ?? new RegistryClientOptions();
        handler ??= new SocketsHttpHandler
        {
            // Redirects are followed here, so credentials can be dropped when the origin changes.
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(15),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = 32,
        };
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd(_options.UserAgent);
    }

    /// <summary>The options in use.</summary>
    public RegistryClientOptions Options => _options;

    /// <summary>Fetches a manifest or index by tag or digest and checks its digest.</summary>
    /// <param name="image">The repository (its tag or digest is used when <paramref name="reference"/> is null).</param>
    /// <param name="reference">A tag or a digest, or null for the image's own.</param>
    /// <param name="cancellationToken">Stops the request.</param>
    /// <returns>The manifest, its digest and its bytes.</returns>
    /// <exception cref="RegistryException">Not found, not allowed, unreachable, or the answer is wrong.</exception>
    public Task<FetchedManifest> GetManifestAsync(ImageReference image, string? reference, CancellationToken cancellationToken)
    {
        reference ??= image.ManifestReference;
        var wanted = Digest.TryParse(reference, out var parsed, out _) ? parsed : null;
        var what = $"{Name(image)}: manifest {Digest.Shorten(reference)}";
        return WithRetriesAsync(what, async ct =>
        {
            using var response = await SendAsync(image, ManifestUri(image, reference), MediaTypes.ManifestAccept, what, ct).ConfigureAwait(false);
            var bytes = await ReadCappedAsync(response, ManifestParser.MaxManifestBytes, what, ct).ConfigureAwait(false);
            var contentType = response.Content.Headers.ContentType?.MediaType;

            Digest? announced = null;
            if (response.Headers.TryGetValues("Docker-Content-Digest", out var values))
            {
                var header = values.FirstOrDefault();
                if (!Digest.TryParse(header, out announced, out var headerError))
                {
                    throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: the Docker-Content-Digest header is not a digest: {headerError}");
                }
            }
            var algorithm = wanted?.Algorithm ?? announced?.Algorithm ?? Digest.Sha256;
            var actual = Digest.Compute(algorithm, bytes);
            if (wanted is not null && actual != wanted)
            {
                throw new RegistryException(RegistryErrorKind.Verification, $"{what}: the {bytes.Length} bytes received hash to {actual}, not to the digest asked for");
            }
            if (announced is not null && Digest.Compute(announced.Algorithm, bytes) != announced)
            {
                throw new RegistryException(RegistryErrorKind.Verification,
                    $"{what}: the registry's Docker-Content-Digest says {announced}, but the {bytes.Length} bytes received hash to {Digest.Compute(announced.Algorithm, bytes)}");
            }

            ManifestDocument document;
            try
            {
                document = ManifestParser.Parse(bytes, contentType);
            }
            catch (OciFormatException e)
            {
                throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: {e.Message}", e);
            }
            var mediaType = document.MediaType ?? MediaTypes.Bare(contentType) ?? (document is ImageIndex ? MediaTypes.OciIndex : MediaTypes.OciManifest);
            return new FetchedManifest(actual, mediaType, bytes, document);
        }, cancellationToken);
    }

    /// <summary>
    /// Downloads a blob into <paramref name="store"/> unless it is there already. The bytes are
    /// checked against the descriptor's size and digest as they arrive; a wrong blob is never stored.
    /// </summary>
    /// <param name="image">The repository the blob belongs to.</param>
    /// <param name="blob">The blob's descriptor.</param>
    /// <param name="store">Where to put it.</param>
    /// <param name="progress">Told the bytes received so far, or null.</param>
    /// <param name="cancellationToken">Stops the download; nothing is stored.</param>
    /// <returns>The stored blob's path.</returns>
    /// <exception cref="RegistryException">Not found, not allowed, unreachable, or the bytes are wrong.</exception>
    public Task<string> DownloadBlobAsync(ImageReference image, Descriptor blob, BlobStore store, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        if (store.Contains(blob.Digest, blob.Size))
        {
            progress?.Report(blob.Size);
            return Task.FromResult(store.PathOf(blob.Digest));
        }
        var what = $"{Name(image)}: blob {blob.Digest}";
        return WithRetriesAsync(what, async ct =>
        {
            using var response = await SendAsync(image, BlobUri(image, blob.Digest), null, what, ct).ConfigureAwait(false);
            if (response.Content.Headers.ContentLength is { } length && length != blob.Size)
            {
                throw new RegistryException(RegistryErrorKind.Verification,
                    $"{what}: the registry sends {length} bytes, but the blob's descriptor says {blob.Size}; nothing stored");
            }
            var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                using var writer = store.BeginWrite(blob.Digest, blob.Size);
                try
                {
                    await CopyAsync(body, writer, progress, what, ct).ConfigureAwait(false);
                    return writer.Commit();
                }
                catch (BlobVerificationException e)
                {
                    throw new RegistryException(RegistryErrorKind.Verification, $"{Name(image)}: {e.Message}; nothing stored", e);
                }
            }
        }, cancellationToken);
    }

    /// <summary>Checks that the registry answers the API (<c>GET /v2/</c>), authenticating if it asks to.</summary>
    /// <param name="image">A repository of the registry (its scope is the one asked for).</param>
    /// <param name="cancellationToken">Stops the request.</param>
    /// <returns>A task that completes when the registry answered 200.</returns>
    public Task PingAsync(ImageReference image, CancellationToken cancellationToken)
    {
        var what = $"{image.Registry}: API check";
        return WithRetriesAsync(what, async ct =>
        {
            using var response = await SendAsync(image, new Uri(BaseUri(image.Registry), "/v2/"), null, what, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);
    }

    /// <summary>The base URI of a registry's API, as this client reaches it.</summary>
    /// <param name="registry">The registry as written in references (<c>docker.io</c>, <c>127.0.0.1:5000</c>).</param>
    /// <returns><c>https://host[:port]</c> (or <c>http://</c> for loopback and insecure registries).</returns>
    public Uri BaseUri(string registry)
    {
        var host = registry == ImageReference.DefaultRegistry ? "registry-1.docker.io" : registry;
        return new Uri($"{(IsInsecure(registry) ? "http" : "https")}://{host}/");
    }

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();

    private Uri ManifestUri(ImageReference image, string reference) => new(BaseUri(image.Registry), $"/v2/{image.Repository}/manifests/{reference}");

    private Uri BlobUri(ImageReference image, Digest digest) => new(BaseUri(image.Registry), $"/v2/{image.Repository}/blobs/{digest}");

    private bool IsInsecure(string registry)
    {
        if (_options.InsecureRegistries.Any(r => string.Equals(r, registry, StringComparison.OrdinalIgnoreCase)))
        {
            return true;
        }
        var host = registry;
        if (host.StartsWith('['))
        {
            var close = host.IndexOf(']', StringComparison.Ordinal);
            host = close > 0 ? host[1..close] : host;
        }
        else if (host.LastIndexOf(':') is var colon and > 0)
        {
            host = host[..colon];
        }
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
    }

    /// <summary>
    /// Sends a GET, following redirects and answering one authentication challenge, and returns a
    /// 2xx response; anything else becomes a <see cref="RegistryException"/>.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(ImageReference image, Uri uri, string? accept, string what, CancellationToken ct)
    {
        var origin = BaseUri(image.Registry);
        var scope = $"repository:{image.Repository}:pull";
        var authenticated = false;
        var current = uri;
        var redirects = 0;
        while (true)
        {
            var sameOrigin = SameOrigin(current, origin);
            using var request = new HttpRequestMessage(HttpMethod.Get, current);
            if (accept is not null)
            {
                request.Headers.TryAddWithoutValidation("Accept", accept);
            }
            if (sameOrigin)
            {
                request.Headers.Authorization = CachedAuthorization(image.Registry, scope);
            }

            var response = await SendWithTimeoutAsync(request, what, ct).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status is >= 200 and < 300)
            {
                return response;
            }
            using (response)
            {
                if (status is 301 or 302 or 303 or 307 or 308)
                {
                    current = RedirectTarget(current, response, what);
                    if (++redirects > _options.MaxRedirects)
                    {
                        throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: more than {_options.MaxRedirects} redirects");
                    }
                    continue;
                }
                if (status == 401 && sameOrigin && !authenticated)
                {
                    await AuthenticateAsync(image, scope, response, what, ct).ConfigureAwait(false);
                    authenticated = true;
                    continue;
                }
                throw await ErrorAsync(image, response, what, sameOrigin, authenticated, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task<HttpResponseMessage> SendWithTimeoutAsync(HttpRequestMessage request, string what, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.ResponseTimeout);
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new RegistryException(RegistryErrorKind.Unavailable, $"{what}: no response from {request.RequestUri!.Authority} within {_options.ResponseTimeout.TotalSeconds:0} s", e);
        }
        catch (HttpRequestException e)
        {
            throw new RegistryException(RegistryErrorKind.Unavailable, $"{what}: cannot reach {request.RequestUri!.Authority}: {e.Message}", e);
        }
    }

    private static Uri RedirectTarget(Uri current, HttpResponseMessage response, string what)
    {
        var location = response.Headers.Location
            ?? throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: redirect {(int)response.StatusCode} without a Location");
        var target = location.IsAbsoluteUri ? location : new Uri(current, location);
        if (target.Scheme is not ("http" or "https"))
        {
            throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: redirect to a {target.Scheme}: URL refused");
        }
        if (current.Scheme == "https" && target.Scheme == "http")
        {
            throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: redirect from HTTPS to plain HTTP ({target.Authority}) refused");
        }
        return target;
    }

    private AuthenticationHeaderValue? CachedAuthorization(string registry, string scope)
    {
        var authority = Authority(registry);
        if (_tokens.TryGetValue((authority, scope), out var token) && token.ExpiresAt > _options.Time.GetUtcNow())
        {
            return new AuthenticationHeaderValue("Bearer", token.Value);
        }
        if (_basicAuthorities.ContainsKey(authority) && _options.Credentials.Find(registry) is { } credentials)
        {
            return new AuthenticationHeaderValue("Basic", credentials.BasicHeaderValue);
        }
        return null;
    }

    private async Task AuthenticateAsync(ImageReference image, string scope, HttpResponseMessage response, string what, CancellationToken ct)
    {
        var challenges = new List<AuthChallenge>();
        if (response.Headers.TryGetValues("WWW-Authenticate", out var headers))
        {
            foreach (var header in headers)
            {
                if (!AuthChallenge.TryParse(header, out var parsed, out var error))
                {
                    throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: the registry's authentication challenge is malformed: {error}");
                }
                challenges.AddRange(parsed);
            }
        }
        var credentials = _options.Credentials.Find(image.Registry);
        var bearer = challenges.FirstOrDefault(c => c.IsBearer);
        if (bearer is not null)
        {
            await FetchTokenAsync(image, scope, bearer, credentials, what, ct).ConfigureAwait(false);
            return;
        }
        if (challenges.Any(c => c.IsBasic))
        {
            if (credentials is null)
            {
                throw new RegistryException(RegistryErrorKind.Unauthorized,
                    $"{what}: {image.Registry} requires a user name and password, and none is configured for it (add it to the registry credentials file)");
            }
            _basicAuthorities[Authority(image.Registry)] = true;
            return;
        }
        throw new RegistryException(RegistryErrorKind.Unauthorized,
            challenges.Count == 0
                ? $"{what}: {image.Registry} answered 401 without a WWW-Authenticate challenge"
                : $"{what}: {image.Registry} asks for {string.Join(", ", challenges.Select(c => c.Scheme))} authentication, which trc does not support (Basic and Bearer only)");
    }

    private async Task FetchTokenAsync(ImageReference image, string scope, AuthChallenge challenge, RegistryCredentials? credentials, string what, CancellationToken ct)
    {
        if (challenge.Realm is not { Length: > 0 } realmText || !Uri.TryCreate(realmText, UriKind.Absolute, out var realm) || realm.Scheme is not ("http" or "https"))
        {
            throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: the Bearer challenge's realm is not an http(s) URL: \"{Digest.Shorten(challenge.Realm ?? "")}\"");
        }
        var origin = BaseUri(image.Registry);
        if (origin.Scheme == "https" && realm.Scheme == "http")
        {
            throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: the registry is HTTPS but its token realm {realm.Authority} is plain HTTP; refused");
        }
        var sendCredentials = credentials is not null && MaySendCredentials(image.Registry, origin, realm, credentials);

        var query = new StringBuilder();
        if (challenge.Service is { } service)
        {
            query.Append("service=").Append(Uri.EscapeDataString(service));
        }
        foreach (var part in new[] { challenge.Scope, scope }.Where(s => s is not null).Distinct())
        {
            query.Append(query.Length > 0 ? "&" : "").Append("scope=").Append(Uri.EscapeDataString(part!));
        }
        var builder = new UriBuilder(realm);
        builder.Query = builder.Query.Length > 1 ? builder.Query[1..] + "&" + query : query.ToString();

        var tokenWhat = $"{what}: token from {realm.Authority}";
        using var request = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
        request.Headers.Accept.ParseAdd("application/json");
        if (sendCredentials)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", credentials!.BasicHeaderValue);
        }
        using var response = await SendWithTimeoutAsync(request, tokenWhat, ct).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        if (status is 401 or 403)
        {
            var why = credentials is null
                ? $"no credentials are configured for {image.Registry}"
                : sendCredentials
                    ? "it refused the configured credentials"
                    : $"the credentials for {image.Registry} were not sent, because {realm.Authority} is not the registry's host (list it under token_hosts in the credentials file if it is trusted)";
            throw new RegistryException(RegistryErrorKind.Unauthorized, $"{tokenWhat}: {status}: {why}");
        }
        if (status is >= 500 or 429)
        {
            throw new RegistryException(RegistryErrorKind.Unavailable, $"{tokenWhat}: the token service answered {status}");
        }
        if (status is < 200 or >= 300)
        {
            throw new RegistryException(RegistryErrorKind.BadResponse, $"{tokenWhat}: the token service answered {status}");
        }
        var body = await ReadCappedAsync(response, MaxSmallBody, tokenWhat, ct).ConfigureAwait(false);
        var (token, expiresIn) = ParseToken(body, tokenWhat);
        // A token shorter-lived than 60 s is treated as 60 s, as the distribution spec says; renewed a little early.
        var lifetime = TimeSpan.FromSeconds(Math.Max(expiresIn ?? 60, 60)) - TimeSpan.FromSeconds(5);
        _tokens[(Authority(image.Registry), scope)] = new CachedToken(token, _options.Time.GetUtcNow() + lifetime);
    }

    internal static (string Token, int? ExpiresIn) ParseToken(ReadOnlySpan<byte> body, string what)
    {
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 8 });
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: the answer is not a JSON object");
            }
            string? token = null;
            foreach (var name in (string[])["token", "access_token"])
            {
                if (root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text)
                {
                    token = text;
                    break;
                }
            }
            if (token is null)
            {
                throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: the answer has no \"token\" or \"access_token\"");
            }
            if (token.Length > 64 * 1024 || token.Any(c => c <= ' ' || c >= 0x7f))
            {
                throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: the token is not a printable ASCII string of at most 64 KiB");
            }
            int? expiresIn = null;
            if (root.TryGetProperty("expires_in", out var expires))
            {
                if (expires.ValueKind != JsonValueKind.Number || !expires.TryGetInt32(out var seconds) || seconds < 0)
                {
                    throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: expires_in is not a number of seconds");
                }
                expiresIn = seconds;
            }
            return (token, expiresIn);
        }
        catch (JsonException e)
        {
            throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: the answer is not valid JSON ({e.Message})", e);
        }
    }

    private static bool MaySendCredentials(string registry, Uri origin, Uri realm, RegistryCredentials credentials)
    {
        if (SameOrigin(realm, origin))
        {
            return true;
        }
        var host = realm.IsDefaultPort ? realm.Host : realm.Authority;
        if (credentials.TokenHosts.Any(h => string.Equals(h, realm.Host, StringComparison.OrdinalIgnoreCase) || string.Equals(h, host, StringComparison.OrdinalIgnoreCase) || string.Equals(h, realm.Authority, StringComparison.OrdinalIgnoreCase)))
        {
            return true;
        }
        // Docker Hub's registry and token service live on different hosts of one operator.
        return registry == ImageReference.DefaultRegistry && realm.Scheme == "https" && realm.Host == "auth.docker.io";
    }

    private async Task<RegistryException> ErrorAsync(ImageReference image, HttpResponseMessage response, string what, bool sameOrigin, bool authenticated, CancellationToken ct)
    {
        var status = (int)response.StatusCode;
        var detail = await ErrorDetailAsync(response, ct).ConfigureAwait(false);
        var suffix = detail is null ? "" : $" ({detail})";
        var host = response.RequestMessage?.RequestUri?.Authority ?? image.Registry;
        switch (status)
        {
            case 404:
                return new RegistryException(RegistryErrorKind.NotFound, $"{what}: not found{suffix}");
            case 401 when !sameOrigin:
                return new RegistryException(RegistryErrorKind.Unauthorized,
                    $"{what}: redirected to {host}, which wants credentials; trc never sends a registry's credentials to another host");
            case 401:
                var credentials = _options.Credentials.Find(image.Registry);
                return new RegistryException(RegistryErrorKind.Unauthorized,
                    credentials is null
                        ? $"{what}: {image.Registry} wants credentials, and none is configured for it{suffix}"
                        : $"{what}: {image.Registry} refused the credentials{(authenticated ? "" : " it was sent")}{suffix}");
            case 403:
                return new RegistryException(RegistryErrorKind.Denied, $"{what}: access denied{suffix}");
            case 429 or >= 500:
                var retryAfter = response.Headers.RetryAfter?.Delta
                    ?? (response.Headers.RetryAfter?.Date is { } date ? date - _options.Time.GetUtcNow() : null);
                return new RegistryException(RegistryErrorKind.Unavailable, $"{what}: {host} answered {status}{suffix}") { RetryAfter = retryAfter };
            default:
                return new RegistryException(RegistryErrorKind.BadResponse, $"{what}: {host} answered {status}{suffix}");
        }
    }

    /// <summary>The first <c>errors[]</c> entry of a registry error body, as <c>CODE: message</c>, or null.</summary>
    private static async Task<string?> ErrorDetailAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            var bytes = await ReadCappedAsync(response, 64 * 1024, "error body", ct).ConfigureAwait(false);
            using var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 8 });
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("errors", out var errors)
                && errors.ValueKind == JsonValueKind.Array
                && errors.GetArrayLength() > 0
                && errors[0].ValueKind == JsonValueKind.Object)
            {
                var code = errors[0].TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                var message = errors[0].TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
                var text = string.Join(": ", new[] { code, message }.Where(s => !string.IsNullOrEmpty(s)));
                return text.Length == 0 ? null : Digest.Shorten(new string(text.Select(ch => char.IsControl(ch) ? ' ' : ch).ToArray()));
            }
        }
        catch (Exception e) when (e is JsonException or RegistryException or IOException or HttpRequestException)
        {
            // The status alone is the error; a body that is not the spec's JSON adds nothing.
        }
        return null;
    }

    private static async Task<byte[]> ReadCappedAsync(HttpResponseMessage response, int maxBytes, string what, CancellationToken ct)
    {
        if (response.Content.Headers.ContentLength is { } length && length > maxBytes)
        {
            throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: the answer is {length} bytes, more than the {maxBytes} allowed");
        }
        var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                {
                    throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: the answer is more than the {maxBytes} bytes allowed");
                }
                buffer.Write(chunk, 0, read);
            }
            return buffer.ToArray();
        }
    }

    private async Task CopyAsync(Stream body, Stream destination, IProgress<long>? progress, string what, CancellationToken ct)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(256 * 1024);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            long total = 0;
            while (true)
            {
                // Re-arming the timer per read: the limit is on silence, not on the whole download.
                stall.CancelAfter(_options.StallTimeout);
                int read;
                try
                {
                    read = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
                {
                    throw new RegistryException(RegistryErrorKind.Unavailable, $"{what}: no data for {_options.StallTimeout.TotalSeconds:0} s after {total} bytes", e);
                }
                if (read == 0)
                {
                    return;
                }
                await destination.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                total += read;
                progress?.Report(total);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task<T> WithRetriesAsync<T>(string what, Func<CancellationToken, Task<T>> attempt, CancellationToken ct)
    {
        for (var n = 1; ; n++)
        {
            try
            {
                return await attempt(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e, ct) && n < _options.MaxAttempts)
            {
                var delay = TimeSpan.FromTicks(Math.Min(_options.RetryDelay.Ticks * (1L << Math.Min(n - 1, 20)), _options.MaxRetryDelay.Ticks));
                if (e is RegistryException { RetryAfter: { } after } && after > delay)
                {
                    delay = after < _options.MaxRetryDelay ? after : _options.MaxRetryDelay;
                }
                await Task.Delay(delay, _options.Time, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e, ct))
            {
                var reason = e is RegistryException ? e.Message : $"{what}: {e.Message}";
                throw new RegistryException(RegistryErrorKind.Unavailable, $"{reason} (gave up after {_options.MaxAttempts} attempts)", e);
            }
        }
    }

    private static bool IsTransient(Exception e, CancellationToken ct) => e switch
    {
        RegistryException r => r.IsTransient,
        HttpRequestException or IOException => true,
        OperationCanceledException => !ct.IsCancellationRequested,
        _ => false,
    };

    private static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    private string Authority(string registry) => BaseUri(registry).Authority;

    private static string Name(ImageReference image) => $"{image.Registry}/{image.Repository}";

    private sealed record CachedToken(string Value, DateTimeOffset ExpiresAt);
}

/// <summary>A manifest or index as fetched: its verified digest, media type, bytes and parsed form.</summary>
/// <param name="Digest">The digest of <paramref name="Bytes"/>.</param>
/// <param name="MediaType">The media type.</param>
/// <param name="Bytes">The exact bytes received.</param>
/// <param name="Document">The parsed manifest or index.</param>
public sealed record FetchedManifest(Digest Digest, string MediaType, byte[] Bytes, ManifestDocument Document);
