using System.Net;
using System.Net.Sockets;
using System.Text;
using Trc.Core.Api;

namespace Trc.Agent.Host;

/// <summary>
/// One health check of an instance, from the host over the node bridge: a TCP connect, or an HTTP
/// GET whose status is 2xx or 3xx. Written on a raw socket so the check sends exactly one small
/// request and never follows redirects or keeps connections.
/// </summary>
public static class HealthProbe
{
    /// <summary>Runs the check once; the detail says why it failed.</summary>
    public static async Task<(bool Healthy, string Detail)> CheckAsync(HealthcheckView check, IPAddress address, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromMilliseconds(Math.Max(100, check.TimeoutMs)));
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(address, check.Port), timeout.Token).ConfigureAwait(false);
            if (check.Kind != "http")
            {
                return (true, "connected");
            }
            var host = address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
            var request = $"GET {check.Path ?? "/"} HTTP/1.1\r\nHost: {host}:{check.Port}\r\nUser-Agent: trc-health/1\r\nConnection: close\r\n\r\n";
            await socket.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None, timeout.Token).ConfigureAwait(false);
            var buffer = new byte[512];
            var read = 0;
            while (read < buffer.Length)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }
                read += n;
                if (Array.IndexOf(buffer, (byte)'\n', 0, read) >= 0)
                {
                    break;
                }
            }
            var status = ParseStatus(buffer.AsSpan(0, read));
            return status switch
            {
                null => (false, "not an HTTP answer"),
                >= 200 and < 400 => (true, $"HTTP {status}"),
                _ => (false, $"HTTP {status}"),
            };
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return (false, $"no answer within {check.TimeoutMs} ms");
        }
        catch (SocketException e)
        {
            return (false, e.SocketErrorCode == SocketError.ConnectionRefused ? $"port {check.Port} refused the connection" : e.Message);
        }
    }

    /// <summary>The status code of an HTTP/1.x status line, or null.</summary>
    public static int? ParseStatus(ReadOnlySpan<byte> head)
    {
        // "HTTP/1.1 200 OK"
        if (head.Length < 12 || !head.StartsWith("HTTP/1."u8) || head[8] != (byte)' ')
        {
            return null;
        }
        var code = head.Slice(9, 3);
        foreach (var b in code)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                return null;
            }
        }
        return (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    }
}
