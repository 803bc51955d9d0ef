namespace Trc.Edge.Tls;

/// <summary>What <see cref="ClientHelloReader.TryParse(ReadOnlySpan{byte})"/> made of the bytes so far.</summary>
public enum HelloStatus
{
    /// <summary>The bytes are a correct prefix of a ClientHello; read more and call again with all of them.</summary>
    NeedMoreData,

    /// <summary>The bytes can never become an acceptable ClientHello, whatever follows; close the connection.</summary>
    Invalid,

    /// <summary>A complete, well-formed ClientHello; <see cref="ClientHelloResult.ServerName"/> holds its SNI, if any.</summary>
    Ok,
}

/// <summary>
/// Why a hello was refused. The names are stable (they become metric labels): members are only ever
/// added, never renamed or reused.
/// </summary>
public enum HelloError
{
    /// <summary>No error: the status is <see cref="HelloStatus.Ok"/> or <see cref="HelloStatus.NeedMoreData"/>.</summary>
    None,

    /// <summary>The stream does not start with a TLS handshake record (plain HTTP, a PROXY header, application data, ...).</summary>
    NotTls,

    /// <summary>An SSL 2.0-style ClientHello (two-byte record header with the high bit set, message type 1).</summary>
    SslV2,

    /// <summary>A record version other than 3.0 to 3.4 (SSL 3.0 to TLS 1.3 framing).</summary>
    UnsupportedRecordVersion,

    /// <summary>A record after the first, still holding part of the hello, is not a handshake record.</summary>
    NotHandshake,

    /// <summary>The first handshake message is not a client_hello.</summary>
    NotClientHello,

    /// <summary>A record is longer than TLS allows (2^14 bytes of payload).</summary>
    RecordTooLarge,

    /// <summary>The hello, record headers included, would exceed <see cref="ClientHelloReader.MaxHelloBytes"/>.</summary>
    HelloTooLarge,

    /// <summary>A length or field that breaks the ClientHello grammar; the detail names it.</summary>
    Malformed,

    /// <summary>A server_name entry of type host_name with length 0.</summary>
    EmptyServerName,

    /// <summary>Two server_name extensions.</summary>
    DuplicateServerName,

    /// <summary>More than one host_name in the server_name list.</summary>
    MultipleServerNames,

    /// <summary>A host_name that is not a routable DNS name (bad byte, empty or long label, wildcard, too long).</summary>
    InvalidServerName,
}

/// <summary>The outcome of reading the first bytes of a connection as a TLS ClientHello.</summary>
/// <param name="Status">Whether the hello is complete, refused, or still arriving.</param>
/// <param name="ServerName">
/// For <see cref="HelloStatus.Ok"/>: the SNI host_name in lower-case ASCII without its trailing dot, or
/// null when the hello has no server_name extension (which is legal). Null otherwise.
/// </param>
/// <param name="Error">For <see cref="HelloStatus.Invalid"/>: why; <see cref="HelloError.None"/> otherwise.</param>
/// <param name="Detail">
/// For <see cref="HelloStatus.Invalid"/>: a short message naming the field and its byte offset from the
/// start of the stream. Bytes from the client appear escaped (<c>\x00</c>), never raw. Null otherwise.
/// </param>
/// <param name="Consumed">
/// For <see cref="HelloStatus.Ok"/>: the stream offset just past the hello's last byte, which is the end
/// of the last record holding it whenever the hello ends on a record boundary (every real client).
/// Informational: the proxy forwards the whole buffer unchanged. 0 otherwise.
/// </param>
public readonly record struct ClientHelloResult(HelloStatus Status, string? ServerName, HelloError Error, string? Detail, int Consumed);
