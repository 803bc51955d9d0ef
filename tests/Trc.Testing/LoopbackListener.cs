using System.Net;
using System.Net.Sockets;

namespace Trc.Testing;

/// <summary>
/// A TCP listener on a free port of a loopback address that hands every connection to a handler, on
/// a task of its own, until disposed: the accept loop the socket fixtures share. The handler owns the
/// connection; its token is cancelled on dispose.
/// </summary>
public sealed class LoopbackListener : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;

    public LoopbackListener(IPAddress address, Func<TcpClient, CancellationToken, Task> handle)
    {
        _listener = new TcpListener(address, 0);
        _listener.Start();
        _accept = Task.Run(() => AcceptLoopAsync(handle));
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    private async Task AcceptLoopAsync(Func<TcpClient, CancellationToken, Task> handle)
    {
        while (true)
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
            _ = Task.Run(() => handle(client, _stop.Token));
        }
    }

    /// <summary>Stops accepting and cancels the handlers' token; returns once the accept loop has ended.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accept;
    }
}
