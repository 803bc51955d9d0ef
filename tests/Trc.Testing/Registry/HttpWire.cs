using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trc.Testing.Registry;

/// <summary>An HTTP/1.1 message head: the start line and the header fields in arrival order.</summary>
public sealed class WireHead(string startLine, List<KeyValuePair<string, string>> headers)
{
    public string StartLine { get; } = startLine;

    public List<KeyValuePair<string, string>> Headers { get; } = headers;

    /// <summary>The first value of a header, or null.</summary>
    public string? Get(string name)
    {
        foreach (var (key, value) in Headers)
        {
            if (key.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }
        return null;
    }

    public bool Has(string name) => Get(name) is not null;

    public void Remove(string name) => Headers.RemoveAll(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase));

    public void Set(string name, string value)
    {
        Remove(name);
        Headers.Add(new(name, value));
    }

    public bool IsChunked => Get("Transfer-Encoding")?.Contains("chunked", StringComparison.OrdinalIgnoreCase) == true;

    public long? ContentLength =>
        long.TryParse(Get("Content-Length"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    public bool WantsClose => Get("Connection")?.Contains("close", StringComparison.OrdinalIgnoreCase) == true;
}

/// <summary>A request read whole (body de-chunked) by a <see cref="LoopbackHttpServer"/>.</summary>
public sealed record WireRequest(string Method, string Target, WireHead Head, byte[] Body)
{
    public string Path => Target.IndexOf('?') is var i and >= 0 ? Target[..i] : Target;

    public string Query => Target.IndexOf('?') is var i and >= 0 ? Target[(i + 1)..] : "";

    /// <summary>The decoded values of one query parameter, in order.</summary>
    public IReadOnlyList<string> QueryValues(string name) =>
        [.. Query.Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .Where(p => Uri.UnescapeDataString(p[0]) == name)
            .Select(p => p.Length == 2 ? Uri.UnescapeDataString(p[1].Replace('+', ' ')) : "")];
}

/// <summary>
/// A response for a <see cref="LoopbackHttpServer"/> to write. Content-Length is added from the body
/// unless a header gives one (a HEAD answer, or a lie on purpose).
/// </summary>
public sealed class WireResponse
{
    public WireResponse(int status, byte[]? body = null, params (string Name, string Value)[] headers)
    {
        Status = status;
        Body = body ?? [];
        foreach (var (name, value) in headers)
        {
            Headers.Add(new(name, value));
        }
    }

    public int Status { get; set; }

    public List<KeyValuePair<string, string>> Headers { get; } = [];

    public byte[] Body { get; set; }

    /// <summary>When set, the connection is closed after this many body bytes, whatever Content-Length says.</summary>
    public int? CutAfterBodyBytes { get; set; }

    public static WireResponse Text(int status, string body, string contentType = "text/plain; charset=utf-8") =>
        new(status, Encoding.UTF8.GetBytes(body), ("Content-Type", contentType));

    public static WireResponse Json(int status, string json) => Text(status, json, "application/json");
}

/// <summary>Reads HTTP/1.1 heads and bodies from a stream, with a cap on line length.</summary>
public sealed class WireReader(Stream stream)
{
    private const int MaxLine = 64 * 1024;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    /// <summary>The next head, or null at a clean end of stream before any byte of it.</summary>
    public async Task<WireHead?> ReadHeadAsync(CancellationToken ct)
    {
        string? start;
        do
        {
            start = await ReadLineAsync(ct);
            if (start is null)
            {
                return null;
            }
        }
        while (start.Length == 0); // RFC 9112 2.2: ignore empty lines before a request line
        var headers = new List<KeyValuePair<string, string>>();
        while (true)
        {
            var line = await ReadLineAsync(ct) ?? throw new IOException("The stream ended inside a message head.");
            if (line.Length == 0)
            {
                return new WireHead(start, headers);
            }
            var colon = line.IndexOf(':');
            if (colon <= 0)
            {
                throw new IOException($"Malformed header line: {line}");
            }
            headers.Add(new(line[..colon].Trim(), line[(colon + 1)..].Trim()));
        }
    }

    /// <summary>A request body as the head frames it (chunked, Content-Length, or none).</summary>
    public Task<byte[]> ReadRequestBodyAsync(WireHead head, CancellationToken ct) =>
        head.IsChunked ? ReadChunkedAsync(ct)
        : head.ContentLength is { } n ? ReadExactAsync(n, ct)
        : Task.FromResult(Array.Empty<byte>());

    /// <summary>A response body as RFC 9112 6.3 frames it; a body without framing runs to the end of the stream.</summary>
    public Task<byte[]> ReadResponseBodyAsync(WireHead head, string requestMethod, int status, CancellationToken ct) =>
        requestMethod == "HEAD" || status is < 200 or 204 or 304 ? Task.FromResult(Array.Empty<byte>())
        : head.IsChunked ? ReadChunkedAsync(ct)
        : head.ContentLength is { } n ? ReadExactAsync(n, ct)
        : ReadToEndAsync(ct);

    public async Task<byte[]> ReadExactAsync(long count, CancellationToken ct)
    {
        var result = new byte[count];
        var done = 0;
        while (done < count)
        {
            if (_start == _end && !await FillAsync(ct))
            {
                throw new IOException($"The stream ended after {done} of {count} body bytes.");
            }
            var n = (int)Math.Min(count - done, _end - _start);
            _buffer.AsSpan(_start, n).CopyTo(result.AsSpan(done));
            _start += n;
            done += n;
        }
        return result;
    }

    public async Task<byte[]> ReadToEndAsync(CancellationToken ct)
    {
        var ms = new MemoryStream();
        do
        {
            ms.Write(_buffer, _start, _end - _start);
            _start = _end;
        }
        while (await FillAsync(ct));
        return ms.ToArray();
    }

    private async Task<byte[]> ReadChunkedAsync(CancellationToken ct)
    {
        var ms = new MemoryStream();
        while (true)
        {
            var line = await ReadLineAsync(ct) ?? throw new IOException("The stream ended inside a chunked body.");
            var size = line.IndexOf(';') is var semi and >= 0 ? line[..semi] : line;
            if (!long.TryParse(size.Trim(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var n) || n < 0)
            {
                throw new IOException($"Malformed chunk size: {line}");
            }
            if (n == 0)
            {
                // Trailer fields, up to the empty line; dropped.
                while ((await ReadLineAsync(ct) ?? "").Length > 0)
                {
                }
                return ms.ToArray();
            }
            ms.Write(await ReadExactAsync(n, ct));
            if ((await ReadLineAsync(ct))?.Length != 0)
            {
                throw new IOException("A chunk was not followed by CRLF.");
            }
        }
    }

    private async Task<string?> ReadLineAsync(CancellationToken ct)
    {
        var line = new StringBuilder();
        while (true)
        {
            if (_start == _end && !await FillAsync(ct))
            {
                return line.Length == 0 ? null : throw new IOException("The stream ended inside a line.");
            }
            var span = _buffer.AsSpan(_start, _end - _start);
            var lf = span.IndexOf((byte)'\n');
            var take = lf >= 0 ? lf : span.Length;
            line.Append(Encoding.Latin1.GetString(span[..take]));
            _start += lf >= 0 ? take + 1 : take;
            if (line.Length > MaxLine)
            {
                throw new IOException("A line is over the 64 KiB cap.");
            }
            if (lf >= 0)
            {
                return line.Length > 0 && line[^1] == '\r' ? line.ToString(0, line.Length - 1) : line.ToString();
            }
        }
    }

    private async Task<bool> FillAsync(CancellationToken ct)
    {
        _start = 0;
        _end = await stream.ReadAsync(_buffer, ct);
        return _end > 0;
    }
}

/// <summary>Writes HTTP/1.1 messages.</summary>
public static class WireWriter
{
    public static readonly IReadOnlySet<string> HopByHop = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "TE", "Trailer", "Upgrade", "Expect",
        "Proxy-Authenticate", "Proxy-Authorization",
    };

    public static byte[] Head(string startLine, IEnumerable<KeyValuePair<string, string>> headers)
    {
        var sb = new StringBuilder(startLine).Append("\r\n");
        foreach (var (name, value) in headers)
        {
            sb.Append(name).Append(": ").Append(value).Append("\r\n");
        }
        return Encoding.Latin1.GetBytes(sb.Append("\r\n").ToString());
    }

    public static string Reason(int status) => status switch
    {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
}

/// <summary>
/// A minimal HTTP/1.1 server on a loopback address and a free port: keep-alive, chunked or sized
/// request bodies, Expect: 100-continue, and responses that can be cut short on purpose. Each request
/// is read whole before the handler runs; test bodies are small.
/// </summary>
public sealed class LoopbackHttpServer : IAsyncDisposable
{
    private readonly Func<WireRequest, CancellationToken, Task<WireResponse>> _handler;
    private readonly List<TcpClient> _connections = [];
    private readonly LoopbackListener _listener;

    public LoopbackHttpServer(IPAddress address, Func<WireRequest, CancellationToken, Task<WireResponse>> handler)
    {
        _handler = handler;
        _listener = new LoopbackListener(address, ServeAsync);
    }

    public IPAddress Address => _listener.EndPoint.Address;

    public int Port => _listener.EndPoint.Port;

    private async Task ServeAsync(TcpClient client, CancellationToken ct)
    {
        client.NoDelay = true;
        lock (_connections)
        {
            _connections.Add(client);
        }
        try
        {
            var stream = client.GetStream();
            var reader = new WireReader(stream);
            while (true)
            {
                var head = await reader.ReadHeadAsync(ct);
                if (head is null)
                {
                    return;
                }
                var parts = head.StartLine.Split(' ');
                if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
                {
                    await WriteAsync(stream, "GET", WireResponse.Text(400, "bad request line\n"), ct);
                    return;
                }
                if (head.Get("Expect")?.Equals("100-continue", StringComparison.OrdinalIgnoreCase) == true)
                {
                    await stream.WriteAsync("HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray(), ct);
                }
                var request = new WireRequest(parts[0], parts[1], head, await reader.ReadRequestBodyAsync(head, ct));
                WireResponse response;
                try
                {
                    response = await _handler(request, ct);
                }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    response = WireResponse.Text(500, $"fixture handler failed: {e}\n");
                    response.Headers.Add(new("Connection", "close"));
                }
                if (!await WriteAsync(stream, request.Method, response, ct) || head.WantsClose || parts[2] == "HTTP/1.0"
                    || response.Headers.Any(h => h.Key.Equals("Connection", StringComparison.OrdinalIgnoreCase) && h.Value == "close"))
                {
                    return;
                }
            }
        }
        catch (Exception)
        {
            // The peer went away, or the server is stopping.
        }
        finally
        {
            lock (_connections)
            {
                _connections.Remove(client);
            }
            client.Dispose();
        }
    }

    /// <summary>Writes the response; false when it was cut and the connection must close.</summary>
    private static async Task<bool> WriteAsync(Stream stream, string method, WireResponse response, CancellationToken ct)
    {
        var headers = new List<KeyValuePair<string, string>>(response.Headers);
        var noBody = method == "HEAD" || response.Status is < 200 or 204 or 304;
        if (!noBody && !headers.Any(h => h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)))
        {
            headers.Add(new("Content-Length", response.Body.Length.ToString(CultureInfo.InvariantCulture)));
        }
        await stream.WriteAsync(WireWriter.Head($"HTTP/1.1 {response.Status} {WireWriter.Reason(response.Status)}", headers), ct);
        if (noBody)
        {
            await stream.FlushAsync(ct);
            return true;
        }
        if (response.CutAfterBodyBytes is { } cut)
        {
            await stream.WriteAsync(response.Body.AsMemory(0, Math.Min(cut, response.Body.Length)), ct);
            await stream.FlushAsync(ct);
            return false;
        }
        await stream.WriteAsync(response.Body, ct);
        await stream.FlushAsync(ct);
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _listener.DisposeAsync();
        lock (_connections)
        {
            foreach (var c in _connections)
            {
                c.Dispose();
            }
            _connections.Clear();
        }
    }
}
