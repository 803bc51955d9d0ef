using System.Net;
using System.Net.Sockets;

namespace Trc.Client.Tests;

/// <summary>A TCP proxy in front of the server that a test can break on purpose: it cuts every live connection.</summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _target;
    private readonly List<(TcpClient Client, TcpClient Server)> _pairs = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;

    public TcpProxy(Uri target)
    {
        _target = target;
        _listener.Start();
        _accept = Task.Run(AcceptLoopAsync);
    }

    public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    /// <summary>Connections accepted so far.</summary>
    public int Accepted { get; private set; }

    /// <summary>Resets every proxied connection, as a crashed load balancer would.</summary>
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
            var server = new TcpClient();
            await server.ConnectAsync(_target.Host, _target.Port);
            lock (_pairs)
            {
                Accepted++;
                _pairs.Add((client, server));
            }
            _ = PumpAsync(client.GetStream(), server.GetStream());
            _ = PumpAsync(server.GetStream(), client.GetStream());
        }
    }

    private async Task PumpAsync(Stream from, Stream to)
    {
        var buffer = new byte[16384];
        try
        {
            int n;
            while ((n = await from.ReadAsync(buffer, _stop.Token)) > 0)
            {
                await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
            }
        }
        catch (Exception)
        {
            // A cut connection ends its pumps.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        CutAll();
        try
        {
            await _accept;
        }
        catch (OperationCanceledException)
        {
        }
    }
}
