namespace Trc.Core.Secrets;

/// <summary>
/// Why a secrets file was rejected, and where. The message names the key and the position but
/// never contains any byte of a secret value, so it is safe to log.
/// </summary>
/// <param name="Line">1-based line number.</param>
/// <param name="Column">
/// 1-based column, in Unicode scalar values from the start of the line (a byte that is not valid
/// UTF-8 counts as one).
/// </param>
/// <param name="ByteOffset">0-based offset of the offending byte from the start of the file.</param>
/// <param name="Message">What is wrong.</param>
public sealed record SecretsFileError(int Line, int Column, long ByteOffset, string Message)
{
    /// <summary><c>LINE:COLUMN: message (byte offset N)</c>, ready to be prefixed with a file name.</summary>
    public override string ToString() => $"{Line}:{Column}: {Message} (byte offset {ByteOffset})";
}

/// <summary>The result of <see cref="SecretsFile.Parse"/>: the secrets in file order, or the first error.</summary>
public sealed class SecretsParseResult
{
    private SecretsParseResult(IReadOnlyList<KeyValuePair<string, byte[]>>? secrets, SecretsFileError? error)
    {
        Secrets = secrets;
        Error = error;
    }

    /// <summary>The secrets in the order of the file, when parsing succeeded. Values are the exact bytes.</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>>? Secrets { get; }

    /// <summary>The first error, when parsing failed.</summary>
    public SecretsFileError? Error { get; }

    /// <summary>True when <see cref="Secrets"/> is set.</summary>
    public bool IsSuccess => Secrets is not null;

    internal static SecretsParseResult Ok(IReadOnlyList<KeyValuePair<string, byte[]>> secrets) => new(secrets, null);

    internal static SecretsParseResult Fail(SecretsFileError error) => new(null, error);
}
