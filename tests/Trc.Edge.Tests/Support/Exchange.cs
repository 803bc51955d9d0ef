using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace Trc.Edge.Tests.Support;

/// <summary>
/// A byte-exact exchange: the client sends a 16-byte round header (length N, seed), then both
/// sides send N pattern bytes at once (client: pattern(seed), backend: pattern(seed + 1)), each
/// checks every byte it receives, and the backend ends the round with one status byte (1: all
/// N bytes arrived intact). N = 0 ends the connection. Over TLS (SslStream) or plain TCP.
/// </summary>
public static class Exchange
{
    /// <summary>Runs one round as the client; true when both directions arrived intact.</summary>
    public static async Task<bool> RoundAsync(Stream stream, long length, ulong seed, CancellationToken ct = default)
    {
        var header = new byte[16];
        BinaryPrimitives.WriteInt64BigEndian(header, length);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), seed);
        await stream.WriteAsync(header, ct);
        var send = SendPatternAsync(stream, length, seed, ct);
        var received = await ReceivePatternAsync(stream, length, seed + 1, ct);
        await send;
        var status = new byte[1];
        await stream.ReadExactlyAsync(status, ct);
        return received && status[0] == 1;
    }

    /// <summary>Ends the exchange (a zero-length round).</summary>
    public static async Task EndAsync(Stream stream, CancellationToken ct = default) => await stream.WriteAsync(new byte[16], ct);

    internal static async Task ServeAsync(Stream stream, CancellationToken ct)
    {
        var header = new byte[16];
        while (true)
        {
            try
            {
                await stream.ReadExactlyAsync(header, ct);
            }
            catch (EndOfStreamException)
            {
                return;
            }
            var length = BinaryPrimitives.ReadInt64BigEndian(header);
            var seed = BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8));
            if (length == 0)
            {
                return;
            }
            var send = SendPatternAsync(stream, length, seed + 1, ct);
            var ok = await ReceivePatternAsync(stream, length, seed, ct);
            await send;
            await stream.WriteAsync(new[] { ok ? (byte)1 : (byte)0 }, ct);
        }
    }

    private static async Task SendPatternAsync(Stream stream, long length, ulong seed, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        var pattern = new Pattern(seed);
        for (long sent = 0; sent < length;)
        {
            var n = (int)Math.Min(buffer.Length, length - sent);
            pattern.Fill(buffer.AsSpan(0, n));
            await stream.WriteAsync(buffer.AsMemory(0, n), ct);
            sent += n;
        }
        await stream.FlushAsync(ct);
    }

    private static async Task<bool> ReceivePatternAsync(Stream stream, long length, ulong seed, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        var expected = new byte[buffer.Length];
        var pattern = new Pattern(seed);
        var ok = true;
        for (long got = 0; got < length;)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - got)), ct);
            if (n == 0)
            {
                throw new EndOfStreamException($"the stream ended after {got} of {length} bytes");
            }
            pattern.Fill(expected.AsSpan(0, n));
            ok &= buffer.AsSpan(0, n).SequenceEqual(expected.AsSpan(0, n));
            got += n;
        }
        return ok;
    }

    /// <summary>A deterministic byte stream (xorshift64*), fillable in chunks of any size.</summary>
    private sealed class Pattern(ulong seed)
    {
        private ulong _state = seed == 0 ? 0x9E3779B97F4A7C15UL : seed;
        private ulong _word;
        private int _left;

        public void Fill(Span<byte> span)
        {
            for (var i = 0; i < span.Length; i++)
            {
                if (_left == 0)
                {
                    _state ^= _state >> 12;
                    _state ^= _state << 25;
                    _state ^= _state >> 27;
                    _word = _state * 0x2545F4914F6CDD1DUL;
                    _left = 8;
                }
                span[i] = (byte)_word;
                _word >>= 8;
                _left--;
            }
        }
    }
}

/// <summary>
/// A backend serving <see cref="Exchange"/> rounds, over TLS with its own certificate or plain
/// TCP; optionally reading a PROXY v2 header first (kept in <see cref="ProxyHeaders"/>).
/// </summary>
public sealed class ExchangeBackend : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly TestCertificate? _certificate;
    private readonly bool _expectProxy;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly ConcurrentDictionary<Socket, byte> _open = new();
    private int _accepted;

    private ExchangeBackend(Socket listener, TestCertificate? certificate, bool expectProxy)
    {
        _listener = listener;
        _certificate = certificate;
        _expectProxy = expectProxy;
        EndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _loop = Task.Run(AcceptAsync);
    }

    public IPEndPoint EndPoint { get; }

    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Connections open now.</summary>
    public int Open => _open.Count;

    public ConcurrentQueue<byte[]> ProxyHeaders { get; } = new();

    public ConcurrentQueue<Exception> Errors { get; } = new();

    public static ExchangeBackend Start(IPAddress address, TestCertificate? certificate = null, bool expectProxy = false)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(address, 0));
        socket.Listen(1024);
        return new ExchangeBackend(socket, certificate, expectProxy);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            Interlocked.Increment(ref _accepted);
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        _open[client] = 0;
        try
        {
            client.NoDelay = true;
            await using var network = new NetworkStream(client, ownsSocket: true);
            if (_expectProxy)
            {
                var fixedPart = new byte[16];
                await network.ReadExactlyAsync(fixedPart, _stop.Token);
                var rest = new byte[BinaryPrimitives.ReadUInt16BigEndian(fixedPart.AsSpan(14))];
                await network.ReadExactlyAsync(rest, _stop.Token);
                ProxyHeaders.Enqueue([.. fixedPart, .. rest]);
            }
            if (_certificate is null)
            {
                await Exchange.ServeAsync(network, _stop.Token);
                return;
            }
            await using var tls = new SslStream(network);
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate.Certificate }, _stop.Token);
            await Exchange.ServeAsync(tls, _stop.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
            Errors.Enqueue(e);
        }
        finally
        {
            _open.TryRemove(client, out _);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        foreach (var s in _open.Keys)
        {
            s.Dispose();
        }
        await _loop;
        _stop.Dispose();
    }
}
