using System.Security.Cryptography;
using Trc.Core.Crypto;

namespace Trc.Core.Tests.Crypto;

public sealed class EnvelopeTests : IDisposable
{
    private readonly MasterKey _master = MasterKey.Generate();

    private static ReadOnlySpan<byte> Ad => "app=shop;secret=DATABASE_URL"u8;

    public void Dispose() => _master.Dispose();

    // ---- Round trips ----

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1024 * 1024)]
    public void A_sealed_payload_opens_to_the_same_bytes(int length)
    {
        var plaintext = RandomBytes(length, seed: length);
        var box = Envelope.Seal(_master, plaintext, Ad);

        Assert.Equal(plaintext, Envelope.Open(_master, box, Ad));
        Assert.Equal(plaintext, Envelope.Open(_master, SealedBox.Parse(box.ToBytes()), Ad));
        Assert.Equal(SealedBox.OverheadBytes + length, box.ToBytes().Length);
    }

    [Fact]
    public void Empty_associated_data_round_trips()
    {
        var box = Envelope.Seal(_master, "x"u8, []);
        Assert.Equal("x"u8.ToArray(), Envelope.Open(_master, box, []));
    }

    [Fact]
    public void Two_seals_of_the_same_plaintext_share_no_key_nonce_or_ciphertext()
    {
        var a = Envelope.Seal(_master, "same"u8, Ad);
        var b = Envelope.Seal(_master, "same"u8, Ad);

        Assert.NotEqual(a.WrappedDataKey, b.WrappedDataKey);
        Assert.NotEqual(a.WrappedDataKey[..12], b.WrappedDataKey[..12]);
        Assert.NotEqual(a.PayloadNonce, b.PayloadNonce);
        Assert.NotEqual(a.Ciphertext, b.Ciphertext);
        Assert.Equal(a.MasterKeyId, b.MasterKeyId);
    }

    [Fact]
    public void A_box_records_the_master_key_id_and_the_current_version()
    {
        var box = Envelope.Seal(_master, "x"u8, Ad);
        Assert.Equal(_master.Id, box.MasterKeyId);
        Assert.Equal(SealedBox.CurrentVersion, box.Version);
    }

    // ---- Size limit ----

    [Fact]
    public void A_payload_at_the_limit_seals_and_one_byte_more_is_refused()
    {
        var atLimit = new byte[SealedBox.MaxPayloadBytes];
        var box = Envelope.Seal(_master, atLimit, Ad);
        Assert.Equal(SealedBox.MaxPayloadBytes, Envelope.Open(_master, SealedBox.Parse(box.ToBytes()), Ad).Length);

        var e = Assert.Throws<ArgumentException>(() => Envelope.Seal(_master, new byte[SealedBox.MaxPayloadBytes + 1], Ad));
        Assert.Contains("16 MiB", e.Message);
    }

    // ---- Tampering ----

    [Theory]
    [InlineData(0x01)]
    [InlineData(0x80)]
    [InlineData(0xFF)]
    public void Flipping_any_byte_of_a_serialized_box_makes_it_unopenable(byte mask)
    {
        var bytes = Envelope.Seal(_master, "a small secret"u8, Ad).ToBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var tampered = (byte[])bytes.Clone();
            tampered[i] ^= mask;

            var e = Record.Exception(() => Envelope.Open(_master, SealedBox.Parse(tampered), Ad));

            Assert.True(e is CryptographicException or FormatException, $"byte {i}: {(e is null ? "opened" : e.GetType().Name + ": " + e.Message)}");
        }
    }

    [Fact]
    public void A_box_opened_with_other_associated_data_is_refused()
    {
        var box = Envelope.Seal(_master, "secret"u8, Ad);

        var e = Assert.Throws<AuthenticationTagMismatchException>(() => Envelope.Open(_master, box, "app=shop;secret=OTHER"u8));
        Assert.Contains("associated data", e.Message);
        Assert.Throws<AuthenticationTagMismatchException>(() => Envelope.Open(_master, box, []));
    }

    [Fact]
    public void A_box_opened_with_another_master_key_names_both_key_ids()
    {
        var box = Envelope.Seal(_master, "secret"u8, Ad);
        using var other = MasterKey.Generate();

        var e = Assert.Throws<CryptographicException>(() => Envelope.Open(other, box, Ad));
        Assert.Contains($"sealed with master key {_master.Id}, this is key {other.Id}", e.Message);
    }

    [Fact]
    public void A_box_relabelled_with_another_key_id_does_not_open_under_that_key()
    {
        // The attacker rewrites the id so the key check passes: the wrap's tag must still fail.
        using var other = MasterKey.Generate();
        var box = Envelope.Seal(_master, "secret"u8, Ad) with { MasterKeyId = other.Id };

        Assert.Throws<AuthenticationTagMismatchException>(() => Envelope.Open(other, box, Ad));
    }

    [Fact]
    public void Swapping_the_wrapped_key_between_two_boxes_fails()
    {
        var a = Envelope.Seal(_master, "first"u8, Ad);
        var b = Envelope.Seal(_master, "other"u8, Ad);

        Assert.Throws<AuthenticationTagMismatchException>(() => Envelope.Open(_master, a with { WrappedDataKey = b.WrappedDataKey }, Ad));
        Assert.Throws<AuthenticationTagMismatchException>(() => Envelope.Open(_master, b with { WrappedDataKey = a.WrappedDataKey }, Ad));
    }

    [Fact]
    public void A_wrapped_key_moved_to_a_box_of_another_record_fails_at_the_data_key()
    {
        var mine = Envelope.Seal(_master, "mine"u8, "record=1"u8);
        var theirs = Envelope.Seal(_master, "theirs"u8, "record=2"u8);

        // Even with the payload's nonce and ciphertext moved along, the wrap is bound to record 1.
        var moved = theirs with { WrappedDataKey = mine.WrappedDataKey, PayloadNonce = mine.PayloadNonce, Ciphertext = mine.Ciphertext };
        var e = Assert.Throws<AuthenticationTagMismatchException>(() => Envelope.Open(_master, moved, "record=2"u8));
        Assert.Contains("data key", e.Message);
    }

    [Fact]
    public void A_box_with_an_unknown_version_is_refused_by_open()
    {
        var box = Envelope.Seal(_master, "x"u8, Ad) with { Version = 2 };

        var e = Assert.Throws<CryptographicException>(() => Envelope.Open(_master, box, Ad));
        Assert.Contains("version 2", e.Message);
    }

    [Fact]
    public void A_box_with_fields_of_the_wrong_size_is_refused_cleanly()
    {
        var box = Envelope.Seal(_master, "x"u8, Ad);

        Assert.Throws<CryptographicException>(() => Envelope.Open(_master, box with { WrappedDataKey = box.WrappedDataKey[..^1] }, Ad));
        Assert.Throws<CryptographicException>(() => Envelope.Open(_master, box with { PayloadNonce = new byte[16] }, Ad));
        Assert.Throws<CryptographicException>(() => Envelope.Open(_master, box with { Ciphertext = new byte[15] }, Ad));
        Assert.Throws<CryptographicException>(() => Envelope.Open(_master, box with { MasterKeyId = box.MasterKeyId.ToUpperInvariant() + "0" }, Ad));
        Assert.Throws<CryptographicException>(() => Envelope.Open(_master, box with { MasterKeyId = null! }, Ad));
    }

    [Fact]
    public void A_disposed_master_key_cannot_seal_or_open()
    {
        var master = MasterKey.Generate();
        var box = Envelope.Seal(master, "x"u8, Ad);
        master.Dispose();

        Assert.Throws<ObjectDisposedException>(() => Envelope.Seal(master, "x"u8, Ad));
        Assert.Throws<ObjectDisposedException>(() => Envelope.Open(master, box, Ad));
    }

    internal static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
