using System.Net;
using Trc.Edge.ProxyProtocol;

namespace Trc.Edge.Tests.ProxyProtocol;

public sealed class ProxyV2WriterTests
{
    private static readonly byte[] Sig = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    [Fact]
    public void An_IPv4_connection_is_written_as_TCP4()
    {
        var header = new byte[ProxyV2Writer.MaxLength];
        var n = ProxyV2Writer.Write(header, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 56324), new IPEndPoint(IPAddress.Parse("203.0.113.7"), 443));

        byte[] expected =
        [
            .. Sig,
            0x21,                   // version 2, PROXY
            0x11,                   // TCP over IPv4
            0x00, 0x0C,             // 12 address bytes follow
            192, 0, 2, 1,           // source address
            203, 0, 113, 7,         // destination address
            0xDC, 0x04,             // source port 56324
            0x01, 0xBB,             // destination port 443
        ];
        Assert.Equal(expected, header[..n]);
    }

    [Fact]
    public void An_IPv4_mapped_IPv6_connection_is_written_as_TCP4()
    {
        var header = new byte[ProxyV2Writer.MaxLength];
        var n = ProxyV2Writer.Write(header,
            new IPEndPoint(IPAddress.Parse("::ffff:192.0.2.1"), 1),
            new IPEndPoint(IPAddress.Parse("::ffff:127.0.0.1"), 2));

        Assert.Equal(ProxyV2Writer.Tcp4Length, n);
        Assert.Equal(0x11, header[13]);
        Assert.Equal(new byte[] { 192, 0, 2, 1, 127, 0, 0, 1, 0, 1, 0, 2 }, header[16..n]);
    }

    [Fact]
    public void An_IPv6_connection_is_written_as_TCP6()
    {
        var header = new byte[ProxyV2Writer.MaxLength];
        var n = ProxyV2Writer.Write(header, new IPEndPoint(IPAddress.Parse("2001:db8::1"), 65535), new IPEndPoint(IPAddress.Parse("2001:db8::2:3"), 8443));

        byte[] expected =
        [
            .. Sig,
            0x21,                   // version 2, PROXY
            0x21,                   // TCP over IPv6
            0x00, 0x24,             // 36 address bytes follow
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,    // source 2001:db8::1
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0x03, // destination 2001:db8::2:3
            0xFF, 0xFF,             // source port 65535
            0x20, 0xFB,             // destination port 8443
        ];
        Assert.Equal(expected, header[..n]);
    }

    [Fact]
    public void A_mixed_pair_is_written_as_TCP6_with_the_IPv4_side_mapped()
    {
        var header = new byte[ProxyV2Writer.MaxLength];
        var n = ProxyV2Writer.Write(header, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 1), new IPEndPoint(IPAddress.Parse("2001:db8::2"), 2));
        Assert.Equal(ProxyV2Writer.Tcp6Length, n);
        Assert.Equal(IPAddress.Parse("::ffff:192.0.2.1"), new IPAddress(header.AsSpan(16, 16)));
    }

    [Fact]
    public void A_short_buffer_is_refused_before_anything_is_written()
    {
        var header = new byte[ProxyV2Writer.Tcp4Length - 1];
        Assert.Throws<ArgumentException>(() => ProxyV2Writer.Write(header, new IPEndPoint(IPAddress.Loopback, 1), new IPEndPoint(IPAddress.Loopback, 2)));
        Assert.All(header, b => Assert.Equal(0, b));
    }

    [Theory]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", true)]
    [InlineData("PROXY", false)]
    [InlineData("GET / HTTP/1.1\r\n", false)]
    public void Client_sent_PROXY_headers_are_recognised(string text, bool expected) =>
        Assert.Equal(expected, ProxyV2Writer.StartsWithProxyHeader(System.Text.Encoding.ASCII.GetBytes(text)));

    [Fact]
    public void The_v2_signature_is_recognised() =>
        Assert.True(ProxyV2Writer.StartsWithProxyHeader([.. Sig, 0x21, 0x11]));
}
