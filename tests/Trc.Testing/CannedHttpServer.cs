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
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<string, string> _respond;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    private int _requests;

    /// <param name="respond">The whole response (status line, headers, body) for a request's header block.</param>
    public CannedHttpServer(Func<string, string> respond)
    {
        _respond = respond;
        _listener.Start();
        _accept = Task.Run(AcceptLoopAsync);
    }

    public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    /// <summary>The address without the final slash, as a user types it.</summary>
    public string Url => Address.ToString().TrimEnd('/');

    /// <summary>Requests answered so far.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>A response with the right Content-Length.</summary>
    public static string Response(string statusLine, string contentType, string body, string extraHeaders = "") =>
        $"HTTP/1.1 {statusLine}\r\nContent-Type: {contentType}\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n{extraHeaders}\r\n{body}";

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
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
                    var n = await stream.ReadAsync(buffer, _stop.Token);
                    if (n == 0)
                    {
                        return;
                    }
                    request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }
                Interlocked.Increment(ref _requests);
                await stream.WriteAsync(Encoding.UTF8.GetBytes(_respond(request.ToString())), _stop.Token);
                await stream.FlushAsync(_stop.Token);
            }
            catch (Exception)
            {
                // The client went away.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accept;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
