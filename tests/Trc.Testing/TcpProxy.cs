using System.Net;
using System.Net.Sockets;

namespace Trc.Testing;

/// <summary>
/// A TCP proxy in front of a server (Postgres, the trc API) that a test can break on purpose: cut
/// every live connection, as a crashed load balancer would, or silently drop the server's replies
/// (so the client cannot learn whether its statement committed).
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly string _targetHost;
    private readonly int _targetPort;
    private readonly List<(TcpClient Client, TcpClient Server)> _pairs = [];
    private readonly LoopbackListener _listener;
    private int _accepted;

    public TcpProxy(string targetHost, int targetPort)
    {
        _targetHost = targetHost;
        _targetPort = targetPort;
        _listener = new LoopbackListener(IPAddress.Loopback, ProxyAsync);
    }

    public int Port => _listener.EndPoint.Port;

    /// <summary>The proxy as an http:// base address.</summary>
    public Uri Address => new($"http://127.0.0.1:{Port}/");

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>When true, bytes from the server are read and thrown away.</summary>
    public volatile bool DropServerReplies;

    /// <summary>Resets every proxied connection.</summary>
    public void CutAll()
    {
        lock (_pairs)
        {
            foreach (var (client, server) in _pairs)
            {
                foreach (var socket in new[] { client, server })
                {
                    try
                    {
                        socket.Client.LingerState = new LingerOption(true, 0);
                        socket.Close();
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                }
            }
            _pairs.Clear();
        }
    }

    private async Task ProxyAsync(TcpClient client, CancellationToken ct)
    {
        var server = new TcpClient();
        try
        {
            await server.ConnectAsync(_targetHost, _targetPort, ct);
        }
        catch (Exception)
        {
            // The target is down, or the proxy is stopping: the client sees its connection closed.
            server.Dispose();
            client.Dispose();
            return;
        }
        lock (_pairs)
        {
            _pairs.Add((client, server));
        }
        Interlocked.Increment(ref _accepted);
        _ = PumpAsync(client.GetStream(), server.GetStream(), fromServer: false, ct);
        _ = PumpAsync(server.GetStream(), client.GetStream(), fromServer: true, ct);
    }

    private async Task PumpAsync(Stream from, Stream to, bool fromServer, CancellationToken ct)
    {
        var buffer = new byte[16384];
        try
        {
            while (true)
            {
                var n = await from.ReadAsync(buffer, ct);
                if (n == 0)
                {
                    break;
                }
                if (fromServer && DropServerReplies)
                {
                    continue;
                }
                await to.WriteAsync(buffer.AsMemory(0, n), ct);
            }
        }
        catch (Exception)
        {
            // A cut connection ends its pumps.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _listener.DisposeAsync();
        CutAll();
    }
}
