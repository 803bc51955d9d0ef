namespace Trc.Core.Toml;

/// <summary>A 1-based line and column in a source text. Columns count Unicode scalar values.</summary>
/// <param name="Line">1-based line number.</param>
/// <param name="Column">1-based column, in Unicode scalar values from the start of the line.</param>
public readonly record struct TomlPosition(int Line, int Column)
{
    /// <inheritdoc />
    public override string ToString() => $"{Line}:{Column}";
}

/// <summary>
/// The text a document was parsed from, with a line index so that an offset can be turned into a
/// line and column without rescanning the text.
/// </summary>
public sealed class SourceText
{
    private readonly int[] _lineStarts;

    /// <summary>Indexes <paramref name="text"/>. Lines end at LF; a CR before it belongs to the line.</summary>
    public SourceText(string text)
    {
        Text = text;
        var starts = new List<int> { 0 };
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n')
            {
                starts.Add(i + 1);
            }
        }
        _lineStarts = starts.ToArray();
    }

    /// <summary>The whole text.</summary>
    public string Text { get; }

    /// <summary>The line and column of a UTF-16 offset into <see cref="Text"/>.</summary>
    public TomlPosition GetPosition(int offset)
    {
        offset = Math.Clamp(offset, 0, Text.Length);
        var line = Array.BinarySearch(_lineStarts, offset);
        if (line < 0)
        {
            line = ~line - 1;
        }
        var column = 1;
        for (var i = _lineStarts[line]; i < offset; i++)
        {
            // A surrogate pair is one scalar value: count only its high half.
            if (!char.IsLowSurrogate(Text[i]))
            {
                column++;
            }
        }
        return new TomlPosition(line + 1, column);
    }
}
