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

    // Offsets of the low halves of surrogate pairs, ascending: a column is the distance from the line
    // start minus those in between, so finding it costs two binary searches rather than a rescan of
    // the line (which made a long one-line array quadratic, as every value records its position).
    private readonly int[] _lowSurrogates;

    /// <summary>Indexes <paramref name="text"/>. Lines end at LF; a CR before it belongs to the line.</summary>
    public SourceText(string text)
    {
        Text = text;
        var starts = new List<int> { 0 };
        List<int>? lows = null;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n')
            {
                starts.Add(i + 1);
            }
            else if (char.IsLowSurrogate(text[i]))
            {
                (lows ??= []).Add(i);
            }
        }
        _lineStarts = starts.ToArray();
        _lowSurrogates = lows?.ToArray() ?? [];
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
        var lineStart = _lineStarts[line];
        // A surrogate pair is one scalar value: count only its high half.
        var column = 1 + (offset - lineStart) - (LowSurrogatesBefore(offset) - LowSurrogatesBefore(lineStart));
        return new TomlPosition(line + 1, column);
    }

    private int LowSurrogatesBefore(int offset)
    {
        var index = Array.BinarySearch(_lowSurrogates, offset);
        return index >= 0 ? index : ~index;
    }
}
