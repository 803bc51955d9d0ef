using System.Security.Cryptography;

namespace Trc.Core.Crypto;

/// <summary>
/// The one AES-GCM parameter set the envelope uses: 256-bit key, 96-bit nonce, 128-bit tag, the
/// tag appended to the ciphertext. Every encryption and decryption in <see cref="Envelope"/> goes
/// through here, so the Wycheproof vectors that run against this class cover the calls that
/// protect real data.
/// </summary>
internal static class Aes256Gcm
{
    public const int KeyBytes = 32;
    public const int NonceBytes = 12;
    public const int TagBytes = 16;

    /// <summary>Writes the ciphertext then the tag into <paramref name="ciphertextAndTag"/> (plaintext length + 16 bytes).</summary>
    public static void Encrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, Span<byte> ciphertextAndTag)
    {
        CheckSizes(key, nonce);
        if (ciphertextAndTag.Length != plaintext.Length + TagBytes)
        {
            throw new ArgumentException($"the output must be {plaintext.Length + TagBytes} bytes (plaintext and tag), not {ciphertextAndTag.Length}", nameof(ciphertextAndTag));
        }
        using var gcm = new AesGcm(key, TagBytes);
        gcm.Encrypt(nonce, plaintext, ciphertextAndTag[..plaintext.Length], ciphertextAndTag[plaintext.Length..], associatedData);
    }

    /// <summary>
    /// Verifies the tag at the end of <paramref name="ciphertextAndTag"/> and, only when it
    /// verifies, writes the plaintext. False when the input is shorter than a tag or the tag does
    /// not verify; <paramref name="plaintext"/> is then cleared.
    /// </summary>
    public static bool TryDecrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertextAndTag, ReadOnlySpan<byte> associatedData, Span<byte> plaintext)
    {
        CheckSizes(key, nonce);
        if (ciphertextAndTag.Length < TagBytes || plaintext.Length != ciphertextAndTag.Length - TagBytes)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            return false;
        }
        var length = ciphertextAndTag.Length - TagBytes;
        using var gcm = new AesGcm(key, TagBytes);
        try
        {
            gcm.Decrypt(nonce, ciphertextAndTag[..length], ciphertextAndTag[length..], plaintext, associatedData);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            // AesGcm already clears the output on a mismatch; this keeps the promise explicit.
            CryptographicOperations.ZeroMemory(plaintext);
            return false;
        }
    }

    private static void CheckSizes(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce)
    {
        if (key.Length != KeyBytes)
        {
            throw new ArgumentException($"the key must be {KeyBytes} bytes, not {key.Length}", nameof(key));
        }
        if (nonce.Length != NonceBytes)
        {
            throw new ArgumentException($"the nonce must be {NonceBytes} bytes, not {nonce.Length}", nameof(nonce));
        }
    }
}
