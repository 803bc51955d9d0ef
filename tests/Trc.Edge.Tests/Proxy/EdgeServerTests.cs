using System.Net;
using System.Net.Sockets;
using System.Text;
using Trc.Edge.Metrics;
using Trc.Edge.Proxy;
using Trc.Edge.Routing;
using Trc.Edge.Tests.Support;

namespace Trc.Edge.Tests.Proxy;

/// <summary>The edge in-process with real sockets and real TLS on both ends.</summary>
public sealed class EdgeServerTests
{
    private static readonly IPEndPoint Any4 = new(IPAddress.Loopback, 0);

    [Fact]
    public async Task Each_hostname_reaches_its_own_backend_and_the_client_sees_that_backends_certificate()
    {
        await using var edge = new EdgeHarness();
        var a = edge.Certificate("a.example.com");
        var b = edge.Certificate("b.example.com");
        var backendA = edge.Backend(IPAddress.Loopback, a);
        var backendB = edge.Backend(IPAddress.Loopback, b);
        var listen = edge.Apply(EdgeHarness.Tls("a.example.com", Any4, backendA.EndPoint), EdgeHarness.Tls("b.example.com", Any4, backendB.EndPoint))[0];

        foreach (var (name, cert) in new[] { ("a.example.com", a), ("b.example.com", b), ("A.Example.COM", a) })
        {
            var (stream, seen) = await EdgeHarness.TlsConnectAsync(listen, name);
            await using (stream)
            {
                Assert.Equal(cert.Certificate.Thumbprint, seen.Thumbprint);
                Assert.True(await Exchange.RoundAsync(stream, 100_000, 7));
                await Exchange.EndAsync(stream);
            }
        }
        Assert.Equal(2, backendA.Accepted);
        Assert.Equal(1, backendB.Accepted);
    }

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("::1", "::1")]
    public async Task A_hundred_megabytes_each_way_arrive_byte_exact_through_tls_passthrough(string client, string backendAddress)
    {
        await using var edge = new EdgeHarness();
        var cert = edge.Certificate("bulk.example.com");
        var backend = edge.Backend(IPAddress.Parse(backendAddress), cert);
        var listen = edge.Apply(EdgeHarness.Tls("bulk.example.com", new IPEndPoint(IPAddress.Parse(client), 0), backend.EndPoint))[0];

        var (stream, _) = await EdgeHarness.TlsConnectAsync(listen, "bulk.example.com");
        await using (stream)
        {
            Assert.True(await Exchange.RoundAsync(stream, 100L << 20, 42));
            await Exchange.EndAsync(stream);
        }
        var route = edge.Server.Metrics.Route(edge.Server.Table.Routes[0].Name);
        Assert.True(route.BytesFromClient > 100L << 20, $"counted {route.BytesFromClient}");
        Assert.True(route.BytesToClient > 100L << 20, $"counted {route.BytesToClient}");
    }

    [Fact]
    public async Task A_raw_route_forwards_by_port_alone_and_both_ways_byte_exact()
    {
        await using var edge = new EdgeHarness();
        var backend = edge.Backend(IPAddress.IPv6Loopback);
        var listen = edge.Apply(EdgeHarness.Raw("db", new IPEndPoint(IPAddress.IPv6Loopback, 0), backend.EndPoint))[0];

        using var socket = await Net.ConnectAsync(listen);
        await using var stream = new NetworkStream(socket);
        Assert.True(await Exchange.RoundAsync(stream, 20L << 20, 3));
        Assert.True(await Exchange.RoundAsync(stream, 1, 4));
        await Exchange.EndAsync(stream);
    }

    [Fact]
    public async Task Without_SNI_the_only_route_is_used_and_with_two_routes_the_connection_is_closed()
    {
        await using var edge = new EdgeHarness();
        var cert = edge.Certificate("only.example.com");
        var backend = edge.Backend(IPAddress.Loopback, cert);
        var listen = edge.Apply(EdgeHarness.Tls("only.example.com", Any4, backend.EndPoint))[0];

        // An IP-literal target host makes SslStream send no SNI.
        var (stream, seen) = await EdgeHarness.TlsConnectAsync(listen, "127.0.0.1");
        await using (stream)
        {
            Assert.Equal(cert.Certificate.Thumbprint, seen.Thumbprint);
        }

        edge.Apply(EdgeHarness.Tls("only.example.com", Any4, backend.EndPoint), EdgeHarness.Tls("other.example.com", Any4, backend.EndPoint));
        listen = edge.Server.BoundEndpoint(Any4)!;
        await Assert.ThrowsAnyAsync<IOException>(() => EdgeHarness.TlsConnectAsync(listen, "127.0.0.1"));
        Assert.True(edge.Server.Metrics.Closed(CloseCause.NoRoute) >= 1);
    }

    [Fact]
    public async Task An_unknown_name_and_bytes_that_are_not_tls_are_closed_without_reaching_a_backend()
    {
        await using var edge = new EdgeHarness();
        var backend = edge.Backend(IPAddress.Loopback, edge.Certificate("a.example.com"));
        var listen = edge.Apply(EdgeHarness.Tls("a.example.com", Any4, backend.EndPoint))[0];

        await Assert.ThrowsAnyAsync<IOException>(() => EdgeHarness.TlsConnectAsync(listen, "unknown.example.com"));
        foreach (var first in new[] { "GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n", "PROXY TCP4 198.51.100.1 127.0.0.1 1234 443\r\n", "\u0080\u002e\u0001\u0003\u0001" /* an SSLv2 CLIENT-HELLO */ })
        {
            using var socket = await Net.ConnectAsync(listen);
            await socket.SendAsync(Encoding.Latin1.GetBytes(first));
            var (data, closed) = await Net.ReadUntilClosedAsync(socket, TimeSpan.FromSeconds(10));
            Assert.True(closed);
            Assert.Empty(data);
        }
        Assert.Equal(0, backend.Accepted);
        Assert.Equal(3, edge.Server.Metrics.Closed(CloseCause.HelloInvalid));
        Assert.Equal(1, edge.Server.Metrics.Closed(CloseCause.NoRoute));
    }

    [Fact]
    public async Task A_hello_sent_one_byte_at_a_time_is_routed()
    {
        await using var edge = new EdgeHarness();
        var cert = edge.Certificate("slow.example.com");
        var backend = edge.Backend(IPAddress.Loopback, cert);
        var listen = edge.Apply(EdgeHarness.Tls("slow.example.com", Any4, backend.EndPoint))[0];

        // SslStream over a stream that writes one byte per send.
        var socket = await Net.ConnectAsync(listen);
        await using var trickle = new TrickleStream(new NetworkStream(socket, ownsSocket: true), TimeSpan.FromMilliseconds(1));
        await using var tls = new System.Net.Security.SslStream(trickle, false, (_, c, _, _) => c is not null && c.GetCertHashString() == cert.Certificate.GetCertHashString());
        await tls.AuthenticateAsClientAsync("slow.example.com");
        Assert.True(trickle.Writes > 200, $"only {trickle.Writes} writes");
        trickle.Trickle = false;
        Assert.True(await Exchange.RoundAsync(tls, 1000, 1));
    }

    [Fact]
    public async Task A_hello_that_never_completes_is_closed_at_the_hello_deadline()
    {
        await using var edge = new EdgeHarness(new EdgeSettings { HelloTimeout = TimeSpan.FromSeconds(2) });
        var backend = edge.Backend(IPAddress.Loopback, edge.Certificate("a.example.com"));
        var listen = edge.Apply(EdgeHarness.Tls("a.example.com", Any4, backend.EndPoint))[0];

        // A real ClientHello, one byte per 400 ms: each read is timely, the whole hello is not.
        var hello = await CaptureHelloAsync("a.example.com");
        using var socket = await Net.ConnectAsync(listen);
        var started = DateTime.UtcNow;
        await socket.SendAsync(hello.AsMemory(0, 1));
        var next = 1;
        var closedAt = TimeSpan.Zero;
        for (var i = 0; i < 30; i++)
        {
            await Task.Delay(400);
            try
            {
                await socket.SendAsync(hello.AsMemory(next++, 1));
            }
            catch (SocketException)
            {
                closedAt = DateTime.UtcNow - started;
                break;
            }
            if (socket.Poll(0, SelectMode.SelectRead) && socket.Available == 0)
            {
                closedAt = DateTime.UtcNow - started;
                break;
            }
        }
        Assert.InRange(closedAt.TotalSeconds, 1.9, 4);
        Assert.Equal(1, edge.Server.Metrics.Closed(CloseCause.HelloTimeout));
        Assert.Equal(0, backend.Accepted);
    }

    [Fact]
    public async Task A_dead_backend_is_skipped_and_the_next_one_serves()
    {
        await using var edge = new EdgeHarness();
        var cert = edge.Certificate("ha.example.com");
        var live = edge.Backend(IPAddress.Loopback, cert);
        var dead = new IPEndPoint(IPAddress.Loopback, Support.Net.FreePort());
        var listen = edge.Apply(EdgeHarness.Tls("ha.example.com", Any4, dead, live.EndPoint))[0];

        for (var i = 0; i < 4; i++)
        {
            var (stream, seen) = await EdgeHarness.TlsConnectAsync(listen, "ha.example.com");
            await using (stream)
            {
                Assert.Equal(cert.Certificate.Thumbprint, seen.Thumbprint);
            }
        }
        Assert.Equal(4, live.Accepted);
        Assert.Contains($"backend=\"{dead}\"", edge.Server.Metrics.Render());
    }

    [Fact]
    public async Task A_backend_that_never_answers_the_connect_is_given_up_at_the_timeout_and_the_next_one_serves()
    {
        // A listener whose accept queue is full drops further SYNs: a connect to it hangs, like a
        // backend behind a black hole.
        using var blackHole = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        blackHole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        blackHole.Listen(0);
        var fillers = new List<Socket>();
        try
        {
            var hole = (IPEndPoint)blackHole.LocalEndPoint!;
            while (true)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                using var quick = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                try
                {
                    await filler.ConnectAsync(hole, quick.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                Assert.True(fillers.Count < 64, "the accept queue never filled");
            }

            await using var edge = new EdgeHarness(new EdgeSettings { ConnectTimeout = TimeSpan.FromMilliseconds(600) });
            var live = edge.Backend(IPAddress.Loopback);
            var listen = edge.Apply(EdgeHarness.Raw("hole", Any4, hole, live.EndPoint))[0];
            var started = DateTime.UtcNow;
            var served = 0;
            for (var i = 0; i < 2; i++)
            {
                // Round robin: one of the two connections tries the black hole first.
                using var socket = await Net.ConnectAsync(listen);
                await using var stream = new NetworkStream(socket);
                Assert.True(await Exchange.RoundAsync(stream, 10, (byte)i), "the live backend serves after the black hole times out");
                served++;
            }
            var took = (DateTime.UtcNow - started).TotalSeconds;
            Assert.Equal(2, served);
            Assert.Equal(2, live.Accepted);
            Assert.InRange(took, 0.55, 5);
            Assert.Contains($"backend=\"{hole}\"", edge.Server.Metrics.Render());
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // a route with no backend yet: an env with no running instance
    public async Task With_no_backend_reachable_the_client_is_closed_as_unavailable(bool deadBackend)
    {
        await using var edge = new EdgeHarness();
        IPEndPoint[] backends = deadBackend ? [new IPEndPoint(IPAddress.Loopback, Support.Net.FreePort())] : [];
        var listen = edge.Apply(EdgeHarness.Raw("gone", Any4, backends))[0];
        using var socket = await Net.ConnectAsync(listen);
        var (_, closed) = await Net.ReadUntilClosedAsync(socket, TimeSpan.FromSeconds(10));
        Assert.True(closed);
        Assert.Equal(1, edge.Server.Metrics.Closed(CloseCause.BackendUnavailable));
    }

    [Fact]
    public async Task A_route_change_applies_to_new_connections_while_live_ones_go_on()
    {
        await using var edge = new EdgeHarness();
        var cert = edge.Certificate("move.example.com");
        var first = edge.Backend(IPAddress.Loopback, cert);
        var second = edge.Backend(IPAddress.Loopback, cert);
        var listen = edge.Apply(EdgeHarness.Tls("move.example.com", Any4, first.EndPoint))[0];

        var (live, _) = await EdgeHarness.TlsConnectAsync(listen, "move.example.com");
        await using (live)
        {
            Assert.True(await Exchange.RoundAsync(live, 1000, 1));
            edge.Apply(EdgeHarness.Tls("move.example.com", Any4, second.EndPoint));

            var (fresh, _) = await EdgeHarness.TlsConnectAsync(listen, "move.example.com");
            await using (fresh)
            {
                Assert.True(await Exchange.RoundAsync(fresh, 1000, 2));
            }
            Assert.True(await Exchange.RoundAsync(live, 1000, 3));
        }
        Assert.Equal(1, first.Accepted);
        Assert.Equal(1, second.Accepted);
    }

    [Fact]
    public async Task Connections_to_a_removed_backend_are_closed_after_the_drain_period()
    {
        await using var edge = new EdgeHarness(new EdgeSettings { DrainTimeout = TimeSpan.FromSeconds(1) });
        var old = edge.Backend(IPAddress.Loopback);
        var next = edge.Backend(IPAddress.Loopback);
        var listen = edge.Apply(EdgeHarness.Raw("svc", Any4, old.EndPoint))[0];

        using var socket = await Net.ConnectAsync(listen);
        await using var stream = new NetworkStream(socket);
        Assert.True(await Exchange.RoundAsync(stream, 10, 1));

        var started = DateTime.UtcNow;
        edge.Apply(EdgeHarness.Raw("svc", Any4, next.EndPoint));
        Assert.True(await Exchange.RoundAsync(stream, 10, 2), "the connection goes on during the drain period");
        var (_, closed) = await Net.ReadUntilClosedAsync(socket, TimeSpan.FromSeconds(10));
        Assert.True(closed);
        Assert.InRange((DateTime.UtcNow - started).TotalSeconds, 0.9, 5);
        Assert.Equal(1, edge.Server.Metrics.Closed(CloseCause.Drained));

        using var fresh = await Net.ConnectAsync(listen);
        await using var freshStream = new NetworkStream(fresh);
        Assert.True(await Exchange.RoundAsync(freshStream, 10, 3));
        Assert.Equal(1, next.Accepted);
    }

    [Fact]
    public async Task An_idle_connection_is_closed_after_the_idle_timeout()
    {
        await using var edge = new EdgeHarness(new EdgeSettings { IdleTimeout = TimeSpan.FromSeconds(1) });
        var backend = edge.Backend(IPAddress.Loopback);
        var listen = edge.Apply(EdgeHarness.Raw("idle", Any4, backend.EndPoint))[0];
        using var socket = await Net.ConnectAsync(listen);
        var (_, closed) = await Net.ReadUntilClosedAsync(socket, TimeSpan.FromSeconds(10));
        Assert.True(closed);
        Assert.Equal(1, edge.Server.Metrics.Closed(CloseCause.IdleTimeout));
    }

    [Fact]
    public async Task Half_close_is_forwarded_and_the_other_direction_keeps_flowing()
    {
        await using var edge = new EdgeHarness();
        using var backendListener = new TcpListener(IPAddress.Loopback, 0);
        backendListener.Start();
        var listen = edge.Apply(EdgeHarness.Raw("half", Any4, (IPEndPoint)backendListener.LocalEndpoint))[0];

        using var client = await Net.ConnectAsync(listen);
        using var server = await backendListener.AcceptSocketAsync();
        await client.SendAsync(Encoding.ASCII.GetBytes("request"));
        client.Shutdown(SocketShutdown.Send);
        var (request, requestClosed) = await Net.ReadUntilClosedAsync(server, TimeSpan.FromSeconds(10));
        Assert.Equal("request", Encoding.ASCII.GetString(request));
        Assert.True(requestClosed, "the client's FIN reaches the backend");

        await server.SendAsync(Encoding.ASCII.GetBytes("response after the client's FIN"));
        server.Shutdown(SocketShutdown.Send);
        var (response, responseClosed) = await Net.ReadUntilClosedAsync(client, TimeSpan.FromSeconds(10));
        Assert.Equal("response after the client's FIN", Encoding.ASCII.GetString(response));
        Assert.True(responseClosed);
    }

    [Fact]
    public async Task The_route_limit_closes_connections_over_it()
    {
        await using var edge = new EdgeHarness();
        var backend = edge.Backend(IPAddress.Loopback);
        var listen = edge.Apply(EdgeHarness.Raw("small", Any4, backend.EndPoint) with { MaxConnections = 2 })[0];

        using var one = await Net.ConnectAsync(listen);
        using var two = await Net.ConnectAsync(listen);
        await WaitAsync(() => backend.Open == 2);
        using var three = await Net.ConnectAsync(listen);
        var (_, closed) = await Net.ReadUntilClosedAsync(three, TimeSpan.FromSeconds(10));
        Assert.True(closed);
        Assert.Equal(1, edge.Server.Metrics.Closed(CloseCause.RouteLimit));
        Assert.Equal(2, backend.Accepted);
    }

    [Fact]
    public async Task The_edge_limit_closes_connections_over_it_at_accept()
    {
        await using var edge = new EdgeHarness(new EdgeSettings { MaxConnections = 1 });
        var backend = edge.Backend(IPAddress.Loopback);
        var listen = edge.Apply(EdgeHarness.Raw("one", Any4, backend.EndPoint))[0];

        using var first = await Net.ConnectAsync(listen);
        await WaitAsync(() => backend.Open == 1);
        using var second = await Net.ConnectAsync(listen);
        var (_, closed) = await Net.ReadUntilClosedAsync(second, TimeSpan.FromSeconds(10));
        Assert.True(closed);
        Assert.Equal(1, edge.Server.Metrics.Closed(CloseCause.EdgeLimit));
        Assert.Equal(1, backend.Accepted);
    }

    [Fact]
    public async Task A_listener_that_cannot_be_opened_leaves_the_routes_in_force()
    {
        await using var edge = new EdgeHarness();
        var backend = edge.Backend(IPAddress.Loopback);
        var listen = edge.Apply(EdgeHarness.Raw("keep", Any4, backend.EndPoint))[0];
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();

        var e = Assert.Throws<EdgeListenException>(() => edge.Server.Apply(RouteTable.Build(
        [
            EdgeHarness.Raw("keep", Any4, backend.EndPoint),
            EdgeHarness.Raw("taken", (IPEndPoint)squatter.LocalEndpoint, backend.EndPoint),
        ])));
        Assert.Contains(squatter.LocalEndpoint.ToString()!, e.Message);
        Assert.Single(edge.Server.Table.Routes);

        using var socket = await Net.ConnectAsync(listen);
        await using var stream = new NetworkStream(socket);
        Assert.True(await Exchange.RoundAsync(stream, 10, 1));
    }

    /// <summary>The ClientHello SslStream sends for <paramref name="serverName"/>.</summary>
    internal static async Task<byte[]> CaptureHelloAsync(string serverName)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        using var server = await listener.AcceptSocketAsync();
        var tls = new System.Net.Security.SslStream(client.GetStream());
        var handshake = tls.AuthenticateAsClientAsync(serverName);
        var buffer = new byte[16384];
        var filled = 0;
        while (filled < 5 || filled < 5 + ((buffer[3] << 8) | buffer[4]))
        {
            filled += await server.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
        }
        server.Close();
        await Assert.ThrowsAnyAsync<Exception>(() => handshake);
        return buffer[..filled];
    }

    private static async Task WaitAsync(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }
        Assert.True(condition());
    }
}

/// <summary>A stream that sends each write one byte per send while <see cref="Trickle"/> is on.</summary>
internal sealed class TrickleStream(Stream inner, TimeSpan pause) : Stream
{
    public bool Trickle { get; set; } = true;

    public int Writes { get; private set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!Trickle)
        {
            await inner.WriteAsync(buffer, cancellationToken);
            return;
        }
        for (var i = 0; i < buffer.Length; i++)
        {
            await inner.WriteAsync(buffer.Slice(i, 1), cancellationToken);
            await inner.FlushAsync(cancellationToken);
            Writes++;
            await Task.Delay(pause, cancellationToken);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
