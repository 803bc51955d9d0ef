using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Trc.Core.Secrets;

namespace Trc.Core.Crypto;

/// <summary>
/// The 256-bit key that wraps the per-box data keys of <see cref="Envelope"/>. It never encrypts a
/// payload itself, so it is used once per sealed box however large the payload.
/// </summary>
/// <remarks>
/// <para>
/// The key file holds exactly the key as standard base64 with padding (44 characters), optionally
/// followed by one LF, and nothing else. On Unix its mode must be 0600 or 0400.
/// </para>
/// <para>
/// The key bytes never leave this object: <see cref="ToString"/> and the debugger show only
/// <see cref="Id"/>, and no error message quotes the file's content. Wrapping uses a random 96-bit
/// nonce per data key, so one master key should seal fewer than 2^32 boxes (NIST SP 800-38D,
/// section 8.3); rotate long before that.
/// </para>
/// </remarks>
[DebuggerDisplay("MasterKey {Id}")]
public sealed class MasterKey : IDisposable
{
    /// <summary>The key length in bytes (256 bits).</summary>
    public const int KeyBytes = 32;

    /// <summary>The length of the key as padded standard base64, the whole content of a key file but an optional LF.</summary>
    public const int Base64Chars = 44;

    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    // Anything beyond this cannot be a key file; reading stops here so a wrong path to a big file is cheap.
    private const int MaxFileBytes = 1024;

    private readonly byte[] key;
    private bool disposed;

    private MasterKey(ReadOnlySpan<byte> key)
    {
        Debug.Assert(key.Length == KeyBytes);
        this.key = key.ToArray();
        Id = ComputeId(key);
    }

    /// <summary>
    /// The first 8 bytes of the SHA-256 of the key, as 16 lower-case hex characters. Recorded in
    /// every sealed box so that opening with the wrong key says so instead of failing a tag check.
    /// </summary>
    public string Id { get; }

    /// <summary>A new random key, in memory only.</summary>
    public static MasterKey Generate()
    {
        Span<byte> bytes = stackalloc byte[KeyBytes];
        RandomNumberGenerator.Fill(bytes);
        try
        {
            return new MasterKey(bytes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>Reads a key file, checking its permissions (on Unix) before its content.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="MasterKeyFileException">
    /// The file is readable or writable by group or others, or does not hold exactly one key in base64.
    /// </exception>
    /// <exception cref="IOException">The file could not be read.</exception>
    public static MasterKey LoadFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"master key file '{path}' does not exist", path, e);
        }

        using (stream)
        {
            if (!OperatingSystem.IsWindows())
            {
                // Checked on the open handle, so the mode is that of the file actually read.
                var mode = File.GetUnixFileMode(stream.SafeFileHandle);
                if (mode is not (OwnerReadWrite or UnixFileMode.UserRead))
                {
                    throw new MasterKeyFileException(
                        $"master key file '{path}' has mode {Octal(mode)}; it must be readable by its owner only (0600 or 0400). Fix it with: chmod 600 '{path}'");
                }
            }

            var buffer = new byte[MaxFileBytes + 1];
            try
            {
                var length = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
                return FromFileContent(buffer.AsSpan(0, length), path);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(buffer);
            }
        }
    }

    /// <summary>
    /// Generates a key and writes it to a new key file with mode 0600 (on Unix). The file appears
    /// whole or not at all: the key is written to a temporary file in the same directory, which is
    /// created with mode 0600, flushed to disk, then moved into place.
    /// </summary>
    /// <exception cref="IOException">The file already exists (it is never overwritten), or could not be written.</exception>
    public static MasterKey CreateFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        if (Path.Exists(full))
        {
            throw AlreadyExists(path);
        }

        var master = Generate();
        var content = new byte[Base64Chars + 1];
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}.tmp");
        try
        {
            var written = Encoding.ASCII.GetBytes(Convert.ToBase64String(master.key), content);
            Debug.Assert(written == Base64Chars);
            content[Base64Chars] = (byte)'\n';

            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                // Applied by open(2) itself: the file is never readable by others, not even empty.
                options.UnixCreateMode = OwnerReadWrite;
            }
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            // overwrite: false fails if the key file appeared meanwhile; a key is never replaced.
            File.Move(temp, full, overwrite: false);
            return master;
        }
        catch (Exception e)
        {
            master.Dispose();
            TryDelete(temp);
            if (e is IOException && Path.Exists(full))
            {
                throw AlreadyExists(path);
            }
            throw;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(content);
        }
    }

    /// <summary>The raw key, for the envelope's AES-GCM calls only.</summary>
    internal ReadOnlySpan<byte> Bytes
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return key;
        }
    }

    /// <summary><c>MasterKey</c> and the <see cref="Id"/>; never the key.</summary>
    public override string ToString() => $"MasterKey {Id}";

    /// <summary>Clears the key from memory; the object cannot be used afterwards.</summary>
    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(key);
        disposed = true;
    }

    internal static string ComputeId(ReadOnlySpan<byte> key)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(key, hash);
        return Convert.ToHexStringLower(hash[..8]);
    }

    private static MasterKey FromFileContent(ReadOnlySpan<byte> content, string path)
    {
        var text = content.EndsWith("\n"u8) ? content[..^1] : content;
        if (text.Length != Base64Chars)
        {
            var size = content.Length > MaxFileBytes ? $"more than {MaxFileBytes} bytes" : $"{content.Length} bytes";
            throw new MasterKeyFileException(
                $"master key file '{path}' is {size}; it must hold exactly {Base64Chars} base64 characters (a {KeyBytes}-byte key), optionally followed by one LF, and nothing else");
        }
        if (!SecretsFile.TryDecodeBase64(text, out var decoded, out var errorIndex, out var problem))
        {
            throw new MasterKeyFileException($"master key file '{path}' is not a base64 key: {problem} (at character {errorIndex + 1})");
        }
        try
        {
            if (decoded.Length != KeyBytes)
            {
                throw new MasterKeyFileException($"master key file '{path}' decodes to {decoded.Length} bytes; a master key is {KeyBytes} bytes ({Base64Chars} base64 characters ending in one '=')");
            }
            return new MasterKey(decoded);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(decoded);
        }
    }

    private static IOException AlreadyExists(string path) =>
        new($"master key file '{path}' already exists; refusing to overwrite it (boxes sealed with that key could never be opened again)");

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode, 8).PadLeft(3, '0');

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the temporary file holds a key nobody uses, with mode 0600.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>
/// A master key file that must not be used: readable or writable by others, or not exactly one
/// base64 key. The message says what to fix and never contains any of the file's content.
/// </summary>
public sealed class MasterKeyFileException : IOException
{
    /// <summary>Creates the exception with a message that is safe to log.</summary>
    public MasterKeyFileException(string message)
        : base(message)
    {
    }
}
