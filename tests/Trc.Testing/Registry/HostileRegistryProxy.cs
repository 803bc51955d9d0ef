using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trc.Testing.Registry;

/// <summary>What the proxy does to the body of a matching GET response (200 or 206).</summary>
public enum BodyFault
{
    None,

    /// <summary>Flips the bits of the middle byte; the length stays right.</summary>
    CorruptOneByte,

    /// <summary>Drops the last <see cref="HostileRegistryProxy.BodyFaultBytes"/> bytes, with a Content-Length that matches.</summary>
    Truncate,

    /// <summary>Appends <see cref="HostileRegistryProxy.BodyFaultBytes"/> bytes, with a Content-Length that matches.</summary>
    AppendExtra,

    /// <summary>Sends the full Content-Length and half the body, then closes the connection.</summary>
    CutMidBody,
}

/// <summary>Where the proxy sends a blob GET that the registry answered 200.</summary>
public enum BlobRedirect
{
    None,

    /// <summary>To the same path on the proxy's own host, marked so it is then served (a legit redirect).</summary>
    SameHost,

    /// <summary>To another host (127.0.0.2, as a CDN or S3 would be), which serves the bytes and records the headers it got.</summary>
    OtherHost,
}

/// <summary>A request the proxy handled.</summary>
/// <param name="Fault">What the proxy did to it, e.g. "503", "CorruptOneByte", "redirect:OtherHost"; null when it passed through.</param>
public sealed record ProxiedRequest(string Method, string Target, bool HadAuthorization, int Status, string? Fault)
{
    public string Path => Target.IndexOf('?') is var i and >= 0 ? Target[..i] : Target;
}

/// <summary>A request the redirect target (the other host) received, with every header.</summary>
public sealed record RecordedRequest(string Method, string Target, IReadOnlyList<KeyValuePair<string, string>> Headers)
{
    public string? Header(string name) => Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    public bool HasHeader(string name) => Header(name) is not null;
}

/// <summary>
/// An HTTP/1.1 reverse proxy in front of a <see cref="LocalRegistry"/> that a test switches into
/// misbehaving: corrupt or resized blob bodies, a wrong Docker-Content-Digest on manifests, blob
/// redirects to this host or another one, 503s for the first N requests, connections cut mid-body.
/// Each request is forwarded on a fresh upstream connection with its Host header unchanged, so the
/// registry's absolute upload Locations point back at the proxy. Bodies are buffered whole.
/// </summary>
public sealed class HostileRegistryProxy : IAsyncDisposable
{
    /// <summary>The query parameter that marks a request as the second leg of a same-host redirect.</summary>
    public const string RedirectedMarker = "trc-redirected=1";

    private readonly string _upstreamHost;
    private readonly int _upstreamPort;
    private readonly LoopbackHttpServer _front;
    private readonly LoopbackHttpServer _other;
    private readonly string _otherHostName;
    private readonly ConcurrentDictionary<string, (byte[] Body, string ContentType)> _parked = new();
    private readonly List<ProxiedRequest> _requests = [];
    private readonly List<RecordedRequest> _otherRequests = [];
    private readonly Lock _failLock = new();
    private int _failRemaining;
    private Func<WireRequest, bool> _failMatches = _ => true;
    private int _failStatus = 503;
    private string? _failRetryAfter;

    private HostileRegistryProxy(string upstreamHost, int upstreamPort)
    {
        _upstreamHost = upstreamHost;
        _upstreamPort = upstreamPort;
        _front = new LoopbackHttpServer(IPAddress.Loopback, HandleFrontAsync);
        // Another loopback address is another host to any client. Linux routes all of 127/8 to lo;
        // where it does not, "localhost" is still another host name than "127.0.0.1".
        try
        {
            _other = new LoopbackHttpServer(IPAddress.Parse("127.0.0.2"), HandleOtherAsync);
            _otherHostName = "127.0.0.2";
        }
        catch (SocketException)
        {
            _other = new LoopbackHttpServer(IPAddress.Loopback, HandleOtherAsync);
            _otherHostName = "localhost";
        }
    }

    public static HostileRegistryProxy Start(LocalRegistry registry) => new("127.0.0.1", registry.Port);

    public static HostileRegistryProxy Start(string upstreamHost, int upstreamPort) => new(upstreamHost, upstreamPort);

    /// <summary><c>127.0.0.1:PORT</c>: what an image reference through the proxy names.</summary>
    public string Host => $"127.0.0.1:{_front.Port}";

    public Uri Address => new($"http://{Host}/");

    /// <summary>The other host blob redirects go to, <c>127.0.0.2:PORT</c> (or <c>localhost:PORT</c>).</summary>
    public string RedirectHost => $"{_otherHostName}:{_other.Port}";

    /// <summary>Applied to GET responses whose path <see cref="BodyFaultAppliesTo"/> accepts.</summary>
    public BodyFault BodyFault { get; set; }

    /// <summary>How many bytes <see cref="BodyFault.Truncate"/> drops or <see cref="BodyFault.AppendExtra"/> adds.</summary>
    public int BodyFaultBytes { get; set; } = 1;

    /// <summary>Which request paths body faults touch; blobs by default.</summary>
    public Func<string, bool> BodyFaultAppliesTo { get; set; } = IsBlobPath;

    /// <summary>When true, manifest GET and HEAD answers carry a valid but different Docker-Content-Digest.</summary>
    public bool ReplaceManifestDigest { get; set; }

    /// <summary>The digest <see cref="ReplaceManifestDigest"/> puts in the header.</summary>
    public string ReplacementDigest { get; } = ImageTools.Sha256Digest("trc hostile proxy: not the manifest"u8);

    public BlobRedirect BlobRedirect { get; set; }

    /// <summary>The status of blob redirects: 307 by default; 302 and 303 also occur in the wild.</summary>
    public int RedirectStatus { get; set; } = 307;

    /// <summary>When true a same-host redirect's Location is a relative reference (path and query only).</summary>
    public bool RelativeRedirectLocation { get; set; }

    /// <summary>Every request the proxy handled, oldest first.</summary>
    public IReadOnlyList<ProxiedRequest> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>Every request the other host received, oldest first.</summary>
    public IReadOnlyList<RecordedRequest> RedirectTargetRequests
    {
        get
        {
            lock (_otherRequests)
            {
                return [.. _otherRequests];
            }
        }
    }

    public int RequestCount
    {
        get
        {
            lock (_requests)
            {
                return _requests.Count;
            }
        }
    }

    public int CountRequests(Func<ProxiedRequest, bool> predicate) => Requests.Count(predicate);

    /// <summary>Answers the next <paramref name="count"/> matching requests (all, by default) with a status, without forwarding them.</summary>
    public void FailNext(int count, Func<WireRequest, bool>? matches = null, int status = 503, string? retryAfter = null)
    {
        lock (_failLock)
        {
            _failRemaining = count;
            _failMatches = matches ?? (_ => true);
            _failStatus = status;
            _failRetryAfter = retryAfter;
        }
    }

    /// <summary>Back to a faithful proxy; the request logs are kept.</summary>
    public void Reset()
    {
        BodyFault = BodyFault.None;
        BodyFaultBytes = 1;
        BodyFaultAppliesTo = IsBlobPath;
        ReplaceManifestDigest = false;
        BlobRedirect = BlobRedirect.None;
        RedirectStatus = 307;
        RelativeRedirectLocation = false;
        FailNext(0);
    }

    /// <summary><c>/v2/NAME/blobs/ALG:HEX</c> (not uploads).</summary>
    public static bool IsBlobPath(string path) =>
        path.StartsWith("/v2/", StringComparison.Ordinal) && path.LastIndexOf("/blobs/", StringComparison.Ordinal) is var i and > 4
        && path.IndexOf(':', i) > 0 && !path.Contains("/blobs/uploads", StringComparison.Ordinal);

    /// <summary><c>/v2/NAME/manifests/REF</c>.</summary>
    public static bool IsManifestPath(string path) =>
        path.StartsWith("/v2/", StringComparison.Ordinal) && path.Contains("/manifests/", StringComparison.Ordinal);

    private async Task<WireResponse> HandleFrontAsync(WireRequest request, CancellationToken ct)
    {
        var hadAuthorization = request.Head.Has("Authorization");
        if (TakeFailure(request) is { } failure)
        {
            Record(request, hadAuthorization, failure.Status, failure.Status.ToString(CultureInfo.InvariantCulture));
            return failure;
        }
        var upstream = await ForwardAsync(request, ct);
        string? fault = null;
        var isGetOk = request.Method == "GET" && upstream.Status is 200 or 206;
        var redirected = request.Query.Contains(RedirectedMarker, StringComparison.Ordinal);
        if (isGetOk && BlobRedirect != BlobRedirect.None && IsBlobPath(request.Path) && !redirected)
        {
            upstream = Redirect(request, upstream);
            fault = "redirect:" + BlobRedirect;
        }
        else if (isGetOk && BodyFault != BodyFault.None && BodyFaultAppliesTo(request.Path))
        {
            ApplyBodyFault(upstream, BodyFault, BodyFaultBytes);
            fault = BodyFault.ToString();
        }
        if (ReplaceManifestDigest && IsManifestPath(request.Path) && upstream.Status is 200 or 201
            && upstream.Headers.RemoveAll(h => h.Key.Equals("Docker-Content-Digest", StringComparison.OrdinalIgnoreCase)) > 0)
        {
            upstream.Headers.Add(new("Docker-Content-Digest", ReplacementDigest));
            fault = (fault is null ? "" : fault + ",") + "digest-header";
        }
        Record(request, hadAuthorization, upstream.Status, fault);
        return upstream;
    }

    private WireResponse? TakeFailure(WireRequest request)
    {
        lock (_failLock)
        {
            if (_failRemaining <= 0 || !_failMatches(request))
            {
                return null;
            }
            _failRemaining--;
            var response = WireResponse.Json(_failStatus,
                """{"errors":[{"code":"UNAVAILABLE","message":"hostile proxy: try again","detail":null}]}""");
            if (_failRetryAfter is { } retryAfter)
            {
                response.Headers.Add(new("Retry-After", retryAfter));
            }
            return response;
        }
    }

    private WireResponse Redirect(WireRequest request, WireResponse upstream)
    {
        string location;
        if (BlobRedirect == BlobRedirect.SameHost)
        {
            var target = request.Target + (request.Query.Length == 0 ? "?" : "&") + RedirectedMarker;
            location = RelativeRedirectLocation ? target : $"http://{request.Head.Get("Host") ?? Host}{target}";
        }
        else
        {
            // A presigned-URL look-alike: the key in the query is the only credential the other host wants.
            var key = Guid.NewGuid().ToString("N");
            _parked[key] = (upstream.Body, upstream.Headers.FirstOrDefault(h => h.Key.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)).Value ?? "application/octet-stream");
            var digest = request.Path[(request.Path.LastIndexOf('/') + 1)..];
            location = $"http://{RedirectHost}/blobs/{digest}?X-Trc-Signature={key}";
        }
        return new WireResponse(RedirectStatus, Encoding.UTF8.GetBytes($"<a href=\"{location}\">redirect</a>\n"),
            ("Location", location), ("Content-Type", "text/html; charset=utf-8"), ("Docker-Distribution-Api-Version", "registry/2.0"));
    }

    private static void ApplyBodyFault(WireResponse response, BodyFault fault, int bytes)
    {
        var body = response.Body;
        switch (fault)
        {
            case BodyFault.CorruptOneByte when body.Length > 0:
                body = (byte[])body.Clone();
                body[body.Length / 2] ^= 0xFF;
                break;
            case BodyFault.Truncate:
                body = body[..Math.Max(0, body.Length - bytes)];
                break;
            case BodyFault.AppendExtra:
                body = [.. body, .. Enumerable.Repeat((byte)'X', bytes)];
                break;
            case BodyFault.CutMidBody:
                response.CutAfterBodyBytes = body.Length / 2;
                break;
        }
        response.Body = body;
        response.Headers.RemoveAll(h => h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase));
        response.Headers.Add(new("Content-Length", response.Body.Length.ToString(CultureInfo.InvariantCulture)));
    }

    private async Task<WireResponse> ForwardAsync(WireRequest request, CancellationToken ct)
    {
        using var upstream = new TcpClient { NoDelay = true };
        try
        {
            await upstream.ConnectAsync(_upstreamHost, _upstreamPort, ct);
        }
        catch (SocketException e)
        {
            return WireResponse.Text(502, $"hostile proxy: upstream {_upstreamHost}:{_upstreamPort} refused: {e.Message}\n");
        }
        var stream = upstream.GetStream();
        var headers = request.Head.Headers.Where(h => !WireWriter.HopByHop.Contains(h.Key)
            && !h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)).ToList();
        if (request.Body.Length > 0 || request.Method is "POST" or "PUT" or "PATCH")
        {
            headers.Add(new("Content-Length", request.Body.Length.ToString(CultureInfo.InvariantCulture)));
        }
        headers.Add(new("Connection", "close"));
        await stream.WriteAsync(WireWriter.Head($"{request.Method} {request.Target} HTTP/1.1", headers), ct);
        await stream.WriteAsync(request.Body, ct);
        await stream.FlushAsync(ct);
        var reader = new WireReader(stream);
        WireHead head;
        int status;
        do
        {
            head = await reader.ReadHeadAsync(ct) ?? throw new IOException("The registry closed the connection without answering.");
            status = int.Parse(head.StartLine.Split(' ')[1], CultureInfo.InvariantCulture);
        }
        while (status is >= 100 and < 200);
        var body = await reader.ReadResponseBodyAsync(head, request.Method, status, ct);
        var response = new WireResponse(status, body);
        foreach (var h in head.Headers.Where(h => !WireWriter.HopByHop.Contains(h.Key)))
        {
            // A HEAD answer keeps the registry's Content-Length; any other gets the length of the de-chunked body.
            if (h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && request.Method != "HEAD")
            {
                continue;
            }
            response.Headers.Add(h);
        }
        return response;
    }

    private Task<WireResponse> HandleOtherAsync(WireRequest request, CancellationToken ct)
    {
        lock (_otherRequests)
        {
            _otherRequests.Add(new RecordedRequest(request.Method, request.Target, [.. request.Head.Headers]));
        }
        var key = request.QueryValues("X-Trc-Signature").FirstOrDefault();
        if (key is null || !_parked.TryGetValue(key, out var parked))
        {
            return Task.FromResult(WireResponse.Text(403, "no such signature\n"));
        }
        if (request.Method is not ("GET" or "HEAD"))
        {
            return Task.FromResult(WireResponse.Text(405, "GET or HEAD\n"));
        }
        var body = parked.Body;
        var response = new WireResponse(200, body, ("Content-Type", parked.ContentType), ("Accept-Ranges", "bytes"));
        // Enough of Range for a client that resumes: "bytes=N-" and "bytes=N-M".
        if (request.Head.Get("Range") is { } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.IndexOf(',') < 0)
        {
            var parts = range[6..].Split('-');
            if (long.TryParse(parts[0], CultureInfo.InvariantCulture, out var first) && first < body.Length)
            {
                var last = parts.Length > 1 && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var l) ? Math.Min(l, body.Length - 1) : body.Length - 1;
                response = new WireResponse(206, body[(int)first..(int)(last + 1)],
                    ("Content-Type", parked.ContentType), ("Content-Range", $"bytes {first}-{last}/{body.Length}"));
            }
            else
            {
                response = new WireResponse(416, [], ("Content-Range", $"bytes */{body.Length}"));
            }
        }
        if (request.Method == "HEAD")
        {
            response.Headers.Add(new("Content-Length", response.Body.Length.ToString(CultureInfo.InvariantCulture)));
        }
        return Task.FromResult(response);
    }

    private void Record(WireRequest request, bool hadAuthorization, int status, string? fault)
    {
        lock (_requests)
        {
            _requests.Add(new ProxiedRequest(request.Method, request.Target, hadAuthorization, status, fault));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _front.DisposeAsync();
        await _other.DisposeAsync();
    }
}
