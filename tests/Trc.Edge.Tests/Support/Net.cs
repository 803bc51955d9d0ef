using System.Net;
using System.Net.Sockets;

namespace Trc.Edge.Tests.Support;

/// <summary>Ports and sockets for tests.</summary>
public static class Net
{
    /// <summary>A port free right now on <paramref name="address"/> (IPv4 loopback by default).</summary>
    public static int FreePort(IPAddress? address = null)
    {
        using var listener = new TcpListener(address ?? IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Connects a TCP client to <paramref name="endpoint"/> with Nagle off.</summary>
    public static async Task<Socket> ConnectAsync(IPEndPoint endpoint, CancellationToken ct = default)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, ct);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads until the peer closes or <paramref name="timeout"/> passes; returns what was read and
    /// whether the peer closed (false: still open at the timeout).
    /// </summary>
    public static async Task<(byte[] Data, bool Closed)> ReadUntilClosedAsync(Socket socket, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var data = new MemoryStream();
        var buffer = new byte[16384];
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    return (data.ToArray(), true);
                }
                data.Write(buffer, 0, n);
            }
        }
        catch (OperationCanceledException)
        {
            return (data.ToArray(), false);
        }
        catch (SocketException)
        {
            return (data.ToArray(), true);
        }
    }
}
