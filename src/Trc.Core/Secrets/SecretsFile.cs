using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Trc.Core.Secrets;

/// <summary>
/// The platform's secrets file (ADR 0010): a strict parser and a canonical encoder.
/// </summary>
/// <remarks>
/// <para>The format, exactly:</para>
/// <list type="bullet">
/// <item>UTF-8 text, no byte order mark, at most <see cref="MaxFileBytes"/> bytes. Lines end with LF;
/// a raw CR byte is never allowed anywhere (a CRLF file is rejected), nor is a raw NUL.</item>
/// <item>The first line is exactly <c># TRC_SECRETS_V1</c>.</item>
/// <item>Each secret is one line <c>KEY=VALUE</c>. KEY matches <c>[A-Z0-9_]+</c> and is at most
/// <see cref="MaxKeyBytes"/> bytes; a key appears once. VALUE is everything after the first <c>=</c>
/// up to the end of the line: raw, unquoted and untrimmed (whitespace is significant).</item>
/// <item>A value that contains LF, CR or NUL, is not valid UTF-8, or itself starts with
/// <c>base64:</c> is written <c>base64:</c> followed by canonical standard base64 with padding
/// (RFC 4648 section 4: no whitespace, no URL-safe alphabet, zero trailing bits). The parser
/// accepts <c>base64:</c> for any value.</item>
/// <item>A line starting with <c>#</c> is a comment (it must be valid UTF-8). Comments are full
/// lines only: in <c>KEY=x # y</c> the value is <c>x # y</c>.</item>
/// <item>Empty lines are allowed and ignored. The last line may lack its final LF.</item>
/// </list>
/// <para>
/// The encoder writes the header, then one line per secret sorted by key (ordinal), each ending
/// with LF; no comments, no empty lines. Values are written raw unless
/// <see cref="MustBase64Encode"/> says otherwise, so the same secrets always give the same bytes
/// and <c>Parse(Encode(x))</c> returns exactly <c>x</c>.
/// </para>
/// <para>
/// Error messages name the line, column, byte offset and key, never a value: secrets must not
/// reach logs. Long keys are truncated in messages.
/// </para>
/// </remarks>
public static class SecretsFile
{
    /// <summary>The first line of every secrets file, without its LF.</summary>
    public const string Header = "# TRC_SECRETS_V1";

    /// <summary>The prefix of a base64-encoded value.</summary>
    public const string Base64Prefix = "base64:";

    /// <summary>The longest key, in bytes.</summary>
    public const int MaxKeyBytes = 255;

    /// <summary>The largest file, in bytes (4 MiB).</summary>
    public const int MaxFileBytes = 4 * 1024 * 1024;

    /// <summary>Parses a whole secrets file strictly; the first problem is returned as an error, never thrown.</summary>
    public static SecretsParseResult Parse(ReadOnlySpan<byte> file) => SecretsFileParser.Parse(file);

    /// <summary>
    /// Writes the canonical file for <paramref name="secrets"/>: header, then keys in ordinal order,
    /// each value raw or as <c>base64:</c> when <see cref="MustBase64Encode"/> says so.
    /// </summary>
    /// <exception cref="ArgumentNullException">The sequence, or one of its values, is null.</exception>
    /// <exception cref="ArgumentException">
    /// A key is invalid or appears twice, or the file would exceed <see cref="MaxFileBytes"/>.
    /// </exception>
    public static byte[] Encode(IEnumerable<KeyValuePair<string, byte[]>> secrets)
    {
        ArgumentNullException.ThrowIfNull(secrets);
        var sorted = new List<KeyValuePair<string, byte[]>>();
        foreach (var secret in secrets)
        {
            if (!IsValidKey(secret.Key, out var problem))
            {
                throw new ArgumentException(problem, nameof(secrets));
            }
            if (secret.Value is null)
            {
                throw new ArgumentNullException(nameof(secrets), $"the value of {secret.Key} is null");
            }
            sorted.Add(secret);
        }
        sorted.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));

        long size = Header.Length + 1;
        for (var i = 0; i < sorted.Count; i++)
        {
            if (i > 0 && sorted[i].Key == sorted[i - 1].Key)
            {
                throw new ArgumentException($"duplicate key {DisplayKey(sorted[i].Key)}", nameof(secrets));
            }
            var value = sorted[i].Value;
            if (value.Length > MaxFileBytes)
            {
                throw new ArgumentException($"the value of {DisplayKey(sorted[i].Key)} is larger than {MaxFileBytes} bytes (4 MiB), the limit for a whole secrets file", nameof(secrets));
            }
            var valueBytes = MustBase64Encode(value) ? Base64Prefix.Length + Base64.GetMaxEncodedToUtf8Length(value.Length) : value.Length;
            size += sorted[i].Key.Length + 1 + valueBytes + 1;
            if (size > MaxFileBytes)
            {
                throw new ArgumentException($"the secrets file would be larger than {MaxFileBytes} bytes (4 MiB), the limit", nameof(secrets));
            }
        }

        var output = new byte[size];
        var p = 0;
        p += Encoding.ASCII.GetBytes(Header, output.AsSpan(p));
        output[p++] = (byte)'\n';
        foreach (var (key, value) in sorted)
        {
            p += Encoding.ASCII.GetBytes(key, output.AsSpan(p));
            output[p++] = (byte)'=';
            if (MustBase64Encode(value))
            {
                p += Encoding.ASCII.GetBytes(Base64Prefix, output.AsSpan(p));
                Base64.EncodeToUtf8(value, output.AsSpan(p), out _, out var written);
                p += written;
            }
            else
            {
                value.CopyTo(output.AsSpan(p));
                p += value.Length;
            }
            output[p++] = (byte)'\n';
        }
        return output;
    }

    /// <summary>
    /// True when the encoder must write <paramref name="value"/> as <c>base64:</c>: it contains LF,
    /// CR or NUL, is not valid UTF-8, or starts with <c>base64:</c> (which would otherwise be read
    /// back as an encoded value).
    /// </summary>
    public static bool MustBase64Encode(ReadOnlySpan<byte> value) =>
        value.IndexOfAny((byte)'\n', (byte)'\r', (byte)0) >= 0
        || value.StartsWith("base64:"u8)
        || !System.Text.Unicode.Utf8.IsValid(value);

    /// <summary>True when <paramref name="key"/> is a valid key: 1 to 255 characters of A-Z, 0-9 and _.</summary>
    public static bool IsValidKey([NotNullWhen(true)] string? key) => IsValidKey(key, out _);

    /// <summary>
    /// True when <paramref name="key"/> is a valid key; otherwise <paramref name="problem"/> says why,
    /// naming the offending character (the key is truncated and escaped in the message).
    /// </summary>
    public static bool IsValidKey([NotNullWhen(true)] string? key, [NotNullWhen(false)] out string? problem)
    {
        if (key is null)
        {
            problem = "a key is null";
            return false;
        }
        if (key.Length == 0)
        {
            problem = "a key is empty; keys are 1 to 255 characters of A-Z, 0-9 and _";
            return false;
        }
        for (var i = 0; i < key.Length; i++)
        {
            var c = key[i];
            if (!IsKeyChar(c))
            {
                problem = $"key {DisplayKey(key)} is not valid: {DescribeChar(key, i)} at position {i + 1} is not allowed; keys may contain only A-Z, 0-9 and _{LowerCaseHint(c)}";
                return false;
            }
        }
        if (key.Length > MaxKeyBytes)
        {
            problem = $"key {DisplayKey(key)} is longer than {MaxKeyBytes} bytes, the limit";
            return false;
        }
        problem = null;
        return true;
    }

    /// <summary>
    /// Decodes canonical standard base64 with padding (RFC 4648 section 4), the encoding after
    /// <c>base64:</c>. Whitespace, the URL-safe alphabet, missing padding and non-zero trailing bits
    /// are rejected: the text must be exactly what encoding the decoded bytes gives back. On failure,
    /// <paramref name="errorIndex"/> is the offending byte's index in <paramref name="text"/> and
    /// <paramref name="problem"/> says what is wrong without quoting the text.
    /// </summary>
    public static bool TryDecodeBase64(ReadOnlySpan<byte> text, [NotNullWhen(true)] out byte[]? value, out int errorIndex, [NotNullWhen(false)] out string? problem)
    {
        value = null;
        for (var i = 0; i < text.Length; i++)
        {
            var b = text[i];
            if (b is (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9') or (byte)'+' or (byte)'/' or (byte)'=')
            {
                continue;
            }
            errorIndex = i;
            problem = b switch
            {
                (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\v' or (byte)'\f' => "whitespace is not allowed in base64",
                (byte)'-' or (byte)'_' => "a character of the URL-safe base64 alphabet ('-' or '_'); use standard base64 ('+' and '/')",
                _ => "a byte that is not in the standard base64 alphabet (A-Z, a-z, 0-9, '+', '/', '=')",
            };
            return false;
        }
        if (text.Length % 4 != 0)
        {
            errorIndex = text.Length;
            problem = "the base64 length is not a multiple of 4 (is the '=' padding missing?)";
            return false;
        }
        var padding = text.EndsWith("=="u8) ? 2 : text.EndsWith("="u8) ? 1 : 0;
        var misplaced = text[..^padding].IndexOf((byte)'=');
        if (misplaced >= 0)
        {
            errorIndex = misplaced;
            problem = "'=' padding in the wrong place (it may only end the text)";
            return false;
        }
        var decoded = new byte[Base64.GetMaxDecodedFromUtf8Length(text.Length)];
        var status = Base64.DecodeFromUtf8(text, decoded, out _, out var written, isFinalBlock: true);
        if (status != System.Buffers.OperationStatus.Done)
        {
            // The alphabet, length and padding are right, so only the last character's unused bits can be wrong.
            errorIndex = text.Length - padding - 1;
            problem = TrailingBits;
            return false;
        }
        Array.Resize(ref decoded, written);

        // Canonical means the text is exactly what encoding gives back. The checks above should
        // already guarantee it; this comparison keeps it true whatever the decoder tolerates.
        var reencoded = new byte[Base64.GetMaxEncodedToUtf8Length(written)];
        Base64.EncodeToUtf8(decoded, reencoded, out _, out _);
        if (!text.SequenceEqual(reencoded))
        {
            var mismatch = text.CommonPrefixLength(reencoded);
            errorIndex = mismatch;
            problem = TrailingBits;
            return false;
        }
        errorIndex = -1;
        problem = null;
        value = decoded;
        return true;
    }

    private const string TrailingBits = "the last base64 character has non-zero trailing bits; this is not the canonical encoding";

    internal static bool IsKeyByte(byte b) => b is (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9') or (byte)'_';

    private static bool IsKeyChar(char c) => c < 0x80 && IsKeyByte((byte)c);

    internal static string LowerCaseHint(int c) =>
        c is >= 'a' and <= 'z' ? " (lower case is not allowed)" : "";

    /// <summary>A key for an error message: quoted, escaped and cut to 64 characters.</summary>
    internal static string DisplayKey(string key)
    {
        const int max = 64;
        var sb = new StringBuilder("'");
        for (var i = 0; i < key.Length && i < max; i++)
        {
            var c = key[i];
            if (c is >= ' ' and <= '~' and not '\'' and not '\\')
            {
                sb.Append(c);
            }
            else
            {
                sb.Append($"\\u{(int)c:X4}");
            }
        }
        sb.Append('\'');
        if (key.Length > max)
        {
            sb.Insert(sb.Length - 1, "...");
            sb.Append($" ({key.Length} characters)");
        }
        return sb.ToString();
    }

    private static string DescribeChar(string s, int i)
    {
        var c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            return $"the character U+{char.ConvertToUtf32(c, s[i + 1]):X4}";
        }
        if (char.IsSurrogate(c))
        {
            return $"the lone surrogate U+{(int)c:X4}";
        }
        return DescribeRune(new Rune(c));
    }

    internal static string DescribeRune(Rune r) => r.Value switch
    {
        ' ' => "a space",
        '\t' => "a tab",
        '\'' => "the character \"'\"",
        >= 0x21 and <= 0x7E => $"the character '{(char)r.Value}'",
        _ when Rune.IsControl(r) || Rune.IsWhiteSpace(r) => $"the character U+{r.Value:X4}",
        _ => $"the character '{r}' (U+{r.Value:X4})",
    };
}
