using System.Text;

namespace Trc.Core.Secrets;

/// <summary>
/// The strict reader behind <see cref="SecretsFile.Parse"/>. A secrets file is small and read
/// whole (at most <see cref="SecretsFile.MaxFileBytes"/>), so there is no need-more-data state: one
/// linear pass, line by line, stopping at the first problem.
/// </summary>
internal static class SecretsFileParser
{
    private const string Base64Hint = "a value containing it must be written as base64:<standard base64>";

    public static SecretsParseResult Parse(ReadOnlySpan<byte> file)
    {
        if (file.Length > SecretsFile.MaxFileBytes)
        {
            return Fail(1, 1, 0, $"the file is larger than {SecretsFile.MaxFileBytes} bytes (4 MiB), the limit for a secrets file");
        }
        if (file.StartsWith("\uFEFF"u8))
        {
            return Fail(1, 1, 0, "the file starts with a UTF-8 byte order mark (EF BB BF); secrets files must not have one");
        }
        if (file.IsEmpty)
        {
            return Fail(1, 1, 0, $"the file is empty; its first line must be '{SecretsFile.Header}'");
        }

        var secrets = new List<KeyValuePair<string, byte[]>>();
        var firstLineOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var lineNumber = 0;
        var start = 0;
        while (start < file.Length)
        {
            lineNumber++;
            var newline = file[start..].IndexOf((byte)'\n');
            var line = newline < 0 ? file[start..] : file.Slice(start, newline);
            var error = ParseLine(line, lineNumber, start, newline >= 0, secrets, firstLineOf);
            if (error is not null)
            {
                return SecretsParseResult.Fail(error);
            }
            start += line.Length + 1;
        }
        return SecretsParseResult.Ok(secrets);
    }

    private static SecretsFileError? ParseLine(
        ReadOnlySpan<byte> line,
        int lineNumber,
        int lineStart,
        bool endsWithNewline,
        List<KeyValuePair<string, byte[]>> secrets,
        Dictionary<string, int> firstLineOf)
    {
        if (lineNumber == 1)
        {
            if (line.SequenceEqual("# TRC_SECRETS_V1"u8))
            {
                return null;
            }
            if (line.SequenceEqual("# TRC_SECRETS_V1\r"u8) && endsWithNewline)
            {
                return At(line, lineNumber, lineStart, line.Length - 1, CrlfMessage);
            }
            return line.StartsWith("# TRC_SECRETS_"u8)
                ? At(line, lineNumber, lineStart, 0, $"unsupported secrets file header; this reader understands only '{SecretsFile.Header}'")
                : At(line, lineNumber, lineStart, 0, $"missing header: the first line must be exactly '{SecretsFile.Header}'");
        }

        // CR and NUL are never allowed raw, anywhere, so check them before anything else.
        var control = line.IndexOfAny((byte)'\r', (byte)0);
        if (control >= 0)
        {
            var where = Where(line, control);
            if (line[control] == 0)
            {
                return At(line, lineNumber, lineStart, control, $"raw NUL byte (0x00){where}; {Base64Hint}");
            }
            return control == line.Length - 1 && endsWithNewline
                ? At(line, lineNumber, lineStart, control, CrlfMessage)
                : At(line, lineNumber, lineStart, control, $"raw CR byte (0x0D){where}; CR is never allowed raw, {Base64Hint}");
        }

        if (line.IsEmpty)
        {
            return null;
        }
        if (line[0] == (byte)'#')
        {
            var invalid = Utf8Validation(line);
            return invalid < 0 ? null : At(line, lineNumber, lineStart, invalid, "a comment is not valid UTF-8");
        }

        var equals = line.IndexOf((byte)'=');
        if (equals < 0)
        {
            return At(line, lineNumber, lineStart, 0, "the line has no '='; each line must be KEY=VALUE, a comment starting with '#', or empty (a value containing a line break must be base64-encoded)");
        }
        if (equals == 0)
        {
            return At(line, lineNumber, lineStart, 0, "empty key: the line starts with '='");
        }
        for (var i = 0; i < equals; i++)
        {
            if (!SecretsFile.IsKeyByte(line[i]))
            {
                return At(line, lineNumber, lineStart, i, $"{DescribeByte(line, i)} is not allowed in a key; keys may contain only A-Z, 0-9 and _{SecretsFile.LowerCaseHint(line[i])}");
            }
            if (i == SecretsFile.MaxKeyBytes)
            {
                var prefix = Encoding.ASCII.GetString(line[..Math.Min(equals, 64)]);
                return At(line, lineNumber, lineStart, i, $"the key '{prefix}...' is longer than {SecretsFile.MaxKeyBytes} bytes, the limit");
            }
        }

        var key = Encoding.ASCII.GetString(line[..equals]);
        if (firstLineOf.TryGetValue(key, out var first))
        {
            return At(line, lineNumber, lineStart, 0, $"duplicate key {key}: first defined on line {first}");
        }

        var raw = line[(equals + 1)..];
        byte[] value;
        if (raw.StartsWith("base64:"u8))
        {
            var encoded = raw["base64:"u8.Length..];
            if (!SecretsFile.TryDecodeBase64(encoded, out var decoded, out var index, out var problem))
            {
                var at = equals + 1 + "base64:"u8.Length + index;
                return At(line, lineNumber, lineStart, at, $"the value of {key} is not canonical base64 after 'base64:': {problem}");
            }
            value = decoded;
        }
        else
        {
            var invalid = Utf8Validation(raw);
            if (invalid >= 0)
            {
                return At(line, lineNumber, lineStart, equals + 1 + invalid, $"the value of {key} is not valid UTF-8; such a value must be written as base64:<standard base64>");
            }
            value = raw.ToArray();
        }
        firstLineOf.Add(key, lineNumber);
        secrets.Add(new(key, value));
        return null;
    }

    private static SecretsFileError At(ReadOnlySpan<byte> line, int lineNumber, int lineStart, int index, string message) =>
        new(lineNumber, Column(line, index), lineStart + index, message);

    private const string CrlfMessage =
        "the line ends with CR LF: secrets files use LF line endings only, and a raw CR byte is never allowed (convert the file to LF; a value containing CR must be base64-encoded)";

    private static int Utf8Validation(ReadOnlySpan<byte> bytes) => Trc.Core.Toml.Utf8Validation.FindInvalid(bytes);

    /// <summary>Where a bad byte is, for messages: in a comment, in the value of a (valid) key, or nothing.</summary>
    private static string Where(ReadOnlySpan<byte> line, int index)
    {
        if (line[0] == (byte)'#')
        {
            return " in a comment";
        }
        var equals = line[..index].IndexOf((byte)'=');
        if (equals is <= 0 or > SecretsFile.MaxKeyBytes)
        {
            return "";
        }
        foreach (var b in line[..equals])
        {
            if (!SecretsFile.IsKeyByte(b))
            {
                return "";
            }
        }
        return $" in the value of {Encoding.ASCII.GetString(line[..equals])}";
    }

    /// <summary>The 1-based column of <paramref name="index"/>: scalar values before it, each invalid byte counting as one.</summary>
    private static int Column(ReadOnlySpan<byte> line, int index)
    {
        var column = 1;
        var p = 0;
        while (p < index && p < line.Length)
        {
            Rune.DecodeFromUtf8(line[p..index], out _, out var consumed);
            p += Math.Max(consumed, 1);
            column++;
        }
        return column;
    }

    /// <summary>Names the character starting at a byte of a key, decoding UTF-8 where it is valid.</summary>
    private static string DescribeByte(ReadOnlySpan<byte> line, int index)
    {
        var status = Rune.DecodeFromUtf8(line[index..], out var rune, out _);
        return status == System.Buffers.OperationStatus.Done
            ? SecretsFile.DescribeRune(rune)
            : $"the byte 0x{line[index]:X2} (not valid UTF-8)";
    }

    private static SecretsParseResult Fail(int line, int column, long offset, string message) =>
        SecretsParseResult.Fail(new SecretsFileError(line, column, offset, message));
}
