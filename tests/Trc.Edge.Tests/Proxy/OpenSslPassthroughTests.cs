using System.Net;
using Trc.Edge.Tests.Support;

namespace Trc.Edge.Tests.Proxy;

/// <summary>
/// Passthrough proven with independent TLS stacks: <c>openssl s_server</c> backends, each with the
/// certificate of its own hostname, and <c>curl</c> and <c>openssl s_client</c> as clients.
/// </summary>
public sealed class OpenSslPassthroughTests
{
    [Fact]
    public async Task Curl_and_s_client_see_the_certificate_of_the_backend_their_SNI_names()
    {
        await using var edge = new EdgeHarness();
        var a = edge.Certificate("a.example.com");
        var b = edge.Certificate("b.example.com");
        using var serverA = StartServer(a, out var portA);
        using var serverB = StartServer(b, out var portB);
        await ProxyV2HaproxyTests.WaitForPortAsync(new IPEndPoint(IPAddress.Loopback, portA), serverA);
        await ProxyV2HaproxyTests.WaitForPortAsync(new IPEndPoint(IPAddress.Loopback, portB), serverB);
        var listen = edge.Apply(
            EdgeHarness.Tls("a.example.com", new IPEndPoint(IPAddress.IPv6Any, 0), new IPEndPoint(IPAddress.Loopback, portA)),
            EdgeHarness.Tls("b.example.com", new IPEndPoint(IPAddress.IPv6Any, 0), new IPEndPoint(IPAddress.Loopback, portB)))[0];
        var port = listen.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        foreach (var (cert, clientAddress) in new[] { (a, "127.0.0.1"), (b, "127.0.0.1"), (a, "[::1]"), (b, "[::1]") })
        {
            // curl verifies the chain against this hostname's certificate alone: it succeeds only
            // if the edge reached the backend holding it, untouched.
            var (code, output) = await ExternalProcess.RunAsync("curl", ["-sS", "--max-time", "20", "--resolve", $"{cert.Hostname}:{port}:{clientAddress}", "--cacert", cert.CertificateFile, $"https://{cert.Hostname}:{port}/"], TimeSpan.FromSeconds(30));
            Assert.True(code == 0, $"curl {cert.Hostname} via {clientAddress}: exit {code}\n{output}");
            Assert.Contains("s_server", output);

            var other = cert == a ? b : a;
            var (wrong, _) = await ExternalProcess.RunAsync("curl", ["-sS", "--max-time", "20", "--resolve", $"{cert.Hostname}:{port}:{clientAddress}", "--cacert", other.CertificateFile, $"https://{cert.Hostname}:{port}/"], TimeSpan.FromSeconds(30));
            Assert.NotEqual(0, wrong);
        }

        var (exit, text) = await ExternalProcess.RunAsync("openssl", ["s_client", "-connect", $"127.0.0.1:{port}", "-servername", "b.example.com", "-verify_return_error", "-CAfile", b.CertificateFile], TimeSpan.FromSeconds(30), stdin: "");
        Assert.True(exit == 0, text);
        Assert.Matches(@"subject=\s*CN\s*=\s*b\.example\.com", text);
        Assert.Contains("Verify return code: 0 (ok)", text);
    }

    private static ExternalProcess StartServer(TestCertificate certificate, out int port)
    {
        port = Support.Net.FreePort();
        return ExternalProcess.Start("openssl", ["s_server", "-accept", $"127.0.0.1:{port}", "-cert", certificate.CertificateFile, "-key", certificate.KeyFile, "-www", "-quiet"]);
    }
}
