using System.Security.Cryptography;

namespace Trc.Core.Crypto;

/// <summary>
/// Envelope encryption of one payload: AES-256-GCM under a fresh random data key, and that data
/// key wrapped with AES-256-GCM under a <see cref="MasterKey"/>. Used for secrets at rest.
/// </summary>
/// <remarks>
/// <para>
/// The associated data names the record the payload belongs to (for example the app and secret
/// name). It is not stored in the box; the caller passes the same bytes to <see cref="Open"/>. It
/// authenticates the payload and, with the master key id and version, the wrapped data key, so
/// neither a payload nor a wrapped key can be moved to another record.
/// </para>
/// <para>
/// A fresh data key per box means payload nonces never repeat under one key. The master key sees
/// one random-nonce encryption per box; see <see cref="MasterKey"/> for the resulting limit.
/// </para>
/// </remarks>
public static class Envelope
{
    // Domain separation: the master key may later wrap keys for other formats (volume backups);
    // this label keeps a wrapped key from one format from being accepted by another.
    private static ReadOnlySpan<byte> WrapLabel => "trc envelope data key\0"u8;

    /// <summary>Seals <paramref name="plaintext"/> (at most <see cref="SealedBox.MaxPayloadBytes"/>) under a new data key.</summary>
    /// <exception cref="ArgumentException">The plaintext is larger than <see cref="SealedBox.MaxPayloadBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The master key was disposed.</exception>
    public static SealedBox Seal(MasterKey master, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        ArgumentNullException.ThrowIfNull(master);
        if (plaintext.Length > SealedBox.MaxPayloadBytes)
        {
            throw new ArgumentException($"the payload is {plaintext.Length} bytes, more than the {SealedBox.MaxPayloadBytes}-byte (16 MiB) limit of a sealed box", nameof(plaintext));
        }

        Span<byte> dataKey = stackalloc byte[Aes256Gcm.KeyBytes];
        try
        {
            RandomNumberGenerator.Fill(dataKey);
            var payloadNonce = RandomNumberGenerator.GetBytes(Aes256Gcm.NonceBytes);
            var ciphertext = new byte[plaintext.Length + Aes256Gcm.TagBytes];
            Aes256Gcm.Encrypt(dataKey, payloadNonce, plaintext, associatedData, ciphertext);

            var wrapped = new byte[SealedBox.WrappedDataKeyBytes];
            var wrapNonce = wrapped.AsSpan(0, Aes256Gcm.NonceBytes);
            RandomNumberGenerator.Fill(wrapNonce);
            var wrapAd = WrapAssociatedData(SealedBox.CurrentVersion, master.Id, associatedData);
            Aes256Gcm.Encrypt(master.Bytes, wrapNonce, dataKey, wrapAd, wrapped.AsSpan(Aes256Gcm.NonceBytes));

            return new SealedBox(SealedBox.CurrentVersion, master.Id, wrapped, payloadNonce, ciphertext);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>Opens a box sealed by <see cref="Seal"/> with the same master key and associated data.</summary>
    /// <exception cref="CryptographicException">
    /// The box has an unknown version or malformed fields, was sealed with another master key (the
    /// message names both key ids), or does not verify: it was modified, or the associated data
    /// differs (<see cref="AuthenticationTagMismatchException"/>).
    /// </exception>
    /// <exception cref="ObjectDisposedException">The master key was disposed.</exception>
    public static byte[] Open(MasterKey master, SealedBox box, ReadOnlySpan<byte> associatedData)
    {
        ArgumentNullException.ThrowIfNull(master);
        ArgumentNullException.ThrowIfNull(box);
        if (box.Problem() is { } problem)
        {
            throw new CryptographicException($"cannot open this sealed box: {problem}");
        }
        if (box.MasterKeyId != master.Id)
        {
            throw new CryptographicException($"the box was sealed with master key {box.MasterKeyId}, this is key {master.Id}; load the master key it was sealed with");
        }

        Span<byte> dataKey = stackalloc byte[Aes256Gcm.KeyBytes];
        try
        {
            var wrapAd = WrapAssociatedData(box.Version, box.MasterKeyId, associatedData);
            var wrapped = box.WrappedDataKey.AsSpan();
            if (!Aes256Gcm.TryDecrypt(master.Bytes, wrapped[..Aes256Gcm.NonceBytes], wrapped[Aes256Gcm.NonceBytes..], wrapAd, dataKey))
            {
                throw new AuthenticationTagMismatchException(
                    "the box's data key does not verify: the box was modified, belongs to another record, or the associated data differs");
            }
            var plaintext = new byte[box.PayloadLength];
            if (!Aes256Gcm.TryDecrypt(dataKey, box.PayloadNonce, box.Ciphertext, associatedData, plaintext))
            {
                throw new AuthenticationTagMismatchException(
                    "the box's payload does not verify: the box was modified or its parts come from different boxes");
            }
            return plaintext;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>label | version | master key id (8 bytes) | the caller's associated data.</summary>
    private static byte[] WrapAssociatedData(byte version, string masterKeyId, ReadOnlySpan<byte> associatedData)
    {
        // The label, version and key id have fixed lengths, so the caller's bytes cannot shift into them.
        var ad = new byte[WrapLabel.Length + 1 + 8 + associatedData.Length];
        var p = 0;
        WrapLabel.CopyTo(ad);
        p += WrapLabel.Length;
        ad[p++] = version;
        Convert.FromHexString(masterKeyId, ad.AsSpan(p, 8), out _, out _);
        p += 8;
        associatedData.CopyTo(ad.AsSpan(p));
        return ad;
    }
}
