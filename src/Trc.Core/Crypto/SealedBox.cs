using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Trc.Core.Crypto;

/// <summary>
/// One payload sealed by <see cref="Envelope.Seal"/>: the payload encrypted under a fresh data key,
/// and that data key wrapped under the master key named by <see cref="MasterKeyId"/>.
/// </summary>
/// <remarks>
/// <para>The binary form (<see cref="ToBytes"/>, <see cref="Parse"/>), version 1, big-endian:</para>
/// <code>
/// offset  size  field
///      0     1  version = 1
///      1     8  master key id (the 8 bytes behind MasterKey.Id)
///      9    60  wrapped data key: nonce (12) | encrypted key (32) | tag (16)
///     69    12  payload nonce
///     81     4  payload length N (uint32), at most MaxPayloadBytes
///     85   N+16 payload ciphertext (N) | tag (16)
/// </code>
/// <para>
/// A box is exactly 101 + N bytes: trailing bytes are an error, so a box stored in a database
/// column or a file cannot silently carry garbage. Every byte is authenticated: the version and key
/// id through the wrap's associated data, the nonces and ciphertexts by their GCM tags, and the
/// length by the payload tag's position.
/// </para>
/// <para>The byte arrays are compared by reference by the record's equality; compare <see cref="ToBytes"/> for content.</para>
/// </remarks>
/// <param name="Version">The format version; <see cref="CurrentVersion"/> is the only one so far.</param>
/// <param name="MasterKeyId">The <see cref="MasterKey.Id"/> of the key that wrapped the data key.</param>
/// <param name="WrappedDataKey">The data key under the master key: nonce (12) | ciphertext (32) | tag (16).</param>
/// <param name="PayloadNonce">The payload's 12-byte nonce.</param>
/// <param name="Ciphertext">The payload's ciphertext followed by its 16-byte tag.</param>
public sealed record SealedBox(byte Version, string MasterKeyId, byte[] WrappedDataKey, byte[] PayloadNonce, byte[] Ciphertext)
{
    /// <summary>The version this build writes and reads.</summary>
    public const byte CurrentVersion = 1;

    /// <summary>The largest payload, in bytes (16 MiB). Larger data (volume backups) is split into chunks first.</summary>
    public const int MaxPayloadBytes = 16 * 1024 * 1024;

    /// <summary>The length of a wrapped data key: nonce, encrypted key, tag.</summary>
    public const int WrappedDataKeyBytes = Aes256Gcm.NonceBytes + Aes256Gcm.KeyBytes + Aes256Gcm.TagBytes;

    /// <summary>The bytes before the payload ciphertext: version, key id, wrapped key, nonce, length.</summary>
    public const int HeaderBytes = 1 + KeyIdBytes + WrappedDataKeyBytes + Aes256Gcm.NonceBytes + 4;

    /// <summary>The size of a box with an empty payload: the header and the payload tag.</summary>
    public const int OverheadBytes = HeaderBytes + Aes256Gcm.TagBytes;

    private const int KeyIdBytes = 8;

    /// <summary>The plaintext length, from the ciphertext's.</summary>
    public int PayloadLength => Ciphertext.Length - Aes256Gcm.TagBytes;

    /// <summary>The binary form described on <see cref="SealedBox"/>.</summary>
    /// <exception cref="InvalidOperationException">A field has the wrong size for the version.</exception>
    public byte[] ToBytes()
    {
        if (Problem() is { } problem)
        {
            throw new InvalidOperationException($"cannot serialize this sealed box: {problem}");
        }
        var output = new byte[HeaderBytes + Ciphertext.Length];
        var p = 0;
        output[p++] = Version;
        Convert.FromHexString(MasterKeyId, output.AsSpan(p, KeyIdBytes), out _, out _);
        p += KeyIdBytes;
        WrappedDataKey.CopyTo(output, p);
        p += WrappedDataKeyBytes;
        PayloadNonce.CopyTo(output, p);
        p += Aes256Gcm.NonceBytes;
        BinaryPrimitives.WriteUInt32BigEndian(output.AsSpan(p), (uint)PayloadLength);
        p += 4;
        Ciphertext.CopyTo(output, p);
        return output;
    }

    /// <summary>Reads the binary form strictly: a known version, every length checked, no trailing bytes.</summary>
    /// <exception cref="FormatException">The input is not one whole sealed box; the message says what is wrong.</exception>
    public static SealedBox Parse(ReadOnlySpan<byte> input) =>
        TryParse(input, out var box, out var problem) ? box : throw new FormatException(problem);

    /// <summary>
    /// Reads the binary form strictly; on failure <paramref name="problem"/> says what is wrong
    /// (which field, the sizes expected and found) without quoting the input.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> input, [NotNullWhen(true)] out SealedBox? box, [NotNullWhen(false)] out string? problem)
    {
        box = null;
        if (input.IsEmpty)
        {
            problem = "not a sealed box: the input is empty";
            return false;
        }
        if (input[0] != CurrentVersion)
        {
            problem = $"not a sealed box this build can read: version {input[0]} (this build reads version {CurrentVersion})";
            return false;
        }
        if (input.Length < HeaderBytes)
        {
            problem = $"truncated sealed box: {input.Length} bytes, shorter than the {HeaderBytes}-byte header";
            return false;
        }
        var length = BinaryPrimitives.ReadUInt32BigEndian(input.Slice(HeaderBytes - 4, 4));
        if (length > MaxPayloadBytes)
        {
            problem = $"sealed box declares a {length}-byte payload, more than the {MaxPayloadBytes}-byte (16 MiB) limit";
            return false;
        }
        // Both terms are at most 16 MiB plus a little, so this cannot overflow.
        var expected = HeaderBytes + (int)length + Aes256Gcm.TagBytes;
        if (input.Length != expected)
        {
            problem = input.Length < expected
                ? $"truncated sealed box: {input.Length} bytes, but its {length}-byte payload needs {expected}"
                : $"sealed box has {input.Length - expected} trailing byte{(input.Length - expected == 1 ? "" : "s")} after its {expected} bytes";
            return false;
        }

        var p = 1;
        var keyId = Convert.ToHexStringLower(input.Slice(p, KeyIdBytes));
        p += KeyIdBytes;
        var wrapped = input.Slice(p, WrappedDataKeyBytes).ToArray();
        p += WrappedDataKeyBytes;
        var nonce = input.Slice(p, Aes256Gcm.NonceBytes).ToArray();
        p += Aes256Gcm.NonceBytes + 4;
        box = new SealedBox(CurrentVersion, keyId, wrapped, nonce, input[p..].ToArray());
        problem = null;
        return true;
    }

    /// <summary>What makes this record impossible to open or serialize, or null when its fields fit its version.</summary>
    internal string? Problem()
    {
        if (Version != CurrentVersion)
        {
            return $"unsupported sealed box version {Version} (this build reads version {CurrentVersion})";
        }
        if (MasterKeyId is null || MasterKeyId.Length != 2 * KeyIdBytes || !MasterKeyId.All(char.IsAsciiHexDigitLower))
        {
            return $"the master key id must be {2 * KeyIdBytes} lower-case hex characters";
        }
        if (WrappedDataKey is null || WrappedDataKey.Length != WrappedDataKeyBytes)
        {
            return $"the wrapped data key must be {WrappedDataKeyBytes} bytes, not {WrappedDataKey?.Length.ToString(CultureInfo.InvariantCulture) ?? "null"}";
        }
        if (PayloadNonce is null || PayloadNonce.Length != Aes256Gcm.NonceBytes)
        {
            return $"the payload nonce must be {Aes256Gcm.NonceBytes} bytes, not {PayloadNonce?.Length.ToString(CultureInfo.InvariantCulture) ?? "null"}";
        }
        if (Ciphertext is null || Ciphertext.Length < Aes256Gcm.TagBytes || Ciphertext.Length - Aes256Gcm.TagBytes > MaxPayloadBytes)
        {
            return $"the ciphertext must be a tag of {Aes256Gcm.TagBytes} bytes after at most {MaxPayloadBytes} bytes of payload, not {Ciphertext?.Length.ToString(CultureInfo.InvariantCulture) ?? "null"} bytes in all";
        }
        return null;
    }
}
