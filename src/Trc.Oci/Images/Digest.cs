using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Trc.Oci.Images;

/// <summary>
/// A content digest as the OCI image spec writes it, <c>algorithm:encoded</c>.
/// Only the two registered algorithms are accepted: <c>sha256</c> (64 lowercase hex digits) and
/// <c>sha512</c> (128 lowercase hex digits). Instances are always valid and compare by value.
/// </summary>
public sealed class Digest : IEquatable<Digest>
{
    /// <summary>The name of the SHA-256 algorithm.</summary>
    public const string Sha256 = "sha256";

    /// <summary>The name of the SHA-512 algorithm.</summary>
    public const string Sha512 = "sha512";

    private Digest(string algorithm, string hex)
    {
        Algorithm = algorithm;
        Hex = hex;
    }

    /// <summary>The algorithm, <see cref="Sha256"/> or <see cref="Sha512"/>.</summary>
    public string Algorithm { get; }

    /// <summary>The encoded part: lowercase hex of the hash.</summary>
    public string Hex { get; }

    /// <summary>Parses <paramref name="text"/>, throwing <see cref="FormatException"/> naming what is wrong.</summary>
    /// <param name="text">A digest such as <c>sha256:e3b0...</c>.</param>
    /// <returns>The digest.</returns>
    /// <exception cref="FormatException">The text is not a supported digest.</exception>
    public static Digest Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var digest, out var error) ? digest : throw new FormatException(error);
    }

    /// <summary>Parses <paramref name="text"/> without throwing.</summary>
    /// <param name="text">A digest such as <c>sha256:e3b0...</c>.</param>
    /// <param name="digest">The digest, when the text is valid.</param>
    /// <param name="error">Why the text is not a supported digest, when it is not.</param>
    /// <returns>Whether the text is a supported digest.</returns>
    public static bool TryParse(string? text, [NotNullWhen(true)] out Digest? digest, [NotNullWhen(false)] out string? error)
    {
        digest = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "digest is empty";
            return false;
        }
        var colon = text.IndexOf(':');
        if (colon < 0)
        {
            error = $"digest \"{Shorten(text)}\": missing ':' between algorithm and hex";
            return false;
        }
        var algorithm = text[..colon];
        var encoded = text[(colon + 1)..];
        if (!IsAlgorithmGrammar(algorithm))
        {
            error = $"digest \"{Shorten(text)}\": algorithm \"{Shorten(algorithm)}\" is not lowercase letters and digits joined by '+', '.', '_' or '-'";
            return false;
        }
        int expected;
        switch (algorithm)
        {
            case Sha256:
                expected = 64;
                break;
            case Sha512:
                expected = 128;
                break;
            default:
                error = $"digest \"{Shorten(text)}\": unsupported algorithm \"{algorithm}\" (supported: sha256, sha512)";
                return false;
        }
        if (encoded.Length == 0)
        {
            error = $"digest \"{Shorten(text)}\": hex is empty";
            return false;
        }
        foreach (var c in encoded)
        {
            if (c is >= 'A' and <= 'F')
            {
                error = $"digest \"{Shorten(text)}\": hex must be lowercase";
                return false;
            }
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                error = $"digest \"{Shorten(text)}\": '{Printable(c)}' is not a hex digit";
                return false;
            }
        }
        if (encoded.Length != expected)
        {
            error = $"digest \"{Shorten(text)}\": {algorithm} needs {expected} hex digits, got {encoded.Length}";
            return false;
        }
        digest = new Digest(algorithm, encoded);
        error = null;
        return true;
    }

    /// <summary>Hashes <paramref name="data"/> in one go.</summary>
    /// <param name="algorithm"><see cref="Sha256"/> or <see cref="Sha512"/>.</param>
    /// <param name="data">The bytes.</param>
    /// <returns>The digest of the bytes.</returns>
    public static Digest Compute(string algorithm, ReadOnlySpan<byte> data)
    {
        Span<byte> hash = stackalloc byte[64];
        var length = algorithm switch
        {
            Sha256 => SHA256.HashData(data, hash),
            Sha512 => SHA512.HashData(data, hash),
            _ => throw new ArgumentException($"unsupported digest algorithm \"{algorithm}\" (supported: sha256, sha512)", nameof(algorithm)),
        };
        return new Digest(algorithm, Convert.ToHexStringLower(hash[..length]));
    }

    /// <summary>Starts an incremental check of bytes against this digest.</summary>
    /// <returns>A verifier to feed the bytes to; dispose it when done.</returns>
    public DigestVerifier CreateVerifier() => new(this);

    /// <summary>Starts an incremental hash of bytes with <paramref name="algorithm"/>.</summary>
    /// <param name="algorithm"><see cref="Sha256"/> or <see cref="Sha512"/>.</param>
    /// <returns>A hasher to feed the bytes to; dispose it when done.</returns>
    public static DigestHasher CreateHasher(string algorithm = Sha256) => new(algorithm);

    /// <inheritdoc />
    public bool Equals(Digest? other) =>
        other is not null && Algorithm == other.Algorithm && Hex == other.Hex;

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as Digest);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Algorithm, Hex);

    /// <summary>The digest as <c>algorithm:hex</c>.</summary>
    /// <returns>The canonical text.</returns>
    public override string ToString() => $"{Algorithm}:{Hex}";

    /// <summary>Compares by value.</summary>
    public static bool operator ==(Digest? left, Digest? right) => left is null ? right is null : left.Equals(right);

    /// <summary>Compares by value.</summary>
    public static bool operator !=(Digest? left, Digest? right) => !(left == right);

    internal static HashAlgorithmName HashName(string algorithm) => algorithm switch
    {
        Sha256 => HashAlgorithmName.SHA256,
        Sha512 => HashAlgorithmName.SHA512,
        _ => throw new ArgumentException($"unsupported digest algorithm \"{algorithm}\" (supported: sha256, sha512)", nameof(algorithm)),
    };

    // OCI image-spec: algorithm ::= component (separator component)*, component ::= [a-z0-9]+, separator ::= [+._-]
    private static bool IsAlgorithmGrammar(string algorithm)
    {
        if (algorithm.Length == 0)
        {
            return false;
        }
        var previousWasSeparator = true;
        foreach (var c in algorithm)
        {
            if (c is (>= 'a' and <= 'z') or (>= '0' and <= '9'))
            {
                previousWasSeparator = false;
            }
            else if (c is '+' or '.' or '_' or '-' && !previousWasSeparator)
            {
                previousWasSeparator = true;
            }
            else
            {
                return false;
            }
        }
        return !previousWasSeparator;
    }

    // Error messages quote the input; a hostile megabyte-long digest must not end up whole in a log line.
    internal static string Shorten(string text) => text.Length <= 160 ? text : string.Concat(text.AsSpan(0, 150), "…");

    private static string Printable(char c) => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString();
}

/// <summary>Hashes bytes fed in pieces, then gives their <see cref="Digest"/>.</summary>
public sealed class DigestHasher : IDisposable
{
    private readonly IncrementalHash _hash;

    internal DigestHasher(string algorithm)
    {
        Algorithm = algorithm;
        _hash = IncrementalHash.CreateHash(Digest.HashName(algorithm));
    }

    /// <summary>The algorithm the bytes are hashed with.</summary>
    public string Algorithm { get; }

    /// <summary>How many bytes have been fed so far.</summary>
    public long BytesHashed { get; private set; }

    /// <summary>Feeds the next bytes.</summary>
    /// <param name="data">The bytes.</param>
    public void Append(ReadOnlySpan<byte> data)
    {
        _hash.AppendData(data);
        BytesHashed += data.Length;
    }

    /// <summary>The digest of everything fed so far; the hasher starts over afterwards.</summary>
    /// <returns>The digest.</returns>
    public Digest GetDigestAndReset()
    {
        Span<byte> hash = stackalloc byte[64];
        var length = _hash.GetHashAndReset(hash);
        BytesHashed = 0;
        return Digest.Parse($"{Algorithm}:{Convert.ToHexStringLower(hash[..length])}");
    }

    /// <inheritdoc />
    public void Dispose() => _hash.Dispose();
}

/// <summary>
/// Checks bytes fed in pieces against an expected <see cref="Digest"/>, so a blob can be verified
/// while it streams instead of after it is buffered.
/// </summary>
public sealed class DigestVerifier : IDisposable
{
    private readonly DigestHasher _hasher;

    internal DigestVerifier(Digest expected)
    {
        Expected = expected;
        _hasher = new DigestHasher(expected.Algorithm);
    }

    /// <summary>The digest the bytes must have.</summary>
    public Digest Expected { get; }

    /// <summary>How many bytes have been fed so far.</summary>
    public long BytesVerified => _hasher.BytesHashed;

    /// <summary>Feeds the next bytes.</summary>
    /// <param name="data">The bytes.</param>
    public void Append(ReadOnlySpan<byte> data) => _hasher.Append(data);

    /// <summary>Whether the bytes fed so far have the expected digest; the verifier starts over afterwards.</summary>
    /// <param name="actual">The digest the bytes actually have.</param>
    /// <returns>Whether it equals <see cref="Expected"/>.</returns>
    public bool Verify(out Digest actual)
    {
        actual = _hasher.GetDigestAndReset();
        return actual == Expected;
    }

    /// <summary>Whether the bytes fed so far have the expected digest; the verifier starts over afterwards.</summary>
    /// <returns>Whether it equals <see cref="Expected"/>.</returns>
    public bool Verify() => Verify(out _);

    /// <inheritdoc />
    public void Dispose() => _hasher.Dispose();
}
