using System.Security.Cryptography;
using Trc.Core.Crypto;

namespace Trc.Core.Tests.Crypto;

public sealed class SealedBoxTests : IDisposable
{
    private readonly MasterKey _master = MasterKey.Generate();

    public void Dispose() => _master.Dispose();

    private static SealedBox Sample => new(
        Version: 1,
        MasterKeyId: "0123456789abcdef",
        WrappedDataKey: [.. Enumerable.Repeat((byte)0xA1, 12), .. Enumerable.Repeat((byte)0xB2, 32), .. Enumerable.Repeat((byte)0xC3, 16)],
        PayloadNonce: [.. Enumerable.Repeat((byte)0xD4, 12)],
        Ciphertext: [0xE5, 0xE5, 0xE5, .. Enumerable.Repeat((byte)0xF6, 16)]);

    private static byte[] SampleBytes =>
    [
        0x01,                                            // version
        0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,  // master key id
        .. Enumerable.Repeat((byte)0xA1, 12),            // wrap nonce
        .. Enumerable.Repeat((byte)0xB2, 32),            // wrapped data key
        .. Enumerable.Repeat((byte)0xC3, 16),            // wrap tag
        .. Enumerable.Repeat((byte)0xD4, 12),            // payload nonce
        0x00, 0x00, 0x00, 0x03,                          // payload length 3, big-endian
        0xE5, 0xE5, 0xE5,                                // payload ciphertext
        .. Enumerable.Repeat((byte)0xF6, 16),            // payload tag
    ];

    // ---- The layout ----

    [Fact]
    public void The_binary_form_is_the_documented_layout()
    {
        Assert.Equal(SampleBytes, Sample.ToBytes());
        Assert.Equal(85, SealedBox.HeaderBytes);
        Assert.Equal(101, SealedBox.OverheadBytes);
    }

    [Fact]
    public void Parsing_the_documented_layout_gives_every_field_back()
    {
        var box = SealedBox.Parse(SampleBytes);
        var expected = Sample;

        Assert.Equal(expected.Version, box.Version);
        Assert.Equal(expected.MasterKeyId, box.MasterKeyId);
        Assert.Equal(expected.WrappedDataKey, box.WrappedDataKey);
        Assert.Equal(expected.PayloadNonce, box.PayloadNonce);
        Assert.Equal(expected.Ciphertext, box.Ciphertext);
        Assert.Equal(3, box.PayloadLength);
    }

    [Fact]
    public void A_record_with_fields_of_the_wrong_size_cannot_be_serialized()
    {
        var e = Assert.Throws<InvalidOperationException>(() => (Sample with { PayloadNonce = new byte[11] }).ToBytes());
        Assert.Contains("nonce", e.Message);
        Assert.Throws<InvalidOperationException>(() => (Sample with { Version = 9 }).ToBytes());
        Assert.Throws<InvalidOperationException>(() => (Sample with { MasterKeyId = "not hex at all!!" }).ToBytes());
    }

    // ---- Hostile input ----

    [Fact]
    public void A_box_truncated_at_every_length_gives_a_clean_error()
    {
        var bytes = Envelope.Seal(_master, "twelve bytes"u8, "ad"u8).ToBytes();
        for (var length = 0; length < bytes.Length; length++)
        {
            var e = Assert.Throws<FormatException>(() => SealedBox.Parse(bytes.AsSpan(0, length)));
            Assert.Matches(length == 0 ? "empty" : "truncated", e.Message);
        }
    }

    [Fact]
    public void Trailing_bytes_after_a_box_are_refused()
    {
        byte[] bytes = [.. SampleBytes, 0x00];
        var e = Assert.Throws<FormatException>(() => SealedBox.Parse(bytes));
        Assert.Contains("1 trailing byte", e.Message);
    }

    [Theory]
    [InlineData(0x00)]
    [InlineData(0x02)]
    [InlineData(0xFF)]
    public void An_unknown_version_byte_is_named_in_the_error(byte version)
    {
        byte[] bytes = [.. SampleBytes];
        bytes[0] = version;
        var e = Assert.Throws<FormatException>(() => SealedBox.Parse(bytes));
        Assert.Contains($"version {version}", e.Message);
    }

    [Theory]
    [InlineData(0xFFFFFFFFu, "more than")]
    [InlineData(0x80000000u, "more than")]
    [InlineData((uint)SealedBox.MaxPayloadBytes + 1, "more than")]
    [InlineData((uint)SealedBox.MaxPayloadBytes, "truncated")]
    [InlineData(4u, "truncated")]
    [InlineData(2u, "trailing")]
    [InlineData(0u, "trailing")]
    public void A_declared_length_that_does_not_match_the_input_is_refused(uint declared, string expected)
    {
        byte[] bytes = [.. SampleBytes];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(SealedBox.HeaderBytes - 4), declared);

        var e = Assert.Throws<FormatException>(() => SealedBox.Parse(bytes));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Random_garbage_gives_a_clean_error_or_a_box_that_does_not_open()
    {
        var random = new Random(20240607);
        for (var i = 0; i < 20_000; i++)
        {
            var input = new byte[random.Next(0, 300)];
            random.NextBytes(input);
            if (input.Length > 0 && i % 2 == 0)
            {
                input[0] = SealedBox.CurrentVersion;
            }
            if (input.Length >= SealedBox.HeaderBytes && i % 4 == 0)
            {
                // A consistent length gets the garbage past the parser to Open.
                var declared = (uint)Math.Max(0, input.Length - SealedBox.OverheadBytes);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(input.AsSpan(SealedBox.HeaderBytes - 4), declared);
            }

            var e = Record.Exception(() => Envelope.Open(_master, SealedBox.Parse(input), []));

            Assert.True(e is CryptographicException or FormatException, $"input {i}: {(e is null ? "opened" : e.GetType().Name + ": " + e.Message)}");
        }
    }

    [Fact]
    public void TryParse_reports_the_problem_without_throwing()
    {
        Assert.False(SealedBox.TryParse([0x01, 0x02], out var box, out var problem));
        Assert.Null(box);
        Assert.Contains("truncated", problem);

        Assert.True(SealedBox.TryParse(SampleBytes, out box, out problem));
        Assert.Null(problem);
        Assert.Equal(SampleBytes, box.ToBytes());
    }
}
