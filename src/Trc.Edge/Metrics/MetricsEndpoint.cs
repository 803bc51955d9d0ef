using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trc.Edge.Metrics;

/// <summary>
/// A minimal HTTP/1.1 responder for Prometheus scrapes: <c>GET /metrics</c> answers the edge's
/// metrics, anything else 404 (or 400/405). It reads at most 8 KiB of request head within 5 s and
/// closes the connection after each answer, so a hostile client can hold it only that long.
/// </summary>
public sealed class MetricsEndpoint : IAsyncDisposable
{
    private const int MaxHead = 8192;
    private readonly Socket _socket;
    private readonly Func<string> _render;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private MetricsEndpoint(Socket socket, Func<string> render)
    {
        _socket = socket;
        _render = render;
        Bound = (IPEndPoint)socket.LocalEndPoint!;
        _loop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The endpoint it listens on.</summary>
    public IPEndPoint Bound { get; }

    /// <summary>Listens on <paramref name="endpoint"/> and serves <paramref name="render"/>'s text.</summary>
    public static MetricsEndpoint Start(IPEndPoint endpoint, Func<string> render)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endpoint);
            socket.Listen(64);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new MetricsEndpoint(socket, render);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using (client)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                var head = new byte[MaxHead];
                var filled = 0;
                var end = -1;
                while (end < 0)
                {
                    if (filled == head.Length)
                    {
                        await AnswerAsync(client, "431 Request Header Fields Too Large", "request head over 8 KiB\n", timeout.Token).ConfigureAwait(false);
                        return;
                    }
                    var n = await client.ReceiveAsync(head.AsMemory(filled), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        return;
                    }
                    filled += n;
                    end = head.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);
                }
                var line = head.AsSpan(0, head.AsSpan(0, filled).IndexOf("\r\n"u8));
                var parts = Encoding.ASCII.GetString(line).Split(' ');
                if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
                {
                    await AnswerAsync(client, "400 Bad Request", "not an HTTP/1.x request line\n", timeout.Token).ConfigureAwait(false);
                }
                else if (parts[0] != "GET")
                {
                    await AnswerAsync(client, "405 Method Not Allowed", "only GET\n", timeout.Token).ConfigureAwait(false);
                }
                else if (parts[1] is "/metrics" || parts[1].StartsWith("/metrics?", StringComparison.Ordinal))
                {
                    await AnswerAsync(client, "200 OK", _render(), timeout.Token).ConfigureAwait(false);
                }
                else
                {
                    await AnswerAsync(client, "404 Not Found", "try /metrics\n", timeout.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // A client that is slow or gone gets nothing more.
            }
        }
    }

    private static async Task AnswerAsync(Socket client, string status, string body, CancellationToken ct)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n");
        await client.SendAsync(head, SocketFlags.None, ct).ConfigureAwait(false);
        await client.SendAsync(bytes, SocketFlags.None, ct).ConfigureAwait(false);
        client.Shutdown(SocketShutdown.Send);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
