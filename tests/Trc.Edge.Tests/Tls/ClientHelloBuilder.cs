using System.Buffers.Binary;
using System.Text;

namespace Trc.Edge.Tests.Tls;

/// <summary>One extension as it goes on the wire: type and opaque data.</summary>
public sealed record HelloExtension(ushort Type, byte[] Data)
{
    public const ushort ServerNameType = 0x0000;

    /// <summary>server_name with one host_name entry.</summary>
    public static HelloExtension ServerName(string host) => ServerName(Encoding.ASCII.GetBytes(host));

    /// <summary>server_name with one host_name entry of raw bytes (NUL, ESC, high bytes allowed).</summary>
    public static HelloExtension ServerName(byte[] host) => ServerNameEntries((0, host));

    /// <summary>server_name with any entries: (name_type, name) each with a 2-byte length.</summary>
    public static HelloExtension ServerNameEntries(params (byte Type, byte[] Name)[] entries)
    {
        var list = new List<byte>();
        foreach (var (type, name) in entries)
        {
            list.Add(type);
            list.AddRange(U16(name.Length));
            list.AddRange(name);
        }
        return new(ServerNameType, [.. U16(list.Count), .. list]);
    }

    /// <summary>application_layer_protocol_negotiation (RFC 7301).</summary>
    public static HelloExtension Alpn(params string[] protocols)
    {
        var list = protocols.SelectMany(p => (byte[])[(byte)p.Length, .. Encoding.ASCII.GetBytes(p)]).ToArray();
        return new(0x0010, [.. U16(list.Length), .. list]);
    }

    /// <summary>supported_versions as a client sends it: a 1-byte length, then versions.</summary>
    public static HelloExtension SupportedVersions(params ushort[] versions) =>
        new(0x002b, [(byte)(versions.Length * 2), .. versions.SelectMany(v => U16(v))]);

    public static HelloExtension SupportedGroups(params ushort[] groups) =>
        new(0x000a, [.. U16(groups.Length * 2), .. groups.SelectMany(v => U16(v))]);

    public static HelloExtension SignatureAlgorithms(params ushort[] schemes) =>
        new(0x000d, [.. U16(schemes.Length * 2), .. schemes.SelectMany(v => U16(v))]);

    /// <summary>key_share with one X25519 share of 32 deterministic bytes.</summary>
    public static HelloExtension KeyShareX25519()
    {
        var key = Enumerable.Range(0, 32).Select(i => (byte)(0xA0 + i)).ToArray();
        byte[] entry = [.. U16(0x001d), .. U16(key.Length), .. key];
        return new(0x0033, [.. U16(entry.Length), .. entry]);
    }

    public static HelloExtension PskKeyExchangeModes() => new(0x002d, [0x01, 0x01]);

    public static HelloExtension EcPointFormats() => new(0x000b, [0x01, 0x00]);

    public static HelloExtension Empty(ushort type) => new(type, []);

    /// <summary>padding (RFC 7685) of <paramref name="length"/> zero bytes.</summary>
    public static HelloExtension Padding(int length) => new(0x0015, new byte[length]);

    internal static byte[] U16(int value) => [(byte)(value >> 8), (byte)value];
}

/// <summary>
/// Builds ClientHellos field by field, for tests that need a hello of a given shape. Defaults make a
/// TLS 1.3 hello as OpenSSL would send it, without server_name.
/// </summary>
public sealed class ClientHelloBuilder
{
    public ushort RecordVersion { get; set; } = 0x0301;

    public ushort LegacyVersion { get; set; } = 0x0303;

    public byte[] Random { get; set; } = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    public byte[] SessionId { get; set; } = Enumerable.Range(0, 32).Select(i => (byte)(0xE0 ^ i)).ToArray();

    public ushort[] CipherSuites { get; set; } = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f];

    public byte[] CompressionMethods { get; set; } = [0x00];

    /// <summary>The extensions in wire order; null leaves out the extensions block altogether.</summary>
    public List<HelloExtension>? Extensions { get; set; } = [];

    public ClientHelloBuilder With(params HelloExtension[] extensions)
    {
        (Extensions ??= []).AddRange(extensions);
        return this;
    }

    public ClientHelloBuilder WithServerName(string host) => With(HelloExtension.ServerName(host));

    /// <summary>The body of the client_hello, without the handshake header.</summary>
    public byte[] Body()
    {
        var body = new List<byte>();
        body.AddRange(HelloExtension.U16(LegacyVersion));
        body.AddRange(Random);
        body.Add((byte)SessionId.Length);
        body.AddRange(SessionId);
        body.AddRange(HelloExtension.U16(CipherSuites.Length * 2));
        body.AddRange(CipherSuites.SelectMany(v => HelloExtension.U16(v)));
        body.Add((byte)CompressionMethods.Length);
        body.AddRange(CompressionMethods);
        if (Extensions is not null)
        {
            var block = Extensions.SelectMany(e => (byte[])[.. HelloExtension.U16(e.Type), .. HelloExtension.U16(e.Data.Length), .. e.Data]).ToArray();
            body.AddRange(HelloExtension.U16(block.Length));
            body.AddRange(block);
        }
        return [.. body];
    }

    /// <summary>The handshake message: type 1, 24-bit length, body.</summary>
    public byte[] Handshake() => HandshakeMessage(Body());

    /// <summary>The hello in one record.</summary>
    public byte[] Build() => Records.Wrap(Handshake(), RecordVersion);

    public static byte[] HandshakeMessage(byte[] body) =>
        [0x01, (byte)(body.Length >> 16), (byte)(body.Length >> 8), (byte)body.Length, .. body];

    /// <summary>A Chrome-like hello: GREASE, the usual extensions, and padding to 512 handshake bytes (517 on the wire).</summary>
    public static ClientHelloBuilder ChromeLike(string host)
    {
        var builder = new ClientHelloBuilder
        {
            CipherSuites = [0x3a3a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035],
        };
        builder.With(
            HelloExtension.Empty(0x0a0a),
            HelloExtension.ServerName(host),
            HelloExtension.Empty(0x0017),
            new HelloExtension(0xff01, [0x00]),
            HelloExtension.SupportedGroups(0x4a4a, 0x001d, 0x0017, 0x0018),
            HelloExtension.EcPointFormats(),
            HelloExtension.Empty(0x0023),
            HelloExtension.Alpn("h2", "http/1.1"),
            new HelloExtension(0x0005, [0x01, 0x00, 0x00, 0x00, 0x00]),
            HelloExtension.SignatureAlgorithms(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601),
            HelloExtension.Empty(0x0012),
            HelloExtension.KeyShareX25519(),
            HelloExtension.PskKeyExchangeModes(),
            HelloExtension.SupportedVersions(0x5a5a, 0x0304, 0x0303),
            new HelloExtension(0x001b, [0x02, 0x00, 0x02]),
            HelloExtension.Empty(0x1a1a));
        var unpadded = builder.Handshake().Length;
        builder.With(HelloExtension.Padding(512 - unpadded - 4));
        return builder;
    }
}

/// <summary>TLS record framing for tests.</summary>
public static class Records
{
    /// <summary>One handshake record around <paramref name="payload"/> (no size check, so tests can build hostile ones).</summary>
    public static byte[] Wrap(byte[] payload, ushort version = 0x0301) =>
        [0x16, (byte)(version >> 8), (byte)version, (byte)(payload.Length >> 8), (byte)payload.Length, .. payload];

    /// <summary>The handshake bytes in records of <paramref name="size"/> bytes (the last may be shorter).</summary>
    public static byte[] Split(byte[] handshake, int size, ushort version = 0x0301)
    {
        var records = new List<byte>();
        for (var at = 0; at < handshake.Length; at += size)
        {
            records.AddRange(Wrap(handshake[at..Math.Min(at + size, handshake.Length)], version));
        }
        return [.. records];
    }

    /// <summary>The handshake bytes in records of the given sizes, in turn (the last takes the rest).</summary>
    public static byte[] SplitAt(byte[] handshake, params int[] sizes)
    {
        var records = new List<byte>();
        var at = 0;
        foreach (var size in sizes)
        {
            records.AddRange(Wrap(handshake[at..(at + size)]));
            at += size;
        }
        if (at < handshake.Length)
        {
            records.AddRange(Wrap(handshake[at..]));
        }
        return [.. records];
    }

    /// <summary>The handshake bytes of a buffer of well-formed handshake records (test inputs only).</summary>
    public static byte[] Unwrap(byte[] records)
    {
        var handshake = new List<byte>();
        for (var at = 0; at + 5 <= records.Length;)
        {
            var length = BinaryPrimitives.ReadUInt16BigEndian(records.AsSpan(at + 3));
            handshake.AddRange(records.AsSpan(at + 5, Math.Min(length, records.Length - at - 5)).ToArray());
            at += 5 + length;
        }
        return [.. handshake];
    }
}
