using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trc.Testing;

/// <summary>
/// A real HTTP/1.1 listener on 127.0.0.1 that answers every request with one canned response: a
/// proxy in front of a server that is down, or a hostile server. The response may quote the
/// request's headers, to prove that nothing of them reaches a message.
/// </summary>
public sealed class CannedHttpServer : IAsyncDisposable
{
    private readonly Func<string, string> _respond;
    private readonly LoopbackListener _listener;
    private int _requests;

    /// <param name="respond">The whole response (status line, headers, body) for a request's header block.</param>
    public CannedHttpServer(Func<string, string> respond)
    {
        _respond = respond;
        _listener = new LoopbackListener(IPAddress.Loopback, ServeAsync);
    }

    public Uri Address => new($"http://127.0.0.1:{_listener.EndPoint.Port}/");

    /// <summary>The address without the final slash, as a user types it.</summary>
    public string Url => Address.ToString().TrimEnd('/');

    /// <summary>Requests answered so far.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>A response with the right Content-Length.</summary>
    public static string Response(string statusLine, string contentType, string body, string extraHeaders = "") =>
        $"HTTP/1.1 {statusLine}\r\nContent-Type: {contentType}\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n{extraHeaders}\r\n{body}";

    private async Task ServeAsync(TcpClient client, CancellationToken ct)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var request = new StringBuilder();
                var buffer = new byte[4096];
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var n = await stream.ReadAsync(buffer, ct);
                    if (n == 0)
                    {
                        return;
                    }
                    request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }
                Interlocked.Increment(ref _requests);
                await stream.WriteAsync(Encoding.UTF8.GetBytes(_respond(request.ToString())), ct);
                await stream.FlushAsync(ct);
            }
            catch (Exception)
            {
                // The client went away.
            }
        }
    }

    public ValueTask DisposeAsync() => _listener.DisposeAsync();
}
