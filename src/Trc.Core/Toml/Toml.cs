namespace Trc.Core.Toml;

/// <summary>The result of parsing: a document, or the first error.</summary>
public sealed class TomlParseResult
{
    private TomlParseResult(TomlDocument? document, TomlError? error)
    {
        Document = document;
        Error = error;
    }

    /// <summary>The document, when parsing succeeded.</summary>
    public TomlDocument? Document { get; }

    /// <summary>The first error, when it failed.</summary>
    public TomlError? Error { get; }

    /// <summary>True when <see cref="Document"/> is set.</summary>
    public bool IsSuccess => Document is not null;

    internal static TomlParseResult Ok(TomlDocument document) => new(document, null);

    internal static TomlParseResult Fail(TomlError error) => new(null, error);
}

/// <summary>Entry points of the TOML 1.0.0 reader.</summary>
public static class Toml
{
    /// <summary>Parses UTF-8 bytes into a document, or returns the first error with its line and column.</summary>
    public static TomlParseResult Parse(ReadOnlySpan<byte> utf8, TomlParserOptions? options = null)
    {
        try
        {
            return TomlParseResult.Ok(TomlDocumentBuilder.Build(TomlParser.ParseSyntax(utf8, options)));
        }
        catch (TomlException e)
        {
            return TomlParseResult.Fail(e.Error);
        }
    }

    /// <summary>Parses a string into a document, or returns the first error with its line and column.</summary>
    public static TomlParseResult Parse(string text, TomlParserOptions? options = null)
    {
        try
        {
            return TomlParseResult.Ok(TomlDocumentBuilder.Build(TomlParser.ParseSyntax(text, options)));
        }
        catch (TomlException e)
        {
            return TomlParseResult.Fail(e.Error);
        }
    }

    /// <summary>Parses a string and returns its root table; throws <see cref="TomlException"/> on error.</summary>
    public static TomlTable ParseTable(string text) =>
        TomlDocumentBuilder.Build(TomlParser.ParseSyntax(text)).Root;
}
