using System.Net;
using System.Net.Sockets;
using System.Text;
using Trc.Edge.Metrics;

namespace Trc.Edge.Tests.Metrics;

public sealed class MetricsEndpointTests
{
    [Theory]
    [InlineData("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK")]
    [InlineData("GET /metrics?x=1 HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK")]
    [InlineData("POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405")]
    [InlineData("GET /secrets HTTP/1.1\r\n\r\n", "HTTP/1.1 404")]
    [InlineData("\u0016\u0003\u0001\u0002\u0000junk\r\n\r\n", "HTTP/1.1 400")]
    [InlineData("GET\r\n\r\n", "HTTP/1.1 400")]
    public async Task Requests_get_a_status_and_the_connection_is_closed(string request, string status)
    {
        await using var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), () => "trc_x 1\n");
        var answer = await SendAsync(endpoint.Bound, Encoding.Latin1.GetBytes(request));
        Assert.StartsWith(status, answer);
        if (status.EndsWith("200 OK", StringComparison.Ordinal))
        {
            Assert.EndsWith("\r\n\r\ntrc_x 1\n", answer);
            Assert.Contains("Content-Type: text/plain; version=0.0.4", answer);
        }
    }

    [Fact]
    public async Task An_oversized_request_head_is_refused_and_a_silent_client_is_dropped()
    {
        await using var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), () => "");
        var big = Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\nX: " + new string('a', 10_000));
        Assert.StartsWith("HTTP/1.1 431", await SendAsync(endpoint.Bound, big));

        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(endpoint.Bound);
        var (_, closed) = await Support.Net.ReadUntilClosedAsync(silent, TimeSpan.FromSeconds(15));
        Assert.True(closed, "a client that sends nothing is dropped after 5 s");

        // And it still answers.
        Assert.StartsWith("HTTP/1.1 200 OK", await SendAsync(endpoint.Bound, "GET /metrics HTTP/1.1\r\n\r\n"u8.ToArray()));
    }

    [Fact]
    public void Label_values_are_escaped_and_causes_are_snake_case()
    {
        var metrics = new EdgeMetrics();
        metrics.Route("we\"ird\\name\n").AddFromClient(5);
        var text = metrics.Render();
        Assert.Contains("route=\"we\\\"ird\\\\name\\n\",direction=\"client_to_backend\"} 5", text);
        Assert.Contains("trc_edge_connections_closed_total{cause=\"backend_unavailable\"} 0", text);
    }

    private static async Task<string> SendAsync(IPEndPoint endpoint, byte[] request)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint);
        await socket.SendAsync(request);
        var (data, _) = await Support.Net.ReadUntilClosedAsync(socket, TimeSpan.FromSeconds(10));
        return Encoding.UTF8.GetString(data);
    }
}
