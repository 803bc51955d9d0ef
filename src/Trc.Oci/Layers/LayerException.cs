namespace Trc.Oci.Layers;

/// <summary>
/// A layer could not be applied: a hostile or unsupported entry, a malformed or truncated tar, or a
/// size cap. The message names the entry and what is wrong with it.
/// </summary>
public sealed class LayerException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LayerException(string message, string? entryName = null, long? offset = null, Exception? inner = null)
        : base(Describe(message, entryName, offset), inner)
    {
        EntryName = entryName;
        Offset = offset;
    }

    /// <summary>The tar entry name as stored in the layer, when known.</summary>
    public string? EntryName { get; }

    /// <summary>Bytes of the (decompressed) layer consumed when the error was found, when known.</summary>
    public long? Offset { get; }

    private static string Describe(string message, string? entryName, long? offset) =>
        (entryName, offset) switch
        {
            (not null, not null) => $"entry '{Printable(entryName)}' (near byte {offset}): {message}",
            (not null, null) => $"entry '{Printable(entryName)}': {message}",
            (null, not null) => $"near byte {offset}: {message}",
            _ => message,
        };

    // Names come from untrusted input: keep control characters (NUL, newlines) out of logs.
    private static string Printable(string s) =>
        string.Concat(s.Select(c => char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString()));
}
