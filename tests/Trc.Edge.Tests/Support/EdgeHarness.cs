using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Trc.Edge.Proxy;
using Trc.Edge.Routing;

namespace Trc.Edge.Tests.Support;

/// <summary>An in-process edge, its temp directory, and client helpers.</summary>
public sealed class EdgeHarness : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<IDisposable> _ownedSync = [];

    public EdgeHarness(EdgeSettings? settings = null)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("trc-edge-test-").FullName;
        Server = new EdgeServer(settings);
    }

    public string Directory { get; }

    public EdgeServer Server { get; }

    public TestCertificate Certificate(string hostname)
    {
        var certificate = TestCertificate.Create(hostname, Directory);
        _ownedSync.Add(certificate);
        return certificate;
    }

    public ExchangeBackend Backend(IPAddress address, TestCertificate? certificate = null, bool expectProxy = false)
    {
        var backend = ExchangeBackend.Start(address, certificate, expectProxy);
        _owned.Add(backend);
        return backend;
    }

    public static EdgeRoute Tls(string hostname, IPEndPoint listen, params IPEndPoint[] backends) =>
        new($"{hostname}@{listen}", listen, hostname, RouteProtocol.TlsPassthrough, false, backends);

    public static EdgeRoute Raw(string name, IPEndPoint listen, params IPEndPoint[] backends) =>
        new(name, listen, null, RouteProtocol.TcpRaw, false, backends);

    /// <summary>Applies the routes; returns the bound endpoint of each route's listener, in order.</summary>
    public IPEndPoint[] Apply(params EdgeRoute[] routes)
    {
        Server.Apply(RouteTable.Build(routes));
        return routes.Select(r => Server.BoundEndpoint(r.Listen)!).ToArray();
    }

    /// <summary>Connects through the edge and completes a TLS handshake for <paramref name="serverName"/>; returns the stream and the certificate seen.</summary>
    public static async Task<(SslStream Stream, System.Security.Cryptography.X509Certificates.X509Certificate2 Seen)> TlsConnectAsync(IPEndPoint edge, string serverName, CancellationToken ct = default)
    {
        var socket = await Net.ConnectAsync(edge, ct);
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
        System.Security.Cryptography.X509Certificates.X509Certificate2? seen = null;
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                seen = certificate is null ? null : System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                return true; // the test compares the certificate itself
            },
        }, ct);
        return (tls, seen!);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        foreach (var o in _owned)
        {
            await o.DisposeAsync();
        }
        foreach (var o in _ownedSync)
        {
            o.Dispose();
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
