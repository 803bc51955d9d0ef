namespace Trc.Core.Toml;

/// <summary>A syntax or semantic error in a TOML document, at a position.</summary>
/// <param name="Position">Where the error is.</param>
/// <param name="Message">What is wrong, naming the offending character, key or value.</param>
public sealed record TomlError(TomlPosition Position, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{Position.Line}:{Position.Column}: {Message}";
}

/// <summary>Thrown by the strict entry points when a document is not valid TOML 1.0.</summary>
public sealed class TomlException : Exception
{
    /// <summary>Wraps an error.</summary>
    public TomlException(TomlError error)
        : base(error.ToString())
    {
        Error = error;
    }

    /// <summary>The error, with its position.</summary>
    public TomlError Error { get; }
}
