using System.Net;
using System.Net.Sockets;
using System.Text;
using Trc.Agent.Host;
using Trc.Core.Api;

namespace Trc.Agent.Tests.Host;

/// <summary>Health checks against real sockets: TCP connects, HTTP status lines, silence, hostile answers.</summary>
public sealed class HealthProbeTests
{
    // A generous timeout where the server answers (or closes): on a loaded host a close can take over a second to arrive.
    private static async Task<(bool, string)> CheckAgainstAsync(string kind, string? answer, int timeoutMs = 10_000)
    {
        using var listener = new TcpListener(IPAddress.IPv6Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            if (answer is null)
            {
                await Task.Delay(timeoutMs * 3);
                return;
            }
            var stream = client.GetStream();
            var buffer = new byte[1024];
            _ = await stream.ReadAtLeastAsync(buffer, 1, throwOnEndOfStream: false);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(answer));
        });
        var result = await HealthProbe.CheckAsync(new HealthcheckView(kind, port, "/healthz", 1000, timeoutMs), IPAddress.IPv6Loopback, CancellationToken.None);
        await serve;
        return result;
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\n\r\n", true, "HTTP 200")]
    [InlineData("HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n", true, "HTTP 302")]
    [InlineData("HTTP/1.1 503 Service Unavailable\r\n\r\n", false, "HTTP 503")]
    [InlineData("HTTP/1.1 404 Not Found\r\n\r\n", false, "HTTP 404")]
    [InlineData("SSH-2.0-OpenSSH\r\n", false, "not an HTTP answer")]
    [InlineData("HTTP/1.1 2x0 OK\r\n\r\n", false, "not an HTTP answer")]
    [InlineData("", false, "not an HTTP answer")]
    public async Task An_http_check_passes_on_2xx_and_3xx_only(string answer, bool healthy, string detail)
    {
        var (ok, why) = await CheckAgainstAsync("http", answer);
        Assert.Equal((healthy, detail), (ok, why));
    }

    [Fact]
    public async Task A_silent_http_server_fails_at_the_timeout()
    {
        var (ok, why) = await CheckAgainstAsync("http", null, timeoutMs: 200);
        Assert.False(ok);
        Assert.Equal("no answer within 200 ms", why);
    }

    [Fact]
    public async Task A_tcp_check_passes_on_connect_and_fails_on_a_refused_port()
    {
        Assert.True((await CheckAgainstAsync("tcp", "")).Item1);
        using var probe = new TcpListener(IPAddress.IPv6Loopback, 0);
        probe.Start();
        var closed = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var (ok, why) = await HealthProbe.CheckAsync(new HealthcheckView("tcp", closed, null, 1000, 500), IPAddress.IPv6Loopback, CancellationToken.None);
        Assert.False(ok);
        Assert.Contains("refused", why);
    }

    [Fact]
    public void A_status_line_is_read_strictly()
    {
        Assert.Equal(204, HealthProbe.ParseStatus("HTTP/1.1 204 No Content"u8));
        Assert.Null(HealthProbe.ParseStatus("HTTP/2 200 OK\r\n"u8));
        Assert.Null(HealthProbe.ParseStatus("HTTP/1.1"u8));
        Assert.Null(HealthProbe.ParseStatus(new byte[512]));
    }
}
