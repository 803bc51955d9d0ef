using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Trc.Edge.Tls;

namespace Trc.Bench;

/// <summary>
/// The ClientHello the edge benchmark sends: a real one from SslStream (OpenSSL underneath), with
/// SNI and ALPN, padded with an RFC 7685 padding extension to the size of a browser hello that
/// carries a post-quantum key share (X25519MLKEM768 makes Chrome's and Firefox's about 1.8 KB).
/// </summary>
internal static class BenchHello
{
    private const int PaddingExtension = 21;
    private const int PreSharedKeyExtension = 41;

    public static async Task<byte[]> CaptureAsync(string serverName, int size)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        var server = await listener.AcceptAsync();
        var ssl = new SslStream(new NetworkStream(client, ownsSocket: false), leaveInnerStreamOpen: false, (_, _, _, _) => true);
        var handshake = ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
        });
        var header = new byte[5];
        await ReceiveExactlyAsync(server, header);
        var body = new byte[BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(3))];
        await ReceiveExactlyAsync(server, body);
        // Closing the server fails the handshake; only the hello was wanted.
        server.Dispose();
        try
        {
            await handshake;
        }
        catch (Exception e) when (e is IOException or AuthenticationException)
        {
        }
        await ssl.DisposeAsync();
        byte[] hello = [.. header, .. body];
        var padded = Pad(hello, size);
        var check = ClientHelloReader.TryParse(padded.AsSpan());
        if (check.Status != HelloStatus.Ok || check.ServerName != serverName)
        {
            throw new InvalidOperationException($"the padded hello does not parse: {check.Status} {check.Error} {check.Detail} (name {check.ServerName})");
        }
        return padded;
    }

    /// <summary>The hello grown to <paramref name="total"/> bytes (record header included) by a padding extension.</summary>
    private static byte[] Pad(byte[] hello, int total)
    {
        var add = total - hello.Length;
        if (add < 4)
        {
            return hello;
        }
        // record header (5), handshake header (4), legacy_version (2), random (32), then the
        // variable fields up to the extensions block.
        var p = 5 + 4 + 2 + 32;
        p += 1 + hello[p];
        p += 2 + BinaryPrimitives.ReadUInt16BigEndian(hello.AsSpan(p));
        p += 1 + hello[p];
        var extensionsAt = p;
        var end = p + 2 + BinaryPrimitives.ReadUInt16BigEndian(hello.AsSpan(p));
        if (end != hello.Length)
        {
            throw new InvalidOperationException("the captured hello is not one record holding one ClientHello");
        }
        // pre_shared_key must stay the last extension (RFC 8446 4.2.11); padding goes before it.
        var insertAt = end;
        for (var q = p + 2; q < end; q += 4 + BinaryPrimitives.ReadUInt16BigEndian(hello.AsSpan(q + 2)))
        {
            var type = BinaryPrimitives.ReadUInt16BigEndian(hello.AsSpan(q));
            if (type == PaddingExtension)
            {
                throw new InvalidOperationException("the captured hello already has a padding extension");
            }
            if (type == PreSharedKeyExtension)
            {
                insertAt = q;
                break;
            }
        }
        var padded = new byte[total];
        hello.AsSpan(0, insertAt).CopyTo(padded);
        BinaryPrimitives.WriteUInt16BigEndian(padded.AsSpan(insertAt), PaddingExtension);
        BinaryPrimitives.WriteUInt16BigEndian(padded.AsSpan(insertAt + 2), (ushort)(add - 4));
        hello.AsSpan(insertAt).CopyTo(padded.AsSpan(insertAt + add));
        BinaryPrimitives.WriteUInt16BigEndian(padded.AsSpan(3), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(hello.AsSpan(3)) + add));
        var handshake = (hello[6] << 16 | hello[7] << 8 | hello[8]) + add;
        padded[6] = (byte)(handshake >> 16);
        padded[7] = (byte)(handshake >> 8);
        padded[8] = (byte)handshake;
        BinaryPrimitives.WriteUInt16BigEndian(padded.AsSpan(extensionsAt), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(hello.AsSpan(extensionsAt)) + add));
        return padded;
    }

    public static async Task ReceiveExactlyAsync(Socket socket, Memory<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0)
            {
                throw new IOException("the peer closed early");
            }
            buffer = buffer[n..];
        }
    }
}

/// <summary>
/// A backend of the edge benchmark, in the bench process. It first reads one TLS record (the
/// hello), after a PROXY v2 header when it expects one (and counts a connection without a valid
/// header as an error). Then an <see cref="BackendKind.Answer"/> backend writes 64 bytes and
/// closes; a <see cref="BackendKind.Session"/> backend reads a 9-byte command (op, big-endian
/// 64-bit argument): 'U' n reads n bytes and answers one byte; 'D' n writes n bytes; 'E' n echoes
/// n-byte messages until EOF.
/// </summary>
internal sealed class BenchBackend : IDisposable
{
    public const int AnswerBytes = 64;
    private const int PreambleBuffer = 4096;
    private const int BulkBuffer = 256 * 1024;
    private static readonly byte[] Answer = Enumerable.Repeat((byte)'A', AnswerBytes).ToArray();
    private static readonly byte[] Zeros = new byte[BulkBuffer];

    private readonly Socket _listener;
    private readonly BackendKind _kind;
    private readonly bool _proxyV2;
    private long _preambles;
    private long _errors;

    public BenchBackend(BackendKind kind, bool proxyV2)
    {
        _kind = kind;
        _proxyV2 = proxyV2;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(4096);
        Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
        for (var i = 0; i < 2; i++)
        {
            _ = Task.Run(AcceptLoopAsync);
        }
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>Connections whose hello (and PROXY header) arrived whole.</summary>
    public long Preambles => Interlocked.Read(ref _preambles);

    /// <summary>Connections with a missing or wrong PROXY header, a non-TLS start, or a short upload.</summary>
    public long Errors => Interlocked.Read(ref _errors);

    public void Dispose() => _listener.Dispose();

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket s;
            try
            {
                s = await _listener.AcceptAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = ServeAsync(s);
        }
    }

    private async Task ServeAsync(Socket s)
    {
        var small = ArrayPool<byte>.Shared.Rent(PreambleBuffer);
        byte[]? big = null;
        try
        {
            s.NoDelay = true;
            var have = 0;
            int need;
            while (true)
            {
                need = PreambleLength(small.AsSpan(0, have));
                if (need == -2)
                {
                    Interlocked.Increment(ref _errors);
                    return;
                }
                if (need >= 0 && have >= need)
                {
                    break;
                }
                var n = await s.ReceiveAsync(small.AsMemory(have), SocketFlags.None);
                if (n == 0)
                {
                    return;
                }
                have += n;
            }
            Interlocked.Increment(ref _preambles);
            if (_kind == BackendKind.Answer)
            {
                await s.SendAsync(Answer, SocketFlags.None);
                return;
            }

            while (have - need < 9)
            {
                var n = await s.ReceiveAsync(small.AsMemory(have), SocketFlags.None);
                if (n == 0)
                {
                    return;
                }
                have += n;
            }
            var op = small[need];
            var argument = BinaryPrimitives.ReadInt64BigEndian(small.AsSpan(need + 1));
            var extra = have - need - 9;
            big = ArrayPool<byte>.Shared.Rent(BulkBuffer);
            switch (op)
            {
                case (byte)'U':
                    var remaining = argument - extra;
                    while (remaining > 0)
                    {
                        var n = await s.ReceiveAsync(big, SocketFlags.None);
                        if (n == 0)
                        {
                            Interlocked.Increment(ref _errors);
                            return;
                        }
                        remaining -= n;
                    }
                    await s.SendAsync(Answer.AsMemory(0, 1), SocketFlags.None);
                    break;
                case (byte)'D':
                    for (var left = argument; left > 0;)
                    {
                        var chunk = (int)Math.Min(Zeros.Length, left);
                        await s.SendAsync(Zeros.AsMemory(0, chunk), SocketFlags.None);
                        left -= chunk;
                    }
                    break;
                case (byte)'E':
                    var size = (int)argument;
                    small.AsSpan(need + 9, extra).CopyTo(big);
                    var filled = extra;
                    while (true)
                    {
                        while (filled < size)
                        {
                            var n = await s.ReceiveAsync(big.AsMemory(filled), SocketFlags.None);
                            if (n == 0)
                            {
                                return;
                            }
                            filled += n;
                        }
                        await s.SendAsync(big.AsMemory(0, size), SocketFlags.None);
                        big.AsSpan(size, filled - size).CopyTo(big);
                        filled -= size;
                    }
                default:
                    Interlocked.Increment(ref _errors);
                    return;
            }
            // Done; wait for the client to close.
            while (await s.ReceiveAsync(small, SocketFlags.None) > 0)
            {
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            s.Dispose();
            ArrayPool<byte>.Shared.Return(small);
            if (big is not null)
            {
                ArrayPool<byte>.Shared.Return(big);
            }
        }
    }

    /// <summary>Bytes of the PROXY header (when expected) and the first TLS record; -1 when unknown yet, -2 when invalid.</summary>
    private int PreambleLength(ReadOnlySpan<byte> data)
    {
        var offset = 0;
        if (_proxyV2)
        {
            if (data.Length < 16)
            {
                return -1;
            }
            // Signature, version 2 command PROXY (0x21), TCP over IPv4 (0x11): the clients are 127.0.0.1.
            if (!data[..12].SequenceEqual(Trc.Edge.ProxyProtocol.ProxyV2Writer.Signature) || data[12] != 0x21 || data[13] != 0x11)
            {
                return -2;
            }
            offset = 16 + BinaryPrimitives.ReadUInt16BigEndian(data[14..]);
        }
        if (data.Length < offset + 5)
        {
            return -1;
        }
        if (data[offset] != 0x16)
        {
            return -2;
        }
        return offset + 5 + BinaryPrimitives.ReadUInt16BigEndian(data[(offset + 3)..]);
    }
}

internal enum BackendKind
{
    Answer,
    Session,
}

/// <summary>A proxy under test, as a child process: its address, RSS, CPU time and open descriptors from /proc.</summary>
internal sealed class ProxyProcess : IAsyncDisposable
{
    /// <summary>Live proxies, killed if the bench is interrupted so that none outlives it.</summary>
    private static readonly HashSet<Process> Live = [];
    private static readonly PosixSignalRegistration[] OnSignals =
        [PosixSignalRegistration.Create(PosixSignal.SIGINT, _ => KillAll()), PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => KillAll())];

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private bool _disposed;

    static ProxyProcess() => AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();

    private ProxyProcess(string name, Process process, IPEndPoint endpoint)
    {
        Name = name;
        _process = process;
        Endpoint = endpoint;
    }

    public string Name { get; }

    public IPEndPoint Endpoint { get; }

    public int Pid => _process.Id;

    public static async Task<ProxyProcess> StartAsync(string name, string fileName, IEnumerable<string> arguments, IPEndPoint endpoint, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {fileName}");
        lock (Live)
        {
            Live.Add(process);
        }
        var proxy = new ProxyProcess(name, process, endpoint);
        process.OutputDataReceived += (_, e) => proxy.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => proxy.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var until = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                await proxy.DisposeAsync();
                throw new InvalidOperationException($"{name} exited with {process.ExitCode}:\n{proxy.Output}");
            }
            try
            {
                using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await probe.ConnectAsync(endpoint);
                return proxy;
            }
            catch (SocketException) when (until.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(100);
            }
            catch
            {
                await proxy.DisposeAsync();
                throw;
            }
        }
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Resident set size, KiB.</summary>
    public long RssKiB()
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
            }
        }
        throw new InvalidOperationException("no VmRSS");
    }

    /// <summary>User plus system CPU time of the whole process (all threads).</summary>
    public TimeSpan Cpu()
    {
        var stat = File.ReadAllText($"/proc/{Pid}/stat");
        // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0);
    }

    public int OpenDescriptors() => Directory.GetFiles($"/proc/{Pid}/fd").Length;

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        lock (Live)
        {
            Live.Remove(_process);
        }
        _process.Dispose();
    }

    private static void KillAll()
    {
        _ = OnSignals;
        lock (Live)
        {
            foreach (var p in Live)
            {
                try
                {
                    p.Kill();
                }
                catch (InvalidOperationException)
                {
                }
            }
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            if (_output.Length < 64 * 1024)
            {
                _output.AppendLine(line);
            }
        }
    }
}
