using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Trc.Agent.Tests.Firecracker;

/// <summary>One request the fake API received, as it came on the wire.</summary>
internal sealed record ApiRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body);

/// <summary>
/// Plays Firecracker's API on a real unix socket: a small HTTP/1.1 server (keep-alive, bodies by
/// Content-Length only, as Firecracker's server) that records every request and answers 204, or
/// what <see cref="Respond"/> says (e.g. 400 with <c>{"fault_message": ...}</c>). It binds once
/// the stand-in VMM has written its argv, at the API socket those arguments name: the driver
/// deletes stale sockets before it spawns the VMM, as it must.
/// </summary>
internal sealed class FakeFirecrackerApi : IAsyncDisposable
{
    private readonly ConcurrentQueue<ApiRequest> _requests = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serve;
    private Socket? _listener;

    private FakeFirecrackerApi(Func<CancellationToken, Task<string>> socketPath)
    {
        _serve = Task.Run(() => ServeAsync(socketPath, _stop.Token));
    }

    /// <summary>A server that binds at the path <paramref name="socketOf"/> derives from the stand-in's argv, once it is written.</summary>
    public static FakeFirecrackerApi WhenLaunched(string argvFile, Func<IReadOnlyList<string>, string> socketOf) =>
        new(async ct =>
        {
            while (!File.Exists(argvFile))
            {
                await Task.Delay(5, ct);
            }
            return socketOf(File.ReadAllLines(argvFile));
        });

    /// <summary>Decides an answer (status, body) for a request; null for 204 No Content.</summary>
    public Func<ApiRequest, (int Status, string Body)?> Respond { get; set; } = _ => null;

    /// <summary>Every request so far, in arrival order.</summary>
    public IReadOnlyList<ApiRequest> Requests => [.. _requests];

    /// <summary>The socket's path once bound.</summary>
    public string? SocketPath { get; private set; }

    private async Task ServeAsync(Func<CancellationToken, Task<string>> socketPath, CancellationToken ct)
    {
        try
        {
            var path = await socketPath(ct);
            _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            _listener.Listen(16);
            SocketPath = path;
            while (!ct.IsCancellationRequested)
            {
                var client = await _listener.AcceptAsync(ct);
                _ = Task.Run(() => ConnectionAsync(client, ct), ct);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ConnectionAsync(Socket client, CancellationToken ct)
    {
        using (client)
        await using (var stream = new NetworkStream(client, ownsSocket: false))
        {
            var buffer = new List<byte>();
            var chunk = new byte[8192];
            try
            {
                while (true)
                {
                    var request = await ReadRequestAsync(stream, buffer, chunk, ct);
                    if (request is null)
                    {
                        return;
                    }
                    _requests.Enqueue(request);
                    var answer = request.Headers.TryGetValue("transfer-encoding", out _)
                        ? (400, """{"fault_message": "chunked request bodies are not supported"}""")
                        : Respond(request);
                    var response = answer is { } a
                        ? $"HTTP/1.1 {a.Status} {(a.Status == 400 ? "Bad Request" : "Error")}\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(a.Body)}\r\n\r\n{a.Body}"
                        : "HTTP/1.1 204 No Content\r\n\r\n";
                    await stream.WriteAsync(Encoding.UTF8.GetBytes(response), ct);
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
            {
            }
        }
    }

    private static async Task<ApiRequest?> ReadRequestAsync(NetworkStream stream, List<byte> buffer, byte[] chunk, CancellationToken ct)
    {
        int headerEnd;
        while ((headerEnd = IndexOf(buffer, "\r\n\r\n"u8)) < 0)
        {
            var n = await stream.ReadAsync(chunk, ct);
            if (n == 0)
            {
                return null;
            }
            buffer.AddRange(chunk.AsSpan(0, n));
        }
        var head = Encoding.ASCII.GetString(buffer.GetRange(0, headerEnd).ToArray()).Split("\r\n");
        var requestLine = head[0].Split(' ');
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in head.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers[line[..colon].Trim().ToLowerInvariant()] = line[(colon + 1)..].Trim();
        }
        buffer.RemoveRange(0, headerEnd + 4);
        var length = headers.TryGetValue("content-length", out var text) ? int.Parse(text, CultureInfo.InvariantCulture) : 0;
        while (buffer.Count < length)
        {
            var n = await stream.ReadAsync(chunk, ct);
            if (n == 0)
            {
                return null;
            }
            buffer.AddRange(chunk.AsSpan(0, n));
        }
        var body = Encoding.UTF8.GetString(buffer.GetRange(0, length).ToArray());
        buffer.RemoveRange(0, length);
        return new ApiRequest(requestLine[0], requestLine[1], headers, body);
    }

    private static int IndexOf(List<byte> haystack, ReadOnlySpan<byte> needle)
    {
        for (var i = 0; i + needle.Length <= haystack.Count; i++)
        {
            var match = true;
            for (var j = 0; j < needle.Length && match; j++)
            {
                match = haystack[i + j] == needle[j];
            }
            if (match)
            {
                return i;
            }
        }
        return -1;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener?.Dispose();
        try
        {
            await _serve;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
        _stop.Dispose();
    }
}
