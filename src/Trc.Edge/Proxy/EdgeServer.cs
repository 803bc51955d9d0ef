using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trc.Edge.Metrics;
using Trc.Edge.ProxyProtocol;
using Trc.Edge.Routing;
using Trc.Edge.Tls;

namespace Trc.Edge.Proxy;

/// <summary>A listener the edge could not open; the route table in force is unchanged.</summary>
public sealed class EdgeListenException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// The L4 edge: listens where the routes say, reads each TLS ClientHello just far enough to take
/// its SNI name, connects to a backend of the matching route, optionally writes a PROXY v2 header,
/// forwards the bytes already read and then copies both ways until both sides are done. It never
/// terminates TLS and never changes a payload byte.
/// </summary>
/// <remarks>
/// A new route table applies to new connections at once. Connections already forwarded keep going;
/// those whose backend is gone from the new table are closed after the drain timeout. One timer
/// (the sweeper) enforces hello deadlines, idle timeouts and drains for every connection, so an
/// idle connection costs no timer and no buffer: reads wait with zero-byte receives.
/// </remarks>
public sealed partial class EdgeServer : IAsyncDisposable
{
    /// <summary>Room in front of the hello for a PROXY header, so header and hello go out in one write.</summary>
    private const int HeaderRoom = ProxyV2Writer.MaxLength;

    /// <summary>The first hello buffer; most hellos fit. It grows to the cap for the rest.</summary>
    private const int SmallHelloBuffer = 4096;

    /// <summary>The cap on bytes read before the hello is complete: the reader's cap and slack for pipelined bytes.</summary>
    private const int HelloCap = ClientHelloReader.MaxHelloBytes + 1024;

    /// <summary>The copy buffer of a busy direction; returned to the pool whenever the direction goes quiet.</summary>
    private const int CopyBuffer = 64 * 1024;

    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly object _applyLock = new();
    private readonly Dictionary<IPEndPoint, Listener> _listeners = [];
    private readonly ConcurrentDictionary<long, EdgeConnection> _connections = new();
    private readonly ConcurrentDictionary<IPEndPoint, long> _backendDownUntil = new();
    private readonly ConcurrentDictionary<string, StrongBox<int>> _rotation = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly ITimer _sweeper;
    private volatile State _state;
    private long _nextId;

    /// <summary>An edge with no routes; call <see cref="Apply"/> to give it some.</summary>
    public EdgeServer(EdgeSettings? settings = null, ILogger<EdgeServer>? logger = null, TimeProvider? time = null)
    {
        _log = (ILogger?)logger ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
        _state = new State(RouteTable.Empty, settings ?? new EdgeSettings());
        _sweeper = _time.CreateTimer(_ => Sweep(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
    }

    /// <summary>The edge's counters.</summary>
    public EdgeMetrics Metrics { get; } = new();

    /// <summary>The settings in force.</summary>
    public EdgeSettings Settings => _state.Settings;

    /// <summary>The route table in force.</summary>
    public RouteTable Table => _state.Table;

    /// <summary>
    /// The local endpoint a route's listen endpoint is bound to (the same, except that port 0 in
    /// the route becomes the port the system chose).
    /// </summary>
    public IPEndPoint? BoundEndpoint(IPEndPoint listen)
    {
        lock (_applyLock)
        {
            return _listeners.TryGetValue(listen, out var l) ? l.Bound : null;
        }
    }

    /// <summary>
    /// Makes <paramref name="table"/> (and <paramref name="settings"/>, when given) the edge's:
    /// opens the listeners it needs first, and when one cannot be opened closes the ones just
    /// opened and throws <see cref="EdgeListenException"/> with the previous table still in force.
    /// </summary>
    public void Apply(RouteTable table, EdgeSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        lock (_applyLock)
        {
            var opened = new List<Listener>();
            try
            {
                foreach (var listen in table.Listeners)
                {
                    if (!_listeners.ContainsKey(listen))
                    {
                        opened.Add(Listener.Open(listen, DualMode(table, listen)));
                    }
                }
            }
            catch (SocketException e)
            {
                foreach (var l in opened)
                {
                    l.Socket.Dispose();
                }
                var failed = table.Listeners.First(l => !_listeners.ContainsKey(l) && opened.All(o => !o.Configured.Equals(l)));
                throw new EdgeListenException($"cannot listen on {failed}: {e.Message}", e);
            }

            var backends = new HashSet<IPEndPoint>(table.Routes.SelectMany(r => r.Backends));
            _state = new State(table, settings ?? _state.Settings);

            foreach (var l in opened)
            {
                _listeners[l.Configured] = l;
                l.AcceptLoop = Task.Run(() => AcceptLoopAsync(l));
                LogListening(_log, l.Configured.ToString(), l.Bound.ToString());
            }
            foreach (var gone in _listeners.Keys.Where(k => table.ForListener(k) is null).ToList())
            {
                _listeners.Remove(gone, out var l);
                l!.Socket.Dispose(); // its accept loop ends by itself
                LogStoppedListening(_log, gone.ToString());
            }

            // Connections to a backend that is no longer in any route drain; a backend that is
            // back before its drain ends keeps its connections.
            var drainAt = _time.GetTimestamp() + Ticks(_state.Settings.DrainTimeout);
            var draining = 0;
            // Enumerating the dictionary itself takes no lock (.Values would take them all).
            foreach (var (_, c) in _connections)
            {
                if (c.Backend is { } b)
                {
                    if (!backends.Contains(b))
                    {
                        if (Interlocked.CompareExchange(ref c.DrainDeadline, drainAt, 0) == 0)
                        {
                            draining++;
                        }
                    }
                    else
                    {
                        Interlocked.Exchange(ref c.DrainDeadline, 0);
                    }
                }
            }
            LogApplied(_log, table.Routes.Count, _listeners.Count, draining);
        }
    }

    /// <summary>
    /// Stops accepting, lets open connections finish for up to <paramref name="grace"/>, then
    /// closes the rest.
    /// </summary>
    public async Task StopAsync(TimeSpan grace, CancellationToken ct = default)
    {
        var loops = new List<Task>();
        lock (_applyLock)
        {
            if (!_stopping.IsCancellationRequested)
            {
                _stopping.Cancel();
            }
            foreach (var l in _listeners.Values)
            {
                l.Socket.Dispose();
                loops.Add(l.AcceptLoop);
            }
            _listeners.Clear();
        }
        await Task.WhenAll(loops).ConfigureAwait(false);
        var until = _time.GetTimestamp() + Ticks(grace);
        while (!_connections.IsEmpty && _time.GetTimestamp() < until && !ct.IsCancellationRequested)
        {
            await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
        }
        foreach (var (_, c) in _connections)
        {
            Fail(c, CloseCause.Shutdown);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        await _sweeper.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private static bool DualMode(RouteTable table, IPEndPoint listen) =>
        listen.Address.Equals(IPAddress.IPv6Any) && table.ForListener(new IPEndPoint(IPAddress.Any, listen.Port)) is null;

    private async Task AcceptLoopAsync(Listener listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.Socket.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted)
            {
                return;
            }
            catch (SocketException e)
            {
                // Out of file descriptors or memory: wait a little rather than spin.
                LogAcceptFailed(_log, listener.Configured.ToString(), e.SocketErrorCode.ToString());
                await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            _ = HandleAsync(client, listener.Configured);
        }
    }

    private async Task HandleAsync(Socket client, IPEndPoint listen)
    {
        var id = Interlocked.Increment(ref _nextId);
        var now = _time.GetTimestamp();
        var conn = new EdgeConnection(client, now);
        var state = _state;
        Metrics.OnAccepted();
        _connections[id] = conn;
        byte[]? hello = null;
        try
        {
            if (Metrics.Active > state.Settings.MaxConnections)
            {
                Fail(conn, CloseCause.EdgeLimit);
                return;
            }
            client.NoDelay = true;
            // Reads are tried at once and only wait (without a buffer) when nothing is there.
            client.Blocking = false;
            var routes = state.Table.ForListener(listen);
            EdgeRoute? route;
            var filled = 0;
            if (routes is null)
            {
                Fail(conn, CloseCause.NoRoute);
                return;
            }
            if (routes.Raw is { } raw)
            {
                route = raw;
            }
            else
            {
                conn.HelloDeadline = now + Ticks(state.Settings.HelloTimeout);
                string? serverName = null;
                while (true)
                {
                    if (hello is null)
                    {
                        hello = ArrayPool<byte>.Shared.Rent(HeaderRoom + SmallHelloBuffer);
                    }
                    else if (HeaderRoom + filled == hello.Length)
                    {
                        if (filled >= HelloCap)
                        {
                            Fail(conn, CloseCause.HelloInvalid);
                            LogHelloRefused(_log, Endpoint(client), "HelloTooLarge", $"no complete hello in {filled} bytes");
                            return;
                        }
                        var bigger = ArrayPool<byte>.Shared.Rent(HeaderRoom + HelloCap);
                        hello.AsSpan(HeaderRoom, filled).CopyTo(bigger.AsSpan(HeaderRoom));
                        ArrayPool<byte>.Shared.Return(hello);
                        hello = bigger;
                    }
                    var room = Math.Min(hello.Length, HeaderRoom + HelloCap) - HeaderRoom - filled;
                    var n = client.Receive(hello, HeaderRoom + filled, room, SocketFlags.None, out var error);
                    if (error == SocketError.WouldBlock)
                    {
                        if (filled == 0)
                        {
                            // Wait without a buffer: a connection that sends nothing holds none.
                            ArrayPool<byte>.Shared.Return(hello);
                            hello = null;
                        }
                        await client.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                        continue;
                    }
                    if (error != SocketError.Success)
                    {
                        throw new SocketException((int)error);
                    }
                    if (n == 0)
                    {
                        Fail(conn, CloseCause.HelloIncomplete);
                        return;
                    }
                    filled += n;
                    var result = ClientHelloReader.TryParse(hello.AsSpan(HeaderRoom, filled));
                    if (result.Status == HelloStatus.Ok)
                    {
                        serverName = result.ServerName;
                        break;
                    }
                    if (result.Status == HelloStatus.Invalid)
                    {
                        Fail(conn, CloseCause.HelloInvalid);
                        var detail = ProxyV2Writer.StartsWithProxyHeader(hello.AsSpan(HeaderRoom, filled))
                            ? "a PROXY header sent by the client (never trusted)"
                            : result.Detail ?? "";
                        LogHelloRefused(_log, Endpoint(client), result.Error.ToString(), detail);
                        return;
                    }
                }
                conn.HelloDeadline = 0;
                route = routes.Match(serverName);
                if (route is null)
                {
                    Fail(conn, CloseCause.NoRoute);
                    LogNoRoute(_log, Endpoint(client), listen.ToString(), serverName ?? "(no SNI)");
                    return;
                }
            }

            var metrics = Metrics.Route(route.Name);
            conn.Route = metrics;
            if (metrics.OpenOne() > route.MaxConnections && route.MaxConnections > 0)
            {
                Fail(conn, CloseCause.RouteLimit);
                return;
            }
            conn.LastActivity = _time.GetTimestamp();

            var backend = await ConnectAsync(route, state.Settings, conn).ConfigureAwait(false);
            if (backend is null)
            {
                Fail(conn, conn.IsAborted ? conn.AbortCause ?? CloseCause.BackendUnavailable : CloseCause.BackendUnavailable);
                return;
            }

            // The PROXY header, then the bytes already read, in one write.
            var headerLength = 0;
            if (route.ProxyV2)
            {
                hello ??= ArrayPool<byte>.Shared.Rent(HeaderRoom);
                Span<byte> header = stackalloc byte[ProxyV2Writer.MaxLength];
                headerLength = ProxyV2Writer.Write(header, (IPEndPoint)client.RemoteEndPoint!, (IPEndPoint)client.LocalEndPoint!);
                header[..headerLength].CopyTo(hello.AsSpan(HeaderRoom - headerLength));
            }
            if (headerLength + filled > 0)
            {
                if (!await SendAllAsync(backend, hello!, HeaderRoom - headerLength, headerLength + filled).ConfigureAwait(false))
                {
                    Fail(conn, CloseCause.BackendError);
                    return;
                }
                metrics.AddFromClient(filled);
            }
            if (hello is not null)
            {
                ArrayPool<byte>.Shared.Return(hello);
                hello = null;
            }

            await SpliceAsync(conn, client, backend, metrics).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away, or the sweeper closed the socket (its cause is recorded).
            Fail(conn, conn.HelloDeadline != 0 ? CloseCause.HelloIncomplete : CloseCause.ClientError);
        }
        catch (Exception e)
        {
            LogUnexpected(_log, e);
            Fail(conn, CloseCause.ClientError);
        }
        finally
        {
            if (hello is not null)
            {
                ArrayPool<byte>.Shared.Return(hello);
            }
            conn.Close();
            _connections.TryRemove(id, out _);
            conn.Route?.CloseOne();
            Metrics.OnClosed();
        }
    }

    private async Task<Socket?> ConnectAsync(EdgeRoute route, EdgeSettings settings, EdgeConnection conn)
    {
        var backends = route.Backends;
        if (backends.Count == 0)
        {
            return null;
        }
        var rotation = _rotation.GetOrAdd(route.Name, _ => new StrongBox<int>());
        var start = (int)((uint)Interlocked.Increment(ref rotation.Value) % (uint)backends.Count);
        // First the backends that have not just failed, then (if all have) those that have.
        for (var pass = 0; pass < 2; pass++)
        {
            for (var i = 0; i < backends.Count; i++)
            {
                var endpoint = backends[(start + i) % backends.Count];
                var down = _backendDownUntil.TryGetValue(endpoint, out var until) && until > _time.GetTimestamp();
                if (down != (pass == 1))
                {
                    continue;
                }
                if (conn.IsAborted)
                {
                    return null;
                }
                var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                // The sweeper closes the socket when the connect outlives its deadline (no timer per attempt).
                conn.BeginConnect(socket, _time.GetTimestamp() + Ticks(settings.ConnectTimeout));
                try
                {
                    socket.NoDelay = true;
                    socket.Blocking = false;
                    await socket.ConnectAsync(endpoint).ConfigureAwait(false);
                    conn.EndConnect();
                    if (_backendDownUntil.Count != 0)
                    {
                        _backendDownUntil.TryRemove(endpoint, out _);
                    }
                    return conn.SetBackend(socket, endpoint) ? socket : null;
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    var timedOut = conn.EndConnect();
                    socket.Dispose();
                    if (conn.IsAborted)
                    {
                        return null;
                    }
                    _backendDownUntil[endpoint] = _time.GetTimestamp() + Ticks(settings.BackendRetryAfter);
                    Metrics.OnBackendConnectFailed(endpoint.ToString());
                    LogBackendFailed(_log, route.Name, endpoint.ToString(), timedOut ? "Timeout" : e is SocketException se ? se.SocketErrorCode.ToString() : e.GetType().Name);
                }
            }
        }
        return null;
    }

    private async Task SpliceAsync(EdgeConnection conn, Socket client, Socket backend, RouteMetrics metrics)
    {
        // Each direction ends on its own: an EOF is passed on as a half-close and the other direction
        // goes on; a failure closes the connection (both sockets), which ends the other direction too.
        var down = PumpAsync(backend, client, conn, metrics, fromClient: false);
        await PumpAsync(client, backend, conn, metrics, fromClient: true).ConfigureAwait(false);
        await down.ConfigureAwait(false);
    }

    private async Task PumpAsync(Socket from, Socket to, EdgeConnection conn, RouteMetrics metrics, bool fromClient)
    {
        byte[]? buffer = null;
        try
        {
            while (true)
            {
                int n;
                SocketError error;
                try
                {
                    if (buffer is null)
                    {
                        // Wait for data without holding a buffer (idle connections cost none).
                        await from.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                        buffer = ArrayPool<byte>.Shared.Rent(CopyBuffer);
                    }
                    // Both sockets are non-blocking: this read takes what is there, or says nothing is.
                    n = from.Receive(buffer, 0, buffer.Length, SocketFlags.None, out error);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    Fail(conn, fromClient ? CloseCause.ClientError : CloseCause.BackendError);
                    return;
                }
                if (error == SocketError.WouldBlock)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                    continue;
                }
                if (error != SocketError.Success)
                {
                    Fail(conn, fromClient ? CloseCause.ClientError : CloseCause.BackendError);
                    return;
                }
                if (n == 0)
                {
                    try
                    {
                        to.Shutdown(SocketShutdown.Send);
                    }
                    catch (Exception e) when (e is SocketException or ObjectDisposedException)
                    {
                        // The other side is gone already; the other direction reports it.
                    }
                    return;
                }
                conn.LastActivity = _time.GetTimestamp();
                if (!await SendAllAsync(to, buffer, 0, n).ConfigureAwait(false))
                {
                    Fail(conn, fromClient ? CloseCause.BackendError : CloseCause.ClientError);
                    return;
                }
                if (fromClient)
                {
                    metrics.AddFromClient(n);
                }
                else
                {
                    metrics.AddToClient(n);
                }
            }
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>
    /// Sends all of the bytes: first straight away (the socket is non-blocking; usually the kernel
    /// takes them all and no asynchronous operation is needed), then the rest asynchronously.
    /// False when the socket failed or was closed.
    /// </summary>
    private static async ValueTask<bool> SendAllAsync(Socket to, byte[] buffer, int offset, int count)
    {
        try
        {
            var sent = to.Send(buffer, offset, count, SocketFlags.None, out var error);
            if (error != SocketError.Success && error != SocketError.WouldBlock)
            {
                return false;
            }
            if (sent < count)
            {
                await to.SendAsync(buffer.AsMemory(offset + sent, count - sent), SocketFlags.None).ConfigureAwait(false);
            }
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    private void Fail(EdgeConnection conn, CloseCause cause)
    {
        conn.Abort(cause, Metrics);
    }

    private void Sweep()
    {
        try
        {
            var now = _time.GetTimestamp();
            var idle = Ticks(_state.Settings.IdleTimeout);
            foreach (var (_, c) in _connections)
            {
                var hello = Volatile.Read(ref c.HelloDeadline);
                var drain = Volatile.Read(ref c.DrainDeadline);
                var connect = Volatile.Read(ref c.ConnectDeadline);
                if (connect != 0 && now > connect)
                {
                    // Ends this attempt only; the next backend may still serve the client.
                    c.CancelConnect();
                }
                if (hello != 0 && now > hello)
                {
                    Fail(c, CloseCause.HelloTimeout);
                }
                else if (drain != 0 && now > drain)
                {
                    Fail(c, CloseCause.Drained);
                }
                else if (hello == 0 && now - Volatile.Read(ref c.LastActivity) > idle)
                {
                    Fail(c, CloseCause.IdleTimeout);
                }
            }
        }
        catch (Exception e)
        {
            // The sweeper must never die; the next tick tries again.
            LogUnexpected(_log, e);
        }
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    private static string Endpoint(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint?.ToString() ?? "?";
        }
        catch (ObjectDisposedException)
        {
            return "?";
        }
    }

    [LoggerMessage(EventId = 5000, Level = LogLevel.Information, Message = "listening on {Listen} (bound {Bound})")]
    private static partial void LogListening(ILogger logger, string listen, string bound);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "stopped listening on {Listen}: no route uses it")]
    private static partial void LogStoppedListening(ILogger logger, string listen);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "route table applied: {Routes} routes on {Listeners} listeners; {Draining} connections draining")]
    private static partial void LogApplied(ILogger logger, int routes, int listeners, int draining);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "accept on {Listen} failed: {Error}")]
    private static partial void LogAcceptFailed(ILogger logger, string listen, string error);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Debug, Message = "hello from {Client} refused: {Error}: {Detail}")]
    private static partial void LogHelloRefused(ILogger logger, string client, string error, string detail);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Debug, Message = "no route for {ServerName} on {Listen} (client {Client})")]
    private static partial void LogNoRoute(ILogger logger, string client, string listen, string serverName);

    [LoggerMessage(EventId = 5006, Level = LogLevel.Warning, Message = "route {Route}: backend {Backend} failed to connect: {Error}")]
    private static partial void LogBackendFailed(ILogger logger, string route, string backend, string error);

    [LoggerMessage(EventId = 5007, Level = LogLevel.Error, Message = "unexpected error in the edge")]
    private static partial void LogUnexpected(ILogger logger, Exception exception);

    private sealed record State(RouteTable Table, EdgeSettings Settings);

    private sealed class Listener
    {
        private Listener(IPEndPoint configured, Socket socket)
        {
            Configured = configured;
            Socket = socket;
            Bound = (IPEndPoint)socket.LocalEndPoint!;
        }

        public IPEndPoint Configured { get; }

        public IPEndPoint Bound { get; }

        public Socket Socket { get; }

        public Task AcceptLoop { get; set; } = Task.CompletedTask;

        public static Listener Open(IPEndPoint endpoint, bool dualMode)
        {
            var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                if (endpoint.AddressFamily == AddressFamily.InterNetworkV6)
                {
                    socket.DualMode = dualMode;
                }
                if (OperatingSystem.IsLinux())
                {
                    // SO_REUSEADDR (not SO_REUSEPORT): rebind at once after a restart despite
                    // TIME_WAIT connections, while a second process still cannot take the port.
                    socket.SetRawSocketOption(1, 2, BitConverter.GetBytes(1));
                }
                socket.Bind(endpoint);
                socket.Listen(4096);
                return new Listener(endpoint, socket);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }
}
