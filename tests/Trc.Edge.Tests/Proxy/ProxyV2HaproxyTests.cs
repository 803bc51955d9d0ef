using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Trc.Edge.Routing;
using Trc.Edge.Tests.Support;

namespace Trc.Edge.Tests.Proxy;

/// <summary>
/// The PROXY v2 header checked by a real receiver: HAProxy 2.6 with <c>accept-proxy</c>, which
/// logs the client address and port it read from the header.
/// </summary>
public sealed class ProxyV2HaproxyTests
{
    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1", "127.0.0.1")]     // TCP4
    [InlineData("::1", "::1", "::1")]                       // TCP6
    [InlineData("::", "127.0.0.1", "127.0.0.1")]            // an IPv4 client on a dual-stack listener: TCP4
    public async Task HAProxy_behind_the_edge_logs_the_original_client_address_and_port(string listenAddress, string clientAddress, string logged)
    {
        await using var edge = new EdgeHarness();
        var cert = edge.Certificate("pp.example.com");
        var app = edge.Backend(IPAddress.Loopback, cert);
        var haproxyPort = Support.Net.FreePort();
        var config = Path.Combine(edge.Directory, "haproxy.cfg");
        File.WriteAllText(config, $"""
            global
              log stdout format raw local0 info
            defaults
              mode tcp
              log global
              timeout connect 5s
              timeout client 30s
              timeout server 30s
            frontend fe
              bind 127.0.0.1:{haproxyPort} accept-proxy
              log-format "seen client=%ci:%cp dst=%fi:%fp"
              default_backend be
            backend be
              server app {app.EndPoint}

            """);
        using var haproxy = ExternalProcess.Start(HaproxyPath(), ["-f", config, "-db"]);
        await WaitForPortAsync(new IPEndPoint(IPAddress.Loopback, haproxyPort), haproxy);

        var route = EdgeHarness.Tls("pp.example.com", new IPEndPoint(IPAddress.Parse(listenAddress), 0), new IPEndPoint(IPAddress.Loopback, haproxyPort)) with { ProxyV2 = true };
        var listen = edge.Apply(route)[0];
        var target = new IPEndPoint(IPAddress.Parse(clientAddress), listen.Port);

        var socket = await Support.Net.ConnectAsync(target);
        var client = (IPEndPoint)socket.LocalEndPoint!;
        await using (var tls = new System.Net.Security.SslStream(new NetworkStream(socket, ownsSocket: true), false, (_, c, _, _) => c?.GetCertHashString() == cert.Certificate.GetCertHashString()))
        {
            await tls.AuthenticateAsClientAsync("pp.example.com");
            Assert.True(await Exchange.RoundAsync(tls, 1 << 20, 9));
            await Exchange.EndAsync(tls);
        }

        var expected = $"seen client={Format(logged)}:{client.Port.ToString(CultureInfo.InvariantCulture)} dst={Format(logged)}:{listen.Port.ToString(CultureInfo.InvariantCulture)}";
        await haproxy.WaitForOutputAsync(expected, TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task The_header_reaches_a_raw_backend_before_any_client_byte_and_a_client_sent_header_is_only_payload()
    {
        await using var edge = new EdgeHarness();
        var backend = edge.Backend(IPAddress.Loopback, expectProxy: true);
        var listen = edge.Apply(EdgeHarness.Raw("raw-pp", new IPEndPoint(IPAddress.Loopback, 0), backend.EndPoint) with { ProxyV2 = true })[0];

        using var socket = await Support.Net.ConnectAsync(listen);
        await using var stream = new NetworkStream(socket);
        Assert.True(await Exchange.RoundAsync(stream, 1000, 5));
        Assert.True(backend.ProxyHeaders.TryDequeue(out var header));
        Assert.Equal(0x11, header[13]);
        Assert.Equal(((IPEndPoint)socket.LocalEndPoint!).Port, (header[24] << 8) | header[25]);
    }

    private static string Format(string address) => address;

    internal static string HaproxyPath() =>
        new[] { "/usr/sbin/haproxy", "/usr/bin/haproxy" }.FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("haproxy is not installed: scripts/install-test-deps installs it (Debian package haproxy)");

    internal static async Task WaitForPortAsync(IPEndPoint endpoint, ExternalProcess process)
    {
        for (var i = 0; i < 300; i++)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the process exited ({process.ExitCode}):\n{process.Output}");
            }
            try
            {
                using var probe = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                await probe.ConnectAsync(endpoint);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(20);
            }
        }
        throw new TimeoutException($"nothing listens on {endpoint}:\n{process.Output}");
    }
}
