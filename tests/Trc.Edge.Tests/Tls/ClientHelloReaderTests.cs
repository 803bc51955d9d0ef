using System.Text;
using Trc.Edge.Tls;

namespace Trc.Edge.Tests.Tls;

public sealed class ClientHelloReaderTests
{
    // ---- annotated samples ------------------------------------------------------------------------

    /// <summary>The smallest realistic TLS 1.2 hello: one suite, null compression, server_name "a.example".</summary>
    private static readonly byte[] Minimal =
    [
        0x16, 0x03, 0x01, 0x00, 0x41,                   //  0: record: handshake, version 3.1, 65 bytes
        0x01, 0x00, 0x00, 0x3d,                         //  5: client_hello, 61 bytes
        0x03, 0x03,                                     //  9: legacy_version 3.3 (TLS 1.2)
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, // 11: random (32 bytes)
        0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
        0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x00,                                           // 43: session_id: empty
        0x00, 0x02, 0xc0, 0x2f,                         // 44: cipher_suites: 2 bytes, ECDHE-RSA-AES128-GCM-SHA256
        0x01, 0x00,                                     // 48: compression_methods: 1 byte, null
        0x00, 0x12,                                     // 50: extensions: 18 bytes
        0x00, 0x00, 0x00, 0x0e,                         // 52: server_name, 14 bytes
        0x00, 0x0c,                                     // 56: server_name_list, 12 bytes
        0x00, 0x00, 0x09,                               // 58: host_name, 9 bytes
        0x61, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, // 61: "a.example"
        0x65,
    ];

    /// <summary>A TLS 1.0-era hello with no extensions block at all: legal, and has no server name.</summary>
    private static readonly byte[] NoExtensions =
    [
        0x16, 0x03, 0x01, 0x00, 0x2d,                   //  0: record: handshake, version 3.1, 45 bytes
        0x01, 0x00, 0x00, 0x29,                         //  5: client_hello, 41 bytes
        0x03, 0x01,                                     //  9: legacy_version 3.1 (TLS 1.0)
        0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, // 11: random (32 bytes)
        0xf7, 0xf6, 0xf5, 0xf4, 0xf3, 0xf2, 0xf1, 0xf0,
        0xef, 0xee, 0xed, 0xec, 0xeb, 0xea, 0xe9, 0xe8,
        0xe7, 0xe6, 0xe5, 0xe4, 0xe3, 0xe2, 0xe1, 0xe0,
        0x00,                                           // 43: session_id: empty
        0x00, 0x02, 0x00, 0x2f,                         // 44: cipher_suites: TLS_RSA_WITH_AES_128_CBC_SHA
        0x01, 0x00,                                     // 48: compression_methods: null
    ];

    /// <summary>What curl 7.88.1 (OpenSSL 3.0) sent for https://x.example.com, captured on this machine.</summary>
    private static readonly byte[] Curl = HelloReplay.FromHex(
        "1603010200" + // record: handshake, version 3.1, length 512
        "010001fc" + // client_hello, length 508
        "0303" + // legacy_version 3.3
        "fbbbee33d1de631707ede9057d830179eb72edd55c3e627e81a2c0c9950dfd52" + // random
        "209a09982fb4bacd1c4ea39a648a4d9cdb145def38cc433178d3776daea414666d" + // session_id (32 bytes)
        "003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff" + // cipher_suites (31)
        "0100" + // compression_methods: null
        "0175" + // extensions: 373 bytes
        "00000012001000000d782e6578616d706c652e636f6d" + // server_name x.example.com
        "000b000403000102" + // ec_point_formats
        "000a00160014001d0017001e0019001801000101010201030104" + // supported_groups
        "0010000e000c02683208687474702f312e31" + // alpn h2, http/1.1
        "00160000" + // encrypt_then_mac
        "00170000" + // extended_master_secret
        "00310000" + // post_handshake_auth
        "000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602" + // signature_algorithms
        "002b0009080304030303020301" + // supported_versions 1.3, 1.2, 1.1, 1.0
        "002d00020101" + // psk_key_exchange_modes
        "003300260024001d0020a0d1c8c83047300e75f0c14740fdf6c569a41df4596a4061d5127ba34835877d" + // key_share x25519
        "001500b0" + new string('0', 2 * 176)); // padding (176 zero bytes)

    private static ClientHelloBuilder OpenSslLike(string? host)
    {
        var builder = new ClientHelloBuilder();
        if (host is not null)
        {
            builder.WithServerName(host);
        }
        return builder.With(
            HelloExtension.EcPointFormats(),
            HelloExtension.SupportedGroups(0x001d, 0x0017, 0x001e, 0x0019, 0x0018),
            HelloExtension.Alpn("h2", "http/1.1"),
            HelloExtension.Empty(0x0016),
            HelloExtension.Empty(0x0017),
            HelloExtension.SignatureAlgorithms(0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806),
            HelloExtension.SupportedVersions(0x0304, 0x0303),
            HelloExtension.PskKeyExchangeModes(),
            HelloExtension.KeyShareX25519());
    }

    /// <summary>Four 62-byte labels and "c": 253 bytes, the longest name. (Declared before the samples that use it.)</summary>
    private static readonly string Name253 = string.Join('.', Enumerable.Repeat(new string('b', 62), 4)) + ".c";

    /// <summary>Valid hellos: name, bytes, expected server name.</summary>
    internal static readonly Dictionary<string, (byte[] Bytes, string? Name)> ValidSamples = new()
    {
        ["minimal TLS 1.2"] = (Minimal, "a.example"),
        ["no extensions block"] = (NoExtensions, null),
        ["curl capture"] = (Curl, "x.example.com"),
        ["openssl-like TLS 1.3"] = (OpenSslLike("app.example.org").Build(), "app.example.org"),
        ["no server_name"] = (OpenSslLike(null).Build(), null),
        ["empty extensions block"] = (new ClientHelloBuilder().Build(), null),
        ["chrome-like 517 bytes"] = (ClientHelloBuilder.ChromeLike("www.example.com").Build(), "www.example.com"),
        ["padded past 1 KB"] = (OpenSslLike("padded.example").With(HelloExtension.Padding(1100)).Build(), "padded.example"),
        ["upper case and trailing dot"] = (OpenSslLike("WWW.Example.COM.").Build(), "www.example.com"),
        ["single label"] = (OpenSslLike("localhost").Build(), "localhost"),
        ["hyphens, underscores, digits"] = (OpenSslLike("_acme-challenge.x-1.example").Build(), "_acme-challenge.x-1.example"),
        ["63-byte label"] = (OpenSslLike(new string('a', 63) + ".example").Build(), new string('a', 63) + ".example"),
        ["253-byte name plus trailing dot"] = (OpenSslLike(Name253 + ".").Build(), Name253),
        ["unknown name_type before host_name"] =
            (new ClientHelloBuilder().With(HelloExtension.ServerNameEntries((7, [1, 2, 3]), (0, "a.example"u8.ToArray()))).Build(), "a.example"),
        ["only an unknown name_type"] = (new ClientHelloBuilder().With(HelloExtension.ServerNameEntries((1, "x"u8.ToArray()))).Build(), null),
        ["server_name last"] = (new ClientHelloBuilder().With(HelloExtension.Alpn("h2"), HelloExtension.ServerName("last.example")).Build(), "last.example"),
        ["record version 3.0"] = (new ClientHelloBuilder { RecordVersion = 0x0300 }.WithServerName("v.example").Build(), "v.example"),
        ["record version 3.4"] = (new ClientHelloBuilder { RecordVersion = 0x0304 }.WithServerName("v.example").Build(), "v.example"),
        ["legacy_version 3.0"] = (new ClientHelloBuilder { LegacyVersion = 0x0300 }.WithServerName("v.example").Build(), "v.example"),
        ["no session_id, many suites"] =
            (new ClientHelloBuilder { SessionId = [], CipherSuites = [.. Enumerable.Range(1, 200).Select(i => (ushort)i)] }.WithServerName("s.example").Build(), "s.example"),
        ["100 extensions"] =
            (new ClientHelloBuilder().With([.. Enumerable.Range(0, 99).Select(i => HelloExtension.Empty((ushort)(0x7000 + i)))]).WithServerName("many.example").Build(), "many.example"),
    };

    public static TheoryData<string> ValidSampleNames => [.. ValidSamples.Keys];

    [Fact]
    public void The_samples_are_what_their_annotations_say()
    {
        Assert.Equal(70, Minimal.Length);
        Assert.Equal(517, Curl.Length);
        Assert.Equal(253, Name253.Length);
        Assert.Equal(517, ValidSamples["chrome-like 517 bytes"].Bytes.Length);
        Assert.True(ValidSamples["padded past 1 KB"].Bytes.Length > 1024);
        Assert.Equal(Minimal, new ClientHelloBuilder { SessionId = [], CipherSuites = [0xc02f] }.WithServerName("a.example").Build());
    }

    [Theory]
    [MemberData(nameof(ValidSampleNames))]
    public void A_valid_hello_gives_its_server_name_however_it_arrives(string sample)
    {
        var (bytes, name) = ValidSamples[sample];
        var result = HelloReplay.EveryWay(bytes);
        Assert.Equal(new ClientHelloResult(HelloStatus.Ok, name, HelloError.None, null, bytes.Length), result);
    }

    [Theory]
    [MemberData(nameof(ValidSampleNames))]
    public void Every_proper_prefix_of_a_valid_hello_needs_more_data(string sample)
    {
        var bytes = ValidSamples[sample].Bytes;
        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.Equal(HelloStatus.NeedMoreData, ClientHelloReader.TryParse(bytes.AsSpan(0, length)).Status);
        }
    }

    [Theory]
    [MemberData(nameof(ValidSampleNames))]
    public void Bytes_after_the_hello_do_not_change_the_result(string sample)
    {
        var (bytes, name) = ValidSamples[sample];
        // What a TLS 1.3 client pipelines: change_cipher_spec, then early application data.
        byte[] followed = [.. bytes, 0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03, 0x03, 0x00, 0x03, 0xAA, 0xBB, 0xCC];
        var result = HelloReplay.EveryWay(followed);
        Assert.Equal(new ClientHelloResult(HelloStatus.Ok, name, HelloError.None, null, bytes.Length), result);
        Assert.Equal(result, ClientHelloReader.TryParse([.. bytes, .. new byte[20_000]]));
    }

    [Theory]
    [MemberData(nameof(ValidSampleNames))]
    public void A_hello_split_into_records_of_any_size_reads_the_same(string sample)
    {
        var (bytes, name) = ValidSamples[sample];
        var handshake = Records.Unwrap(bytes);
        foreach (var size in new[] { 1, 2, 3, 4, 5, 7, 13, 64, 100, 255, 256, 511, 4096, 16384 })
        {
            var records = Records.Split(handshake, size);
            var expected = records.Length <= ClientHelloReader.MaxHelloBytes
                ? new ClientHelloResult(HelloStatus.Ok, name, HelloError.None, null, records.Length)
                : new ClientHelloResult(HelloStatus.Invalid, null, HelloError.HelloTooLarge, null, 0);
            var result = size is 1 or 3 or 100 && records.Length < 4000 ? HelloReplay.EveryWay(records) : ClientHelloReader.TryParse(records);
            HelloReplay.CheckShape(result, records.Length);
            Assert.Equal(expected, result with { Detail = null });
        }
    }

    [Theory]
    [MemberData(nameof(ValidSampleNames))]
    public void A_hello_split_in_two_records_at_every_point_reads_the_same(string sample)
    {
        var (bytes, name) = ValidSamples[sample];
        var handshake = Records.Unwrap(bytes);
        for (var split = 1; split < handshake.Length; split++)
        {
            var records = Records.SplitAt(handshake, split);
            Assert.Equal(new ClientHelloResult(HelloStatus.Ok, name, HelloError.None, null, records.Length), ClientHelloReader.TryParse(records));
            Assert.Equal(
                new ClientHelloResult(HelloStatus.Ok, name, HelloError.None, null, records.Length),
                ClientHelloReader.TryParse(HelloReplay.Sequence(records[..(split / 2)], records[(split / 2)..])));
        }
    }

    // ---- real clients ---------------------------------------------------------------------------------

    [RequiresExecutableTheory("/usr/bin/openssl")]
    [InlineData("x.example.com", "s_client", "-connect", "127.0.0.1:{port}", "-servername", "x.example.com")]
    [InlineData("x.example.com", "s_client", "-connect", "127.0.0.1:{port}", "-servername", "x.example.com", "-tls1_2")]
    [InlineData("x.example.com", "s_client", "-connect", "127.0.0.1:{port}", "-servername", "x.example.com", "-tls1_3", "-alpn", "h2,http/1.1")]
    [InlineData("mixed.example.com", "s_client", "-connect", "127.0.0.1:{port}", "-servername", "Mixed.Example.COM.")]
    [InlineData(null, "s_client", "-connect", "127.0.0.1:{port}", "-noservername")]
    [InlineData(null, "s_client", "-connect", "127.0.0.1:{port}")]
    public async Task Openssl_s_client_hellos_parse_with_the_right_name(string? name, params string[] arguments) =>
        await CheckRealClient(name, "/usr/bin/openssl", arguments);

    [RequiresExecutableTheory("/usr/bin/curl")]
    [InlineData("x.example.com", "--http1.1")]
    [InlineData("api.example.net", "--http2")]
    public async Task Curl_hellos_parse_with_the_right_name(string name, string httpVersion) =>
        await CheckRealClient(name, "/usr/bin/curl", ["-sk", httpVersion, "--max-time", "10", "--resolve", $"{name}:{{port}}:127.0.0.1", $"https://{name}:{{port}}/"]);

    private static async Task CheckRealClient(string? name, string executable, string[] arguments)
    {
        var hello = await HelloCapture.CaptureAsync(executable, arguments);
        var result = HelloReplay.EveryWay(hello);
        Assert.Equal(new ClientHelloResult(HelloStatus.Ok, name, HelloError.None, null, hello.Length), result);
        var handshake = Records.Unwrap(hello);
        foreach (var size in new[] { 1, 7, 100 })
        {
            var records = Records.Split(handshake, size);
            Assert.Equal(new ClientHelloResult(HelloStatus.Ok, name, HelloError.None, null, records.Length), ClientHelloReader.TryParse(records));
        }
    }

    // ---- not TLS at all ---------------------------------------------------------------------------------

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "G")]
    [InlineData("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n", "P")]
    [InlineData("\x17\x03\x03\x00\x10", "\\x17")] // application_data
    [InlineData("\x15\x03\x03\x00\x02\x02\x28", "\\x15")] // alert
    [InlineData("\0\0\0\0", "\\x00")]
    [InlineData("SSH-2.0-OpenSSH_9.6\r\n", "S")]
    public void A_stream_that_does_not_start_with_a_handshake_record_is_not_tls(string text, string shown)
    {
        var bytes = Encoding.Latin1.GetBytes(text);
        var result = HelloReplay.EveryWay(bytes);
        Assert.Equal(HelloStatus.Invalid, result.Status);
        Assert.Equal(HelloError.NotTls, result.Error);
        Assert.Contains($"first byte {shown} ", result.Detail);
        // Decided by the first byte alone, without waiting.
        Assert.Equal(result, ClientHelloReader.TryParse(bytes.AsSpan(0, 1)));
    }

    [Fact]
    public void The_proxy_v2_signature_is_not_tls()
    {
        byte[] signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C];
        var result = HelloReplay.EveryWay(signature);
        Assert.Equal(HelloError.NotTls, result.Error);
        Assert.Equal("first byte \\x0d is not a TLS handshake record (\\x16)", result.Detail);
    }

    [Fact]
    public void An_sslv2_hello_is_refused_as_such_once_its_third_byte_is_in()
    {
        byte[] sslv2 =
        [
            0x80, 0x2e,                   // SSLv2 record: high bit set, 46 bytes
            0x01,                         // CLIENT-HELLO
            0x03, 0x01,                   // version TLS 1.0 (v2-compatible hello)
            0x00, 0x15, 0x00, 0x00, 0x00, 0x10, // cipher specs 21, session id 0, challenge 16
            0x07, 0x00, 0xc0, 0x05, 0x00, 0x80, 0x03, 0x00, 0x80, 0x01, 0x00, 0x80, 0x06, 0x00, 0x40, 0x04, 0x00, 0x80, 0x02, 0x00, 0x80,
            0x9a, 0x3f, 0x55, 0x0d, 0x61, 0x88, 0xe7, 0x54, 0x32, 0x04, 0xfe, 0x7d, 0x1c, 0x22, 0xcd, 0x4a,
        ];
        Assert.Equal(HelloStatus.NeedMoreData, ClientHelloReader.TryParse(sslv2.AsSpan(0, 2)).Status);
        var result = HelloReplay.EveryWay(sslv2);
        Assert.Equal(HelloError.SslV2, result.Error);
        Assert.Equal(result, ClientHelloReader.TryParse(sslv2.AsSpan(0, 3)));
        // A high first byte without message type 1 is just not TLS.
        Assert.Equal(HelloError.NotTls, HelloReplay.EveryWay([0x80, 0x2e, 0x02, 0x03, 0x01]).Error);
        Assert.Equal(HelloError.NotTls, HelloReplay.EveryWay([0xff, 0xff, 0xff]).Error);
    }

    // ---- record layer -------------------------------------------------------------------------------------

    [Theory]
    [InlineData(new byte[] { 0x16, 0x02, 0x00 }, "major 2 at offset 1")]
    [InlineData(new byte[] { 0x16, 0x04, 0x01 }, "major 4 at offset 1")]
    [InlineData(new byte[] { 0x16, 0xfe, 0xfd, 0x00, 0x00 }, "major 254 at offset 1")] // DTLS 1.2
    [InlineData(new byte[] { 0x16, 0x03, 0x05, 0x00, 0x41 }, "3.5 at offset 1")]
    [InlineData(new byte[] { 0x16, 0x03, 0xff, 0x00, 0x41 }, "3.255 at offset 1")]
    public void A_record_version_other_than_3_0_to_3_4_is_unsupported(byte[] bytes, string detail)
    {
        var result = HelloReplay.EveryWay(bytes);
        Assert.Equal(HelloError.UnsupportedRecordVersion, result.Error);
        Assert.Contains(detail, result.Detail);
    }

    [Fact]
    public void A_record_longer_than_2_to_the_14_is_refused_from_its_header()
    {
        var result = HelloReplay.EveryWay([0x16, 0x03, 0x01, 0xff, 0xff]);
        Assert.Equal(HelloError.RecordTooLarge, result.Error);
        Assert.Contains("65535 at offset 3", result.Detail);
        Assert.Equal(HelloError.RecordTooLarge, HelloReplay.EveryWay([0x16, 0x03, 0x01, 0x40, 0x01]).Error);
        // 2^14 itself is allowed: this hello sits in a full-size record, followed by other handshake bytes.
        byte[] payload = [.. Records.Unwrap(Minimal), .. new byte[16384 - 65]];
        Assert.Equal(new ClientHelloResult(HelloStatus.Ok, "a.example", HelloError.None, null, 70), ClientHelloReader.TryParse(Records.Wrap(payload)));
    }

    [Fact]
    public void An_empty_record_is_malformed()
    {
        Assert.Equal(HelloError.Malformed, HelloReplay.EveryWay([0x16, 0x03, 0x01, 0x00, 0x00, 0x01]).Error);
        var handshake = Records.Unwrap(Minimal);
        byte[] withEmpty = [.. Records.Wrap(handshake[..10]), 0x16, 0x03, 0x01, 0x00, 0x00, .. Records.Wrap(handshake[10..])];
        var result = HelloReplay.EveryWay(withEmpty);
        Assert.Equal(HelloError.Malformed, result.Error);
        Assert.Contains("record at offset 15 is empty", result.Detail);
    }

    [Theory]
    [InlineData(0x17)] // application_data
    [InlineData(0x15)] // alert
    [InlineData(0x14)] // change_cipher_spec
    [InlineData(0x00)]
    public void The_rest_of_the_hello_must_come_in_handshake_records(byte type)
    {
        var handshake = Records.Unwrap(Minimal);
        byte[] bytes = [.. Records.Wrap(handshake[..30]), type, 0x03, 0x03, 0x00, 0x23, .. handshake[30..]];
        var result = HelloReplay.EveryWay(bytes);
        Assert.Equal(HelloError.NotHandshake, result.Error);
        Assert.Contains("record at offset 35", result.Detail);
        Assert.Equal(result, ClientHelloReader.TryParse(bytes.AsSpan(0, 36)));
    }

    [Fact]
    public void A_continuation_record_is_checked_like_the_first()
    {
        var handshake = Records.Unwrap(Minimal);
        Assert.Equal(
            HelloError.UnsupportedRecordVersion,
            HelloReplay.EveryWay([.. Records.Wrap(handshake[..30]), 0x16, 0x02, 0x00, 0x00, 0x23, .. handshake[30..]]).Error);
        Assert.Equal(
            HelloError.RecordTooLarge,
            HelloReplay.EveryWay([.. Records.Wrap(handshake[..30]), 0x16, 0x03, 0x03, 0x40, 0x01, .. handshake[30..]]).Error);
    }

    [Fact]
    public void A_record_may_hold_only_part_of_the_handshake_header()
    {
        var handshake = Records.Unwrap(Minimal);
        for (var first = 1; first < 4; first++)
        {
            for (var second = 1; first + second < 5; second++)
            {
                var records = Records.SplitAt(handshake, first, second);
                Assert.Equal(new ClientHelloResult(HelloStatus.Ok, "a.example", HelloError.None, null, records.Length), HelloReplay.EveryWay(records));
            }
        }
    }

    [Fact]
    public void Only_a_client_hello_may_start_the_handshake()
    {
        var serverHello = Patched(Minimal, 5, 0x02);
        var result = HelloReplay.EveryWay(serverHello);
        Assert.Equal(HelloError.NotClientHello, result.Error);
        Assert.Contains("type 2 at offset 5", result.Detail);
        Assert.Equal(result, ClientHelloReader.TryParse(serverHello.AsSpan(0, 6)));
        // The type is checked even when it is the only byte of its record.
        Assert.Equal(HelloError.NotClientHello, HelloReplay.EveryWay(Records.SplitAt(Records.Unwrap(serverHello), 1)).Error);
    }

    // ---- size caps -----------------------------------------------------------------------------------------

    [Fact]
    public void A_hello_of_length_0xFFFFFF_is_too_large_at_once()
    {
        byte[] bytes = [0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xff, 0xff, 0xff];
        var result = HelloReplay.EveryWay(bytes);
        Assert.Equal(HelloError.HelloTooLarge, result.Error);
        Assert.Contains("16777215 bytes (length at offset 6)", result.Detail);
    }

    [Fact]
    public void The_cap_counts_the_record_headers()
    {
        // 5 + 4 + 16375 = 16384 bytes exactly: allowed, and decided from its nine header bytes only when too large.
        var fits = HelloOfLength(16375);
        Assert.Equal(ClientHelloReader.MaxHelloBytes, fits.Length);
        Assert.Equal(new ClientHelloResult(HelloStatus.Ok, "big.example", HelloError.None, null, fits.Length), ClientHelloReader.TryParse(fits));
        var handshake = Records.Unwrap(fits);
        Assert.Equal(HelloStatus.NeedMoreData, ClientHelloReader.TryParse(fits.AsSpan(0, fits.Length - 1)).Status);

        var tooLarge = HelloOfLength(16376);
        Assert.Equal(HelloError.HelloTooLarge, ClientHelloReader.TryParse(tooLarge.AsSpan(0, 9)).Error);

        // The same bytes in two records take 5 more: too large, known from the first record's header.
        var twoRecords = Records.SplitAt(handshake, 100);
        Assert.Equal(HelloError.HelloTooLarge, ClientHelloReader.TryParse(twoRecords.AsSpan(0, 9)).Error);
        Assert.Equal(HelloError.HelloTooLarge, ClientHelloReader.TryParse(twoRecords).Error);
    }

    [Fact]
    public void A_hello_trickled_in_one_byte_records_is_refused_before_the_cap_is_reached()
    {
        var handshake = Records.Unwrap(OpenSslLike("slow.example").With(HelloExtension.Padding(3000)).Build());
        var records = Records.Split(handshake, 1);
        Assert.True(records.Length > ClientHelloReader.MaxHelloBytes);
        var result = ClientHelloReader.TryParse(records);
        Assert.Equal(HelloError.HelloTooLarge, result.Error);
        // Known at the record whose header shows the rest cannot fit, never later than the cap.
        var decidedAt = Enumerable.Range(0, ClientHelloReader.MaxHelloBytes + 1)
            .First(length => ClientHelloReader.TryParse(records.AsSpan(0, length)).Status != HelloStatus.NeedMoreData);
        Assert.InRange(decidedAt, 1, ClientHelloReader.MaxHelloBytes);
        Assert.Equal(result, ClientHelloReader.TryParse(records.AsSpan(0, decidedAt)));
    }

    [Fact]
    public void Sixteen_KiB_of_anything_never_needs_more_data()
    {
        var random = new Random(7);
        var handshake = Records.Unwrap(HelloOfLength(16000));
        foreach (var size in new[] { 1, 2, 3, 50, 16384 })
        {
            var records = Records.Split(handshake, size);
            var buffer = records.Length >= ClientHelloReader.MaxHelloBytes ? records[..ClientHelloReader.MaxHelloBytes] : [.. records, .. new byte[ClientHelloReader.MaxHelloBytes - records.Length]];
            Assert.NotEqual(HelloStatus.NeedMoreData, ClientHelloReader.TryParse(buffer).Status);
            var split = random.Next(buffer.Length);
            Assert.NotEqual(HelloStatus.NeedMoreData, ClientHelloReader.TryParse(HelloReplay.Sequence(buffer[..split], buffer[split..])).Status);
        }
    }

    // ---- the hello body ---------------------------------------------------------------------------------

    [Theory]
    [InlineData(9, new byte[] { 0x02, 0x00 }, "legacy_version 0x0200 at offset 9")]
    [InlineData(43, new byte[] { 0x21 }, "session_id length 33 at offset 43 exceeds 32")]
    [InlineData(43, new byte[] { 0x20 }, "session_id length 32 at offset 43 overruns the client_hello (26 bytes left)")]
    [InlineData(44, new byte[] { 0x00, 0x03 }, "cipher_suites length 3 at offset 44 is not an even number")]
    [InlineData(44, new byte[] { 0x00, 0x00 }, "cipher_suites length 0 at offset 44")]
    [InlineData(44, new byte[] { 0x01, 0x00 }, "cipher_suites length 256 at offset 44 overruns the client_hello (24 bytes left)")]
    [InlineData(48, new byte[] { 0x00 }, "compression_methods length at offset 48 is 0")]
    [InlineData(48, new byte[] { 0x40 }, "compression_methods length 64 at offset 48 overruns")]
    [InlineData(50, new byte[] { 0x00, 0x13 }, "extensions length 19 at offset 50 does not match the 18 bytes left")]
    [InlineData(50, new byte[] { 0x00, 0x11 }, "extensions length 17 at offset 50 does not match the 18 bytes left")]
    [InlineData(54, new byte[] { 0x00, 0x0f }, "extension[0] (type 0x0000) data length 15 at offset 54 overruns the extensions block (14 bytes left)")]
    [InlineData(56, new byte[] { 0x00, 0x0d }, "server_name list length 13 at offset 56 does not match the 12 bytes")]
    [InlineData(56, new byte[] { 0x00, 0x0b }, "server_name list length 11 at offset 56 does not match the 12 bytes")]
    [InlineData(59, new byte[] { 0x00, 0x0a }, "server_name entry length 10 at offset 59 overruns the server_name list (9 bytes left)")]
    [InlineData(59, new byte[] { 0xff, 0xff }, "server_name entry length 65535 at offset 59 overruns")]
    public void A_length_that_breaks_the_grammar_is_malformed_and_named_with_its_offset(int offset, byte[] bytes, string detail)
    {
        var result = HelloReplay.EveryWay(Patched(Minimal, offset, bytes));
        Assert.Equal(HelloError.Malformed, result.Error);
        Assert.Contains(detail, result.Detail);
    }

    [Fact]
    public void A_hello_too_short_for_its_fixed_fields_is_malformed_not_waiting()
    {
        // The handshake length says 20 bytes: legacy_version fits, the random does not.
        byte[] bytes = [0x16, 0x03, 0x01, 0x00, 0x18, 0x01, 0x00, 0x00, 0x14, 0x03, 0x03, .. new byte[18]];
        var result = HelloReplay.EveryWay(bytes);
        Assert.Equal(HelloError.Malformed, result.Error);
        Assert.Contains("random needs 32 bytes at offset 11 but the client_hello has 18 left", result.Detail);
        Assert.Equal(result, ClientHelloReader.TryParse(bytes.AsSpan(0, 11)));
        Assert.Equal(HelloError.Malformed, HelloReplay.EveryWay([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00]).Error);
        // One stray byte where the extensions length would be.
        var stray = HelloReplay.EveryWay(Records.Wrap([.. ClientHelloBuilder.HandshakeMessage([.. Records.Unwrap(NoExtensions)[4..], 0x00])]));
        Assert.Contains("extensions length needs 2 bytes at offset 50", stray.Detail);
    }

    [Fact]
    public void An_extension_header_cut_by_the_end_of_the_block_is_malformed()
    {
        var body = new ClientHelloBuilder { Extensions = null }.Body();
        byte[] withBlock = [.. body, 0x00, 0x06, 0x00, 0x17, 0x00, 0x00, 0xab, 0xcd];
        var result = HelloReplay.EveryWay(Records.Wrap(ClientHelloBuilder.HandshakeMessage(withBlock)));
        Assert.Equal(HelloError.Malformed, result.Error);
        Assert.Contains("extension[1]", result.Detail);
        Assert.Contains("needs a 4-byte header", result.Detail);
    }

    [Fact]
    public void An_extension_type_may_appear_only_once()
    {
        var result = HelloReplay.EveryWay(OpenSslLike("a.example").With(HelloExtension.Alpn("h3")).Build());
        Assert.Equal(HelloError.Malformed, result.Error);
        Assert.Contains("extension type 0x0010 appears twice; the second is extension[10]", result.Detail);
    }

    [Fact]
    public void Duplicates_are_found_among_more_extensions_than_the_stack_set_holds()
    {
        var builder = new ClientHelloBuilder().With([.. Enumerable.Range(0, 90).Select(i => HelloExtension.Empty((ushort)(0x7000 + (i * 257))))]);
        builder.With(HelloExtension.Empty(0x7000 + (17 * 257)));
        var result = HelloReplay.EveryWay(builder.Build());
        Assert.Equal(HelloError.Malformed, result.Error);
        Assert.Contains("extension type 0x8111 appears twice; the second is extension[90]", result.Detail);
        builder.Extensions![^1] = HelloExtension.ServerName("a.example");
        builder.With(HelloExtension.ServerName("b.example"));
        Assert.Equal(HelloError.DuplicateServerName, HelloReplay.EveryWay(builder.Build()).Error);
    }

    // ---- server_name --------------------------------------------------------------------------------------

    [Fact]
    public void Two_server_name_extensions_are_refused()
    {
        var result = HelloReplay.EveryWay(OpenSslLike("a.example").WithServerName("b.example").Build());
        Assert.Equal(HelloError.DuplicateServerName, result.Error);
        Assert.Contains("second server_name extension (extension[10])", result.Detail);
        // Even when both carry the same name.
        Assert.Equal(HelloError.DuplicateServerName, HelloReplay.EveryWay(OpenSslLike("a.example").WithServerName("a.example").Build()).Error);
    }

    [Fact]
    public void Two_host_names_in_one_list_are_refused()
    {
        var bytes = new ClientHelloBuilder().With(HelloExtension.ServerNameEntries((0, "a.example"u8.ToArray()), (0, "b.example"u8.ToArray()))).Build();
        var result = HelloReplay.EveryWay(bytes);
        Assert.Equal(HelloError.MultipleServerNames, result.Error);
        // An unknown name_type in between changes nothing.
        Assert.Equal(
            HelloError.MultipleServerNames,
            HelloReplay.EveryWay(new ClientHelloBuilder().With(HelloExtension.ServerNameEntries((0, "a.example"u8.ToArray()), (9, [1]), (0, "a.example"u8.ToArray()))).Build()).Error);
    }

    [Fact]
    public void An_empty_host_name_is_refused()
    {
        var result = HelloReplay.EveryWay(new ClientHelloBuilder().With(HelloExtension.ServerName([])).Build());
        Assert.Equal(HelloError.EmptyServerName, result.Error);
    }

    [Theory]
    [InlineData(new byte[0], "is 0 bytes; the server_name list length needs 2")]
    [InlineData(new byte[] { 0x00 }, "is 1 bytes; the server_name list length needs 2")]
    [InlineData(new byte[] { 0x00, 0x00 }, "server_name list at offset")]
    [InlineData(new byte[] { 0x00, 0x02, 0x00, 0x00 }, "cut off by the end of the server_name list")]
    [InlineData(new byte[] { 0x00, 0x01, 0x00 }, "cut off by the end of the server_name list")]
    public void A_server_name_extension_without_a_proper_list_is_malformed(byte[] data, string detail)
    {
        var result = HelloReplay.EveryWay(new ClientHelloBuilder().With(new HelloExtension(0, data)).Build());
        Assert.Equal(HelloError.Malformed, result.Error);
        Assert.Contains(detail, result.Detail);
    }

    [Theory]
    [InlineData("a\0b.example", "byte \\x00 at offset")]
    [InlineData("a\x1b[31mred.example", "byte \\x1b at offset")]
    [InlineData("with space.example", "byte   at offset")]
    [InlineData("tab\t.example", "byte \\x09 at offset")]
    [InlineData("a..b", "empty label")]
    [InlineData(".a.example", "empty label")]
    [InlineData("a.example..", "empty label")]
    [InlineData(".", "has no labels")]
    [InlineData("..", "empty label")]
    [InlineData("*.example.com", "wildcard")]
    [InlineData("ex*mple.com", "byte * at offset")]
    [InlineData("a/b.example", "byte / at offset")]
    [InlineData("a:443", "byte : at offset")]
    [InlineData("[::1]", "byte [ at offset")]
    [InlineData("quote'.example", "byte \\x27 at offset")]
    [InlineData("back\\slash.example", "byte \\x5c at offset")]
    public void A_host_name_that_is_not_a_routable_dns_name_is_refused(string name, string detail)
    {
        var result = HelloReplay.EveryWay(OpenSslLike(null).With(HelloExtension.ServerName(Encoding.Latin1.GetBytes(name))).Build());
        Assert.Equal(HelloError.InvalidServerName, result.Error);
        Assert.Contains(detail, result.Detail);
    }

    [Theory]
    [InlineData(new byte[] { 0xc3, 0xa9, 0x2e, 0x65, 0x78 }, "\\xc3")]           // UTF-8 é: must come as punycode
    [InlineData(new byte[] { 0x61, 0x80, 0x62 }, "\\x80")]
    [InlineData(new byte[] { 0x61, 0xff }, "\\xff")]
    [InlineData(new byte[] { 0x61, 0x7f }, "\\x7f")]
    public void A_host_name_with_bytes_above_ascii_is_refused_and_escaped(byte[] name, string escaped)
    {
        var result = HelloReplay.EveryWay(new ClientHelloBuilder().With(HelloExtension.ServerName(name)).Build());
        Assert.Equal(HelloError.InvalidServerName, result.Error);
        Assert.Contains($"byte {escaped} at offset", result.Detail);
    }

    [Theory]
    [InlineData(64, "a label of 64 bytes")]
    [InlineData(300, "host_name length 300")]
    [InlineData(255, "host_name length 255")]
    public void Overlong_names_and_labels_are_refused(int length, string detail)
    {
        var name = length == 64 ? new string('x', 64) + ".example" : new string('a', length);
        var result = HelloReplay.EveryWay(new ClientHelloBuilder().WithServerName(name).Build());
        Assert.Equal(HelloError.InvalidServerName, result.Error);
        Assert.Contains(detail, result.Detail);
    }

    [Fact]
    public void A_254_byte_name_is_refused_unless_its_last_byte_is_the_trailing_dot()
    {
        var withoutDot = HelloReplay.EveryWay(new ClientHelloBuilder().WithServerName(Name253 + "d").Build());
        Assert.Equal(HelloError.InvalidServerName, withoutDot.Error);
        Assert.Contains("is 254 bytes; at most 253", withoutDot.Detail);
        Assert.Equal(Name253, HelloReplay.EveryWay(new ClientHelloBuilder().WithServerName(Name253 + ".").Build()).ServerName);
    }

    [Fact]
    public void A_300_byte_name_of_bad_bytes_is_refused_without_a_raw_byte_in_the_detail()
    {
        var name = Enumerable.Range(0, 300).Select(i => (byte)(i % 2 == 0 ? 0x00 : 0x1b)).ToArray();
        var result = HelloReplay.EveryWay(new ClientHelloBuilder().With(HelloExtension.ServerName(name)).Build());
        Assert.Equal(HelloError.InvalidServerName, result.Error);
        var shortName = HelloReplay.EveryWay(new ClientHelloBuilder().With(HelloExtension.ServerName(name[..200])).Build());
        Assert.Equal(HelloError.InvalidServerName, shortName.Error);
        Assert.Contains("'\\x00\\x1b\\x00\\x1b", shortName.Detail);
        Assert.Contains("...'", shortName.Detail);
    }

    [Fact]
    public void The_offset_of_a_bad_name_byte_counts_the_record_headers_before_it()
    {
        var handshake = Records.Unwrap(Patched(Minimal, 65, 0x00)); // "a.ex\0mple": the NUL is handshake byte 60
        var single = HelloReplay.EveryWay(Records.Wrap(handshake));
        Assert.Contains("byte \\x00 at offset 65", single.Detail);
        Assert.Contains("host_name 'a.ex\\x00mple' at offset 61", single.Detail);
        var records = Records.Split(handshake, 20); // 5 * (60 / 20 + 1) + 60
        var split = HelloReplay.EveryWay(records);
        Assert.Equal(0x00, records[80]);
        Assert.Contains("byte \\x00 at offset 80", split.Detail);
        Assert.Contains("host_name 'a.ex\\x00mple' at offset 71 has", split.Detail); // the name starts at handshake byte 56, in the third record
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    private static byte[] Patched(byte[] sample, int offset, params byte[] bytes)
    {
        var copy = sample.ToArray();
        bytes.CopyTo(copy, offset);
        return copy;
    }

    /// <summary>A single-record hello with server_name "big.example" padded to a handshake body of exactly <paramref name="bodyLength"/> bytes.</summary>
    private static byte[] HelloOfLength(int bodyLength)
    {
        var builder = new ClientHelloBuilder().WithServerName("big.example");
        var padding = bodyLength - builder.Body().Length - 4;
        var body = builder.With(HelloExtension.Padding(padding)).Body();
        Assert.Equal(bodyLength, body.Length);
        return Records.Wrap(ClientHelloBuilder.HandshakeMessage(body));
    }
}
