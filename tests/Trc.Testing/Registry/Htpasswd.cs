using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Trc.Testing.Registry;

/// <summary>
/// htpasswd lines with bcrypt hashes, made by libxcrypt's crypt_rn (which knows <c>$2b$</c>), so the
/// tests need no apache2-utils. docker-registry accepts only bcrypt in its htpasswd file.
/// </summary>
public static class Htpasswd
{
    // sizeof(struct crypt_data) in libxcrypt; crypt_rn refuses a smaller buffer. 'output' is its first field.
    private const int CryptDataSize = 32768;

    /// <summary>One <c>user:hash</c> line, at bcrypt's lowest cost (the hash is for a test, and checked on every request).</summary>
    public static string Line(string user, string password) => $"{user}:{Bcrypt(password)}";

    public static string Bcrypt(string password, int cost = 4)
    {
        var random = RandomNumberGenerator.GetBytes(16);
        var setting = new byte[128];
        if (crypt_gensalt_rn("$2b$\0"u8.ToArray(), (nuint)cost, random, random.Length, setting, setting.Length) == IntPtr.Zero)
        {
            throw new InvalidOperationException($"crypt_gensalt_rn failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        var data = new byte[CryptDataSize];
        var phrase = Encoding.UTF8.GetBytes(password + "\0");
        if (crypt_rn(phrase, setting, data, data.Length) == IntPtr.Zero)
        {
            throw new InvalidOperationException($"crypt_rn failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        var hash = Encoding.ASCII.GetString(data, 0, Array.IndexOf(data, (byte)0));
        return hash.StartsWith("$2b$", StringComparison.Ordinal) ? hash : throw new InvalidOperationException($"libcrypt gave no bcrypt hash: {hash}");
    }

    // DllImport rather than LibraryImport: the generated stubs would need AllowUnsafeBlocks, and
    // blittable byte[] arguments are pinned, so the library writes straight into them.
    [DllImport("libcrypt.so.1", SetLastError = true)]
    private static extern IntPtr crypt_gensalt_rn(byte[] prefix, nuint count, byte[] rbytes, int nrbytes, byte[] output, int outputSize);

    [DllImport("libcrypt.so.1", SetLastError = true)]
    private static extern IntPtr crypt_rn(byte[] phrase, byte[] setting, byte[] data, int size);
}
