using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Trc.Edge.ProxyProtocol;

/// <summary>
/// Writes PROXY protocol v2 headers (the HAProxy spec, section 2.2): the 12-byte signature,
/// version 2 with the PROXY command, TCP over IPv4 or IPv6, then source and destination
/// addresses and ports. No TLVs.
/// </summary>
public static class ProxyV2Writer
{
    /// <summary>The header's first 12 bytes; no valid TLS, HTTP or PROXY v1 stream starts with them.</summary>
    public static ReadOnlySpan<byte> Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>Header length for TCP over IPv4: 16 fixed bytes and 12 of addresses.</summary>
    public const int Tcp4Length = 16 + 12;

    /// <summary>Header length for TCP over IPv6: 16 fixed bytes and 36 of addresses.</summary>
    public const int Tcp6Length = 16 + 36;

    /// <summary>The most a header takes.</summary>
    public const int MaxLength = Tcp6Length;

    /// <summary>
    /// Writes the header for a connection from <paramref name="source"/> (the client) to
    /// <paramref name="destination"/> (the edge address it reached) and returns its length.
    /// IPv4 and IPv4-mapped IPv6 pairs are written as TCP4; any other pair as TCP6 (an IPv4
    /// address on one side and IPv6 on the other is written with both as IPv6, IPv4 mapped).
    /// </summary>
    public static int Write(Span<byte> header, IPEndPoint source, IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var src = source.Address;
        var dst = destination.Address;
        var v4 = AsIPv4(src) is not null && AsIPv4(dst) is not null;
        var length = v4 ? Tcp4Length : Tcp6Length;
        if (header.Length < length)
        {
            throw new ArgumentException($"the header needs {length} bytes", nameof(header));
        }
        Signature.CopyTo(header);
        header[12] = 0x21; // version 2, command PROXY
        header[13] = v4 ? (byte)0x11 : (byte)0x21; // TCP over IPv4 : TCP over IPv6
        BinaryPrimitives.WriteUInt16BigEndian(header[14..], (ushort)(length - 16));
        var body = header[16..];
        if (v4)
        {
            AsIPv4(src)!.TryWriteBytes(body[..4], out _);
            AsIPv4(dst)!.TryWriteBytes(body[4..8], out _);
            BinaryPrimitives.WriteUInt16BigEndian(body[8..], (ushort)source.Port);
            BinaryPrimitives.WriteUInt16BigEndian(body[10..], (ushort)destination.Port);
        }
        else
        {
            AsIPv6(src).TryWriteBytes(body[..16], out _);
            AsIPv6(dst).TryWriteBytes(body[16..32], out _);
            BinaryPrimitives.WriteUInt16BigEndian(body[32..], (ushort)source.Port);
            BinaryPrimitives.WriteUInt16BigEndian(body[34..], (ushort)destination.Port);
        }
        return length;
    }

    /// <summary>Whether <paramref name="data"/> starts with a PROXY header signature of either version.</summary>
    public static bool StartsWithProxyHeader(ReadOnlySpan<byte> data) =>
        data.StartsWith(Signature) || data.StartsWith("PROXY "u8);

    private static IPAddress? AsIPv4(IPAddress address) => address.AddressFamily switch
    {
        AddressFamily.InterNetwork => address,
        AddressFamily.InterNetworkV6 when address.IsIPv4MappedToIPv6 => address.MapToIPv4(),
        _ => null,
    };

    private static IPAddress AsIPv6(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetwork ? address.MapToIPv6() : address;
}
