using System.Net;
using System.Net.Sockets;
using Trc.Edge.Metrics;

namespace Trc.Edge.Proxy;

/// <summary>
/// One client connection and, once routed, its backend connection. The sweeper reads the
/// deadlines; <see cref="Abort"/> closes both sockets, which ends any pending read or write.
/// </summary>
internal sealed class EdgeConnection(Socket client, long acceptedAt)
{
    private int _aborted;
    private Socket? _backend;

    public Socket Client { get; } = client;

    /// <summary>When the whole hello must have arrived (a timestamp), or 0 once it has.</summary>
    public long HelloDeadline;

    /// <summary>When a byte last moved either way (a timestamp).</summary>
    public long LastActivity = acceptedAt;

    /// <summary>When a drained connection is closed (a timestamp), or 0.</summary>
    public long DrainDeadline;

    /// <summary>When the backend connect in progress is given up (a timestamp), or 0 when none is.</summary>
    public long ConnectDeadline;

    private Socket? _connecting;

    /// <summary>The backend the connection was forwarded to, once connected.</summary>
    public IPEndPoint? Backend { get; private set; }

    public RouteMetrics? Route { get; set; }

    /// <summary>Why the edge closed it, once it has.</summary>
    public CloseCause? AbortCause { get; private set; }

    public bool IsAborted => Volatile.Read(ref _aborted) != 0;

    /// <summary>Notes a backend connect in progress, so the sweeper can end it at <paramref name="deadline"/>.</summary>
    public void BeginConnect(Socket socket, long deadline)
    {
        Volatile.Write(ref _connecting, socket);
        Volatile.Write(ref ConnectDeadline, deadline);
        if (IsAborted)
        {
            CancelConnect();
        }
    }

    /// <summary>The connect attempt is over; true when the sweeper cut it short.</summary>
    public bool EndConnect()
    {
        Volatile.Write(ref ConnectDeadline, 0);
        return Interlocked.Exchange(ref _connecting, null) is null;
    }

    /// <summary>Closes the socket of the connect in progress, which ends the attempt.</summary>
    public void CancelConnect() => Interlocked.Exchange(ref _connecting, null)?.Dispose();

    /// <summary>Records the backend socket; false (and the socket closed) when the connection was aborted meanwhile.</summary>
    public bool SetBackend(Socket socket, IPEndPoint endpoint)
    {
        Backend = endpoint;
        Volatile.Write(ref _backend, socket);
        if (IsAborted)
        {
            socket.Dispose();
            return false;
        }
        return true;
    }

    /// <summary>
    /// Closes both sockets for <paramref name="cause"/>; the first cause wins. The cause is counted in
    /// <paramref name="metrics"/> before the sockets close, so a peer that sees the close also sees the count.
    /// </summary>
    public bool Abort(CloseCause cause, EdgeMetrics metrics)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return false;
        }
        AbortCause = cause;
        metrics.OnCause(cause, Route);
        Client.Dispose();
        CancelConnect();
        Volatile.Read(ref _backend)?.Dispose();
        return true;
    }

    /// <summary>Closes both sockets after a normal end.</summary>
    public void Close()
    {
        Interlocked.Exchange(ref _aborted, 1);
        Client.Dispose();
        Volatile.Read(ref _backend)?.Dispose();
    }
}
