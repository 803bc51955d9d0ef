using System.Globalization;
using System.Text;

namespace Trc.Core.Toml;

/// <summary>Limits that keep hostile documents cheap to reject.</summary>
public sealed record TomlParserOptions
{
    /// <summary>
    /// Deepest nesting allowed, counting header key parts, dotted key parts, arrays and inline tables.
    /// It bounds recursion in the parser and in everything that walks the result.
    /// </summary>
    public int MaxDepth
    {
        get => _maxDepth;
        init => _maxDepth = value is >= 1 and <= MaxAllowedDepth
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxDepth), value, $"MaxDepth must be between 1 and {MaxAllowedDepth}: deeper recursion risks the stack");
    }

    /// <summary>The largest <see cref="MaxDepth"/> accepted: deep enough for any real document, shallow enough for any thread's stack.</summary>
    public const int MaxAllowedDepth = 512;

    private readonly int _maxDepth = 128;

    /// <summary>The defaults.</summary>
    public static TomlParserOptions Default { get; } = new();
}

/// <summary>
/// Recursive-descent parser for TOML 1.0.0 producing a <see cref="TomlDocumentSyntax"/>. It stops at
/// the first syntax error; the semantic rules (no key or table defined twice) are checked by
/// <see cref="TomlDocumentBuilder"/>. Recursion is bounded by <see cref="TomlParserOptions.MaxDepth"/>.
/// </summary>
public sealed class TomlParser
{
    private readonly string _s;
    private readonly int _n;
    private readonly SourceText _source;
    private readonly TomlParserOptions _options;
    private readonly StringBuilder _sb = new();
    private int _p;

    private TomlParser(SourceText source, int start, TomlParserOptions options)
    {
        _source = source;
        _s = source.Text;
        _n = _s.Length;
        _p = start;
        _options = options;
    }

    /// <summary>
    /// Parses UTF-8 bytes. Invalid UTF-8 is an error at the offending byte; a leading byte order
    /// mark is skipped.
    /// </summary>
    public static TomlDocumentSyntax ParseSyntax(ReadOnlySpan<byte> utf8, TomlParserOptions? options = null)
    {
        var bom = utf8.StartsWith("\uFEFF"u8);
        var body = bom ? utf8[3..] : utf8;
        var invalidAt = Utf8Validation.FindInvalid(body);
        if (invalidAt >= 0)
        {
            // Report the position of the bad byte in terms of the valid text before it.
            var before = Encoding.UTF8.GetString(body[..invalidAt]);
            var position = new SourceText(before).GetPosition(before.Length);
            throw new TomlException(new TomlError(position, $"invalid UTF-8: the sequence starting with byte 0x{body[invalidAt]:X2} at byte offset {invalidAt + (bom ? 3 : 0)} is not valid UTF-8"));
        }
        return ParseSyntax(Encoding.UTF8.GetString(body), options, bom);
    }

    /// <summary>
    /// Parses a string (already decoded). A lone surrogate is an error at its position: such a string
    /// is not Unicode text, so it cannot be a TOML document.
    /// </summary>
    public static TomlDocumentSyntax ParseSyntax(string text, TomlParserOptions? options = null)
    {
        var bom = text.StartsWith('\uFEFF');
        var body = bom ? text[1..] : text;
        var loneAt = FindLoneSurrogate(body);
        if (loneAt >= 0)
        {
            var position = new SourceText(body).GetPosition(loneAt);
            throw new TomlException(new TomlError(position, $"invalid UTF-16: U+{(int)body[loneAt]:X4} is a lone surrogate, not a Unicode scalar value"));
        }
        return ParseSyntax(body, options, bom);
    }

    private static int FindLoneSurrogate(ReadOnlySpan<char> text)
    {
        var i = text.IndexOfAnyInRange('\uD800', '\uDFFF');
        while (i >= 0)
        {
            if (!(char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])))
            {
                return i;
            }
            i += 2;
            var next = text[i..].IndexOfAnyInRange('\uD800', '\uDFFF');
            i = next < 0 ? -1 : i + next;
        }
        return -1;
    }

    private static TomlDocumentSyntax ParseSyntax(string text, TomlParserOptions? options, bool bom)
    {
        var parser = new TomlParser(new SourceText(text), 0, options ?? TomlParserOptions.Default);
        return parser.ParseDocument(bom);
    }

    private TomlDocumentSyntax ParseDocument(bool bom)
    {
        var items = new List<TomlItemSyntax>();
        var trivia = new List<TomlTriviaSyntax>();
        var headerDepth = 0;
        while (true)
        {
            SkipWhitespace();
            if (_p >= _n)
            {
                break;
            }
            var c = _s[_p];
            var lineStart = _p;
            if (c == '#')
            {
                var comment = ParseComment();
                ExpectLineEnd("comment");
                trivia.Add(new TomlTriviaSyntax { Start = comment.Start, End = comment.End, Comment = comment });
                continue;
            }
            if (c is '\n' or '\r')
            {
                ConsumeNewline();
                trivia.Add(new TomlTriviaSyntax { Start = lineStart, End = lineStart });
                continue;
            }

            TomlItemSyntax item;
            if (c == '[')
            {
                var header = ParseTableHeader();
                headerDepth = header.Key.Parts.Count;
                item = header;
            }
            else
            {
                item = ParseKeyValue(headerDepth);
            }
            SkipWhitespace();
            if (_p < _n && _s[_p] == '#')
            {
                item.TrailingComment = ParseComment();
            }
            ExpectLineEnd(item is TomlTableHeaderSyntax ? "table header" : "value");
            item.LeadingTrivia = trivia;
            trivia = [];
            items.Add(item);
        }
        return new TomlDocumentSyntax { Source = _source, Items = items, EndTrivia = trivia, HadByteOrderMark = bom };
    }

    // ---- lines, whitespace, comments ---------------------------------------------------------

    private const string LoneCarriageReturn = "carriage return (U+000D) must be followed by a line feed: a lone CR is not a line ending in TOML";

    /// <summary>True at LF or CRLF: a lone CR is not a line ending in TOML.</summary>
    private bool IsNewline(int p) => p < _n && (_s[p] == '\n' || (_s[p] == '\r' && p + 1 < _n && _s[p + 1] == '\n'));

    private void SkipWhitespace()
    {
        while (_p < _n && _s[_p] is ' ' or '\t')
        {
            _p++;
        }
    }

    private void ConsumeNewline()
    {
        if (_s[_p] == '\n')
        {
            _p++;
            return;
        }
        // _s[_p] == '\r'
        if (_p + 1 < _n && _s[_p + 1] == '\n')
        {
            _p += 2;
            return;
        }
        throw Error(_p, LoneCarriageReturn);
    }

    private void ExpectLineEnd(string after)
    {
        if (_p >= _n)
        {
            return;
        }
        var c = _s[_p];
        if (c is '\n' or '\r')
        {
            ConsumeNewline();
            return;
        }
        throw Error(_p, $"expected the end of the line after the {after}, found {Describe(_p)}");
    }

    private TomlCommentSyntax ParseComment()
    {
        var start = _p;
        _p++; // '#'
        while (_p < _n)
        {
            var c = _s[_p];
            if (c == '\n' || (c == '\r' && _p + 1 < _n && _s[_p + 1] == '\n'))
            {
                break;
            }
            if (IsForbiddenControl(c) || c == '\r')
            {
                throw Error(_p, $"control character {Describe(_p)} is not allowed in a comment");
            }
            _p++;
        }
        var text = _s.AsSpan(start + 1, _p - start - 1).TrimEnd(" \t").ToString();
        return new TomlCommentSyntax { Start = start, End = _p, Text = text };
    }

    // ---- headers and keys ----------------------------------------------------------------------

    private TomlTableHeaderSyntax ParseTableHeader()
    {
        var start = _p;
        _p++; // '['
        var isArray = _p < _n && _s[_p] == '[';
        if (isArray)
        {
            _p++;
        }
        SkipWhitespace();
        var key = ParseKey(0, isArray ? "array-of-tables header" : "table header");
        SkipWhitespace();
        if (_p >= _n || _s[_p] != ']')
        {
            throw Error(_p, $"expected ']' to close the table header [{key.DottedName}], found {Describe(_p)}");
        }
        _p++;
        if (isArray)
        {
            if (_p >= _n || _s[_p] != ']')
            {
                throw Error(_p, $"expected ']]' to close the array-of-tables header [[{key.DottedName}]], found {Describe(_p)}");
            }
            _p++;
        }
        return new TomlTableHeaderSyntax { Start = start, End = _p, Key = key, IsArrayOfTables = isArray };
    }

    private TomlKeySyntax ParseKey(int depth, string context)
    {
        var start = _p;
        var parts = new List<TomlKeyPartSyntax>();
        while (true)
        {
            parts.Add(ParseKeyPart(context));
            if (depth + parts.Count > _options.MaxDepth)
            {
                throw Error(start, $"key nests deeper than {_options.MaxDepth} levels");
            }
            var save = _p;
            SkipWhitespace();
            if (_p < _n && _s[_p] == '.')
            {
                _p++;
                SkipWhitespace();
                continue;
            }
            _p = save;
            break;
        }
        return new TomlKeySyntax { Start = start, End = _p, Parts = parts };
    }

    private TomlKeyPartSyntax ParseKeyPart(string context)
    {
        var start = _p;
        if (_p >= _n)
        {
            throw Error(_p, $"expected a key in the {context}, found the end of the document");
        }
        var c = _s[_p];
        if (c == '"' || c == '\'')
        {
            if (_p + 2 < _n && _s[_p + 1] == c && _s[_p + 2] == c)
            {
                throw Error(_p, "a multi-line string cannot be a key");
            }
            var name = c == '"' ? ParseBasicString() : ParseLiteralString();
            return new TomlKeyPartSyntax
            {
                Start = start,
                End = _p,
                Name = name,
                Style = c == '"' ? TomlKeyStyle.Basic : TomlKeyStyle.Literal,
            };
        }
        while (_p < _n && TomlKeys.IsBareChar(_s[_p]))
        {
            _p++;
        }
        if (_p == start)
        {
            var what = c switch
            {
                '=' => "a key is missing before '='",
                '.' => "a key part is missing before '.'",
                ']' => $"the {context} has an empty key",
                '\n' or '\r' when IsNewline(_p) => $"expected a key in the {context}, found the end of the line",
                _ => $"expected a key in the {context}, found {Describe(_p)} (bare keys may hold only A-Z a-z 0-9 _ -; quote other names)",
            };
            throw Error(_p, what);
        }
        return new TomlKeyPartSyntax { Start = start, End = _p, Name = _s[start.._p], Style = TomlKeyStyle.Bare };
    }

    private TomlKeyValueSyntax ParseKeyValue(int depth)
    {
        var start = _p;
        var key = ParseKey(depth, "key/value pair");
        SkipWhitespace();
        if (_p >= _n || _s[_p] != '=')
        {
            var found = _p >= _n || IsNewline(_p) ? "the end of the line" : Describe(_p);
            throw Error(_p, $"expected '=' after the key {key.DottedName}, found {found}");
        }
        _p++;
        SkipWhitespace();
        var value = ParseValue(depth + key.Parts.Count, key);
        return new TomlKeyValueSyntax { Start = start, End = _p, Key = key, Value = value };
    }

    // ---- values ---------------------------------------------------------------------------------

    private TomlValueSyntax ParseValue(int depth, TomlKeySyntax key)
    {
        if (depth > _options.MaxDepth)
        {
            throw Error(_p, $"value nests deeper than {_options.MaxDepth} levels");
        }
        if (_p >= _n || _s[_p] == '#' || IsNewline(_p))
        {
            throw Error(_p, $"the key {key.DottedName} has no value after '='");
        }
        var start = _p;
        var c = _s[_p];
        switch (c)
        {
            case '"':
                if (_p + 2 < _n && _s[_p + 1] == '"' && _s[_p + 2] == '"')
                {
                    return Scalar(start, new TomlString(ParseMultilineBasicString(), Pos(start)), TomlStringStyle.MultilineBasic);
                }
                return Scalar(start, new TomlString(ParseBasicString(), Pos(start)), TomlStringStyle.Basic);
            case '\'':
                if (_p + 2 < _n && _s[_p + 1] == '\'' && _s[_p + 2] == '\'')
                {
                    return Scalar(start, new TomlString(ParseMultilineLiteralString(), Pos(start)), TomlStringStyle.MultilineLiteral);
                }
                return Scalar(start, new TomlString(ParseLiteralString(), Pos(start)), TomlStringStyle.Literal);
            case '[':
                return ParseArray(depth + 1, key);
            case '{':
                return ParseInlineTable(depth + 1);
        }
        if (IsDigit(c) && LooksLikeDate(_p))
        {
            return Scalar(start, new TomlDateTimeValue(ParseDateTime(), Pos(start)));
        }
        if (IsDigit(c) && LooksLikeTime(_p))
        {
            var time = ParseTime(_p, out var end);
            _p = end;
            ExpectValueEnd(start, "local time");
            return Scalar(start, new TomlDateTimeValue(time, Pos(start)));
        }
        return Scalar(start, ParseWord(start));
    }

    private TomlScalarSyntax Scalar(int start, TomlValue value, TomlStringStyle style = TomlStringStyle.Basic) =>
        new() { Start = start, End = _p, Value = value, StringStyle = style };

    private TomlArraySyntax ParseArray(int depth, TomlKeySyntax key)
    {
        var start = _p;
        _p++; // '['
        var elements = new List<TomlArrayElementSyntax>();
        var pending = new List<TomlCommentSyntax>();
        while (true)
        {
            SkipArrayTrivia(pending);
            if (_p >= _n)
            {
                throw Error(start, $"the array of key {key.DottedName} is not closed: expected ']'");
            }
            if (_s[_p] == ']')
            {
                _p++;
                return new TomlArraySyntax { Start = start, End = _p, Elements = elements, ClosingComments = pending };
            }
            if (_s[_p] == ',')
            {
                throw Error(_p, elements.Count == 0 ? "an array cannot start with ','" : "expected a value between two commas in the array");
            }
            var elementStart = _p;
            var value = ParseValue(depth, key);
            var element = new TomlArrayElementSyntax { Start = elementStart, End = _p, LeadingComments = pending, Value = value };
            pending = [];
            elements.Add(element);
            SkipWhitespace();
            if (_p < _n && _s[_p] == '#')
            {
                element.TrailingComment = ParseComment();
            }
            SkipArrayTrivia(pending);
            if (_p < _n && _s[_p] == ',')
            {
                _p++;
                SkipWhitespace();
                if (_p < _n && _s[_p] == '#' && element.TrailingComment is null)
                {
                    element.TrailingComment = ParseComment();
                }
                continue;
            }
            if (_p < _n && _s[_p] == ']')
            {
                continue; // closed at the top of the loop
            }
            if (_p >= _n)
            {
                throw Error(start, $"the array of key {key.DottedName} is not closed: expected ']'");
            }
            throw Error(_p, $"expected ',' or ']' after an array element, found {Describe(_p)}");
        }
    }

    private void SkipArrayTrivia(List<TomlCommentSyntax> comments)
    {
        while (_p < _n)
        {
            var c = _s[_p];
            if (c is ' ' or '\t')
            {
                _p++;
            }
            else if (c is '\n' or '\r')
            {
                ConsumeNewline();
            }
            else if (c == '#')
            {
                comments.Add(ParseComment());
            }
            else
            {
                return;
            }
        }
    }

    private TomlInlineTableSyntax ParseInlineTable(int depth)
    {
        var start = _p;
        _p++; // '{'
        var entries = new List<TomlKeyValueSyntax>();
        SkipWhitespace();
        if (_p < _n && _s[_p] == '}')
        {
            _p++;
            return new TomlInlineTableSyntax { Start = start, End = _p, Entries = entries };
        }
        while (true)
        {
            if (_p >= _n)
            {
                throw Error(start, "the inline table is not closed: expected '}'");
            }
            if (IsNewline(_p))
            {
                throw Error(_p, "an inline table must stay on one line (TOML 1.0): found a line break before '}'");
            }
            if (_s[_p] == ',')
            {
                throw Error(_p, "expected a key/value pair in the inline table, found ','");
            }
            entries.Add(ParseKeyValue(depth));
            SkipWhitespace();
            if (_p >= _n)
            {
                throw Error(start, "the inline table is not closed: expected '}'");
            }
            var c = _s[_p];
            if (c == ',')
            {
                _p++;
                SkipWhitespace();
                if (_p < _n && _s[_p] == '}')
                {
                    throw Error(_p, "a trailing comma is not allowed in an inline table");
                }
                continue;
            }
            if (c == '}')
            {
                _p++;
                return new TomlInlineTableSyntax { Start = start, End = _p, Entries = entries };
            }
            if (IsNewline(_p))
            {
                throw Error(_p, "an inline table must stay on one line (TOML 1.0): found a line break before '}'");
            }
            throw Error(_p, $"expected ',' or '}}' in the inline table, found {Describe(_p)}");
        }
    }

    // ---- strings --------------------------------------------------------------------------------

    private string ParseBasicString()
    {
        var start = _p;
        _p++; // '"'
        _sb.Clear();
        while (true)
        {
            if (_p >= _n)
            {
                throw Error(start, "the string is not closed: expected '\"'");
            }
            var c = _s[_p];
            if (c == '"')
            {
                _p++;
                return _sb.ToString();
            }
            if (c == '\\')
            {
                ParseEscape(multiline: false);
                continue;
            }
            if (c == '\r' && !IsNewline(_p))
            {
                throw Error(_p, LoneCarriageReturn);
            }
            if (c is '\n' or '\r')
            {
                throw Error(start, "the string is not closed before the end of the line (use \"\"\" for multi-line strings)");
            }
            if (IsForbiddenControl(c))
            {
                throw Error(_p, $"control character {Describe(_p)} must be escaped in a string");
            }
            _sb.Append(c);
            _p++;
        }
    }

    private string ParseMultilineBasicString()
    {
        var start = _p;
        _p += 3;
        SkipNewlineAfterOpeningDelimiter();
        _sb.Clear();
        while (true)
        {
            if (_p >= _n)
            {
                throw Error(start, "the multi-line string is not closed: expected '\"\"\"'");
            }
            var c = _s[_p];
            if (c == '"')
            {
                if (CloseMultiline('"'))
                {
                    return _sb.ToString();
                }
                continue;
            }
            if (c == '\\')
            {
                ParseEscape(multiline: true);
                continue;
            }
            if (AppendNewlineOrCheckControl(c))
            {
                continue;
            }
            _sb.Append(c);
            _p++;
        }
    }

    private string ParseLiteralString()
    {
        var start = _p;
        _p++; // '\''
        while (true)
        {
            if (_p >= _n)
            {
                throw Error(start, "the literal string is not closed: expected \"'\"");
            }
            var c = _s[_p];
            if (c == '\'')
            {
                var value = _s[(start + 1).._p];
                _p++;
                return value;
            }
            if (c == '\r' && !IsNewline(_p))
            {
                throw Error(_p, LoneCarriageReturn);
            }
            if (c is '\n' or '\r')
            {
                throw Error(start, "the literal string is not closed before the end of the line (use ''' for multi-line strings)");
            }
            if (IsForbiddenControl(c))
            {
                throw Error(_p, $"control character {Describe(_p)} is not allowed in a literal string");
            }
            _p++;
        }
    }

    private string ParseMultilineLiteralString()
    {
        var start = _p;
        _p += 3;
        SkipNewlineAfterOpeningDelimiter();
        _sb.Clear();
        while (true)
        {
            if (_p >= _n)
            {
                throw Error(start, "the multi-line literal string is not closed: expected \"'''\"");
            }
            var c = _s[_p];
            if (c == '\'')
            {
                if (CloseMultiline('\''))
                {
                    return _sb.ToString();
                }
                continue;
            }
            if (AppendNewlineOrCheckControl(c))
            {
                continue;
            }
            _sb.Append(c);
            _p++;
        }
    }

    private void SkipNewlineAfterOpeningDelimiter()
    {
        if (_p < _n && _s[_p] == '\n')
        {
            _p++;
        }
        else if (_p + 1 < _n && _s[_p] == '\r' && _s[_p + 1] == '\n')
        {
            _p += 2;
        }
    }

    /// <summary>
    /// At a run of quote characters inside a multi-line string: 1-2 are content, 3-5 close the string
    /// (the first 0-2 being content), 6 or more are an error.
    /// </summary>
    private bool CloseMultiline(char quote)
    {
        var run = 0;
        while (_p + run < _n && _s[_p + run] == quote)
        {
            run++;
        }
        if (run < 3)
        {
            _sb.Append(quote, run);
            _p += run;
            return false;
        }
        if (run > 5)
        {
            throw Error(_p, $"too many quotes: {run} {quote} characters in a row in a multi-line string (at most 2 may be content)");
        }
        _sb.Append(quote, run - 3);
        _p += run;
        return true;
    }

    /// <summary>Handles a line ending or rejects a control character; true when it consumed something.</summary>
    private bool AppendNewlineOrCheckControl(char c)
    {
        if (c == '\n')
        {
            _sb.Append('\n');
            _p++;
            return true;
        }
        if (c == '\r')
        {
            if (_p + 1 < _n && _s[_p + 1] == '\n')
            {
                // Line endings inside strings are normalised to LF, so a value does not depend on
                // how the file was checked out.
                _sb.Append('\n');
                _p += 2;
                return true;
            }
            throw Error(_p, LoneCarriageReturn);
        }
        if (IsForbiddenControl(c))
        {
            throw Error(_p, $"control character {Describe(_p)} must be escaped in a string");
        }
        return false;
    }

    private void ParseEscape(bool multiline)
    {
        var start = _p;
        _p++; // '\\'
        if (_p >= _n)
        {
            throw Error(start, "the string ends in the middle of an escape sequence");
        }
        var c = _s[_p];
        switch (c)
        {
            case 'b': _sb.Append('\b'); _p++; return;
            case 't': _sb.Append('\t'); _p++; return;
            case 'n': _sb.Append('\n'); _p++; return;
            case 'f': _sb.Append('\f'); _p++; return;
            case 'r': _sb.Append('\r'); _p++; return;
            case '"': _sb.Append('"'); _p++; return;
            case '\\': _sb.Append('\\'); _p++; return;
            case 'u': AppendUnicodeEscape(start, 4); return;
            case 'U': AppendUnicodeEscape(start, 8); return;
        }
        if (multiline && c is ' ' or '\t' or '\n' or '\r')
        {
            // Line-ending backslash: only whitespace may follow it on its line; then every
            // whitespace and newline up to the next other character is removed.
            SkipWhitespace();
            if (_p >= _n || _s[_p] is not ('\n' or '\r'))
            {
                throw Error(start, "a backslash followed by whitespace must be the last thing on its line");
            }
            while (_p < _n)
            {
                var d = _s[_p];
                if (d is ' ' or '\t')
                {
                    _p++;
                }
                else if (d is '\n' or '\r')
                {
                    ConsumeNewline();
                }
                else
                {
                    break;
                }
            }
            return;
        }
        throw Error(start, $"invalid escape sequence '\\{(char.IsControl(c) || char.IsSurrogate(c) ? "" : c.ToString())}' ({Describe(_p)}); valid escapes are \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX");
    }

    private void AppendUnicodeEscape(int start, int digits)
    {
        _p++; // 'u' or 'U'
        if (_p + digits > _n)
        {
            throw Error(start, $"the \\{(digits == 4 ? 'u' : 'U')} escape needs {digits} hex digits");
        }
        var value = 0L;
        for (var i = 0; i < digits; i++)
        {
            var d = HexValue(_s[_p + i]);
            if (d < 0)
            {
                throw Error(_p + i, $"the \\{(digits == 4 ? 'u' : 'U')} escape needs {digits} hex digits, found {Describe(_p + i)}");
            }
            value = (value * 16) + d;
        }
        if (value > 0x10FFFF || value is >= 0xD800 and <= 0xDFFF)
        {
            throw Error(start, $"the escape \\{_s.AsSpan(_p - 1, digits + 1)} is not a Unicode scalar value (surrogates and values above 10FFFF are not allowed)");
        }
        _sb.Append(char.ConvertFromUtf32((int)value));
        _p += digits;
    }

    // ---- numbers, booleans, special floats --------------------------------------------------------

    private TomlValue ParseWord(int start)
    {
        var end = start;
        while (end < _n && !IsValueTerminator(_s[end]))
        {
            end++;
        }
        var token = _s.AsSpan(start, end - start);
        if (token.Length == 0)
        {
            throw Error(start, $"expected a value, found {Describe(start)}");
        }
        var position = Pos(start);
        TomlValue value;
        switch (token)
        {
            case "true":
                value = new TomlBoolean(true, position);
                break;
            case "false":
                value = new TomlBoolean(false, position);
                break;
            case "inf" or "+inf":
                value = new TomlFloat(double.PositiveInfinity, position);
                break;
            case "-inf":
                value = new TomlFloat(double.NegativeInfinity, position);
                break;
            case "nan" or "+nan":
                value = new TomlFloat(double.NaN, position);
                break;
            case "-nan":
                value = new TomlFloat(-double.NaN, position);
                break;
            default:
                value = ParseNumber(start, token, position);
                break;
        }
        _p = end;
        return value;
    }

    private TomlValue ParseNumber(int start, ReadOnlySpan<char> token, TomlPosition position)
    {
        var c = token[0];
        if (!IsDigit(c) && c is not ('+' or '-'))
        {
            var shown = Shorten(token);
            throw Error(start, c is >= 'a' and <= 'z' or >= 'A' and <= 'Z'
                ? $"invalid value '{shown}': strings must be quoted, booleans are lower-case true/false"
                : $"expected a value, found {Describe(start)}");
        }
        if (token.Length > 2 && token[0] == '0' && token[1] is 'x' or 'o' or 'b')
        {
            return new TomlInteger(ParseRadixInteger(start, token), position);
        }
        if (token.IndexOfAny('.', 'e', 'E') >= 0)
        {
            return new TomlFloat(ParseFloat(start, token), position);
        }
        return new TomlInteger(ParseDecimalInteger(start, token), position);
    }

    private long ParseDecimalInteger(int start, ReadOnlySpan<char> token)
    {
        var i = 0;
        var negative = false;
        if (token[0] is '+' or '-')
        {
            negative = token[0] == '-';
            i = 1;
        }
        var digitsStart = i;
        var end = ScanDigits(start, token, i, IsDigit, "integer");
        if (end != token.Length)
        {
            throw Error(start + end, $"invalid integer '{Shorten(token)}': unexpected {Describe(start + end)}");
        }
        if (token[digitsStart] == '0' && end - digitsStart > 1)
        {
            throw Error(start, $"invalid integer '{Shorten(token)}': leading zeros are not allowed");
        }
        ulong magnitude = 0;
        for (var j = digitsStart; j < end; j++)
        {
            if (token[j] == '_')
            {
                continue;
            }
            var d = (ulong)(token[j] - '0');
            if (magnitude > (ulong.MaxValue - d) / 10)
            {
                throw OutOfRange(start, token);
            }
            magnitude = (magnitude * 10) + d;
        }
        var limit = negative ? 9223372036854775808UL : long.MaxValue;
        if (magnitude > limit)
        {
            throw OutOfRange(start, token);
        }
        return negative ? (long)(0UL - magnitude) : (long)magnitude;
    }

    private long ParseRadixInteger(int start, ReadOnlySpan<char> token)
    {
        var (bits, name) = token[1] switch
        {
            'x' => (4, "hexadecimal"),
            'o' => (3, "octal"),
            _ => (1, "binary"),
        };
        Func<char, bool> isDigit = bits switch
        {
            4 => ch => HexValue(ch) >= 0,
            3 => ch => ch is >= '0' and <= '7',
            _ => ch => ch is '0' or '1',
        };
        var end = ScanDigits(start, token, 2, isDigit, name + " integer");
        if (end != token.Length)
        {
            throw Error(start + end, $"invalid {name} integer '{Shorten(token)}': unexpected {Describe(start + end)}");
        }
        ulong value = 0;
        for (var j = 2; j < end; j++)
        {
            if (token[j] == '_')
            {
                continue;
            }
            if (value >> (64 - bits) != 0)
            {
                throw OutOfRange(start, token);
            }
            value = (value << bits) | (uint)HexValue(token[j]);
        }
        if (value > long.MaxValue)
        {
            throw OutOfRange(start, token);
        }
        return (long)value;
    }

    private double ParseFloat(int start, ReadOnlySpan<char> token)
    {
        var i = token[0] is '+' or '-' ? 1 : 0;
        var intStart = i;
        i = ScanDigits(start, token, i, IsDigit, "float");
        if (token[intStart] == '0' && i - intStart > 1)
        {
            throw Error(start, $"invalid float '{Shorten(token)}': leading zeros are not allowed");
        }
        if (i < token.Length && token[i] == '.')
        {
            i++;
            if (i >= token.Length || !IsDigit(token[i]))
            {
                throw Error(start + i, $"invalid float '{Shorten(token)}': a digit must follow the decimal point");
            }
            i = ScanDigits(start, token, i, IsDigit, "float");
        }
        if (i < token.Length && token[i] is 'e' or 'E')
        {
            i++;
            if (i < token.Length && token[i] is '+' or '-')
            {
                i++;
            }
            if (i >= token.Length || !IsDigit(token[i]))
            {
                throw Error(start + Math.Min(i, token.Length), $"invalid float '{Shorten(token)}': the exponent needs digits");
            }
            i = ScanDigits(start, token, i, IsDigit, "float");
        }
        if (i != token.Length)
        {
            throw Error(start + i, $"invalid float '{Shorten(token)}': unexpected {Describe(start + i)}");
        }
        Span<char> buffer = token.Length <= 256 ? stackalloc char[token.Length] : new char[token.Length];
        var length = 0;
        foreach (var ch in token)
        {
            if (ch != '_')
            {
                buffer[length++] = ch;
            }
        }
        var value = double.Parse(buffer[..length], NumberStyles.Float, CultureInfo.InvariantCulture);
        if (double.IsInfinity(value))
        {
            throw Error(start, $"float '{Shorten(token)}' is out of the range of a 64-bit float");
        }
        return value;
    }

    /// <summary>
    /// Scans digits with single underscores between them (each underscore must have a digit on both
    /// sides). Returns the index after the last digit. At least one digit is required.
    /// </summary>
    private int ScanDigits(int start, ReadOnlySpan<char> token, int i, Func<char, bool> isDigit, string what)
    {
        if (i >= token.Length || !isDigit(token[i]))
        {
            var at = start + Math.Min(i, token.Length);
            throw Error(at, i < token.Length && token[i] == '_'
                ? $"invalid {what} '{Shorten(token)}': an underscore must be between two digits"
                : $"invalid {what} '{Shorten(token)}': expected a digit, found {Describe(at)}");
        }
        i++;
        while (i < token.Length)
        {
            if (isDigit(token[i]))
            {
                i++;
            }
            else if (token[i] == '_')
            {
                if (i + 1 >= token.Length || !isDigit(token[i + 1]))
                {
                    throw Error(start + i, $"invalid {what} '{Shorten(token)}': an underscore must be between two digits");
                }
                i++;
            }
            else
            {
                break;
            }
        }
        return i;
    }

    private TomlException OutOfRange(int start, ReadOnlySpan<char> token) =>
        Error(start, $"integer '{Shorten(token)}' is out of the 64-bit range (-9223372036854775808 to 9223372036854775807)");

    // ---- dates and times ----------------------------------------------------------------------

    private bool LooksLikeDate(int p) =>
        p + 4 < _n && IsDigit(_s[p + 1]) && IsDigit(_s[p + 2]) && IsDigit(_s[p + 3]) && _s[p + 4] == '-';

    private bool LooksLikeTime(int p) => p + 2 < _n && IsDigit(_s[p + 1]) && _s[p + 2] == ':';

    private TomlDateTime ParseDateTime()
    {
        var start = _p;
        // full-date = 4DIGIT "-" 2DIGIT "-" 2DIGIT
        if (!(Digits(start, 4) && At(start + 4, '-') && Digits(start + 5, 2) && At(start + 7, '-') && Digits(start + 8, 2)))
        {
            throw Error(start, $"invalid date '{Token(start)}': expected YYYY-MM-DD");
        }
        var year = Number(start, 4);
        var month = Number(start + 5, 2);
        var day = Number(start + 8, 2);
        if (month is < 1 or > 12)
        {
            throw Error(start + 5, $"invalid date '{Token(start)}': month {month:D2} is not 01-12");
        }
        if (day < 1 || day > TomlDateTime.DaysInMonth(year, month))
        {
            throw Error(start + 8, $"invalid date '{Token(start)}': day {day:D2} does not exist in {year:D4}-{month:D2}");
        }
        var p = start + 10;
        var date = new TomlDateTime { Kind = TomlDateTimeKind.LocalDate, Year = year, Month = month, Day = day };

        var hasTime = p < _n && (_s[p] is 'T' or 't' || (_s[p] == ' ' && p + 3 < _n && IsDigit(_s[p + 1]) && IsDigit(_s[p + 2]) && _s[p + 3] == ':'));
        if (!hasTime)
        {
            _p = p;
            ExpectValueEnd(start, "date");
            return date;
        }
        var time = ParseTime(p + 1, out p);
        var result = date with
        {
            Kind = TomlDateTimeKind.LocalDateTime,
            Hour = time.Hour,
            Minute = time.Minute,
            Second = time.Second,
            Nanosecond = time.Nanosecond,
            FractionDigits = time.FractionDigits,
        };
        if (p < _n && _s[p] is 'Z' or 'z')
        {
            result = result with { Kind = TomlDateTimeKind.OffsetDateTime, IsZulu = true };
            p++;
        }
        else if (p < _n && _s[p] is '+' or '-')
        {
            if (!(Digits(p + 1, 2) && At(p + 3, ':') && Digits(p + 4, 2)))
            {
                throw Error(p, $"invalid offset in date-time '{Token(start)}': expected +HH:MM or -HH:MM");
            }
            var hours = Number(p + 1, 2);
            var minutes = Number(p + 4, 2);
            if (hours > 23 || minutes > 59)
            {
                throw Error(p, $"invalid offset in date-time '{Token(start)}': {_s.AsSpan(p, 6)} is out of range");
            }
            var offset = (hours * 60) + minutes;
            result = result with { Kind = TomlDateTimeKind.OffsetDateTime, OffsetMinutes = _s[p] == '-' ? -offset : offset };
            p += 6;
        }
        _p = p;
        ExpectValueEnd(start, "date-time");
        return result;
    }

    /// <summary>partial-time = HH:MM:SS [.fraction]; seconds are required in TOML 1.0.</summary>
    private TomlDateTime ParseTime(int p, out int end)
    {
        if (!(Digits(p, 2) && At(p + 2, ':') && Digits(p + 3, 2) && At(p + 5, ':') && Digits(p + 6, 2)))
        {
            throw Error(p, $"invalid time '{Token(p)}': expected HH:MM:SS (seconds are required)");
        }
        var hour = Number(p, 2);
        var minute = Number(p + 3, 2);
        var second = Number(p + 6, 2);
        if (hour > 23)
        {
            throw Error(p, $"invalid time '{Token(p)}': hour {hour:D2} is not 00-23");
        }
        if (minute > 59)
        {
            throw Error(p + 3, $"invalid time '{Token(p)}': minute {minute:D2} is not 00-59");
        }
        if (second > 60)
        {
            throw Error(p + 6, $"invalid time '{Token(p)}': second {second:D2} is not 00-60");
        }
        var q = p + 8;
        int nanos = 0, digits = 0;
        if (q < _n && _s[q] == '.')
        {
            q++;
            if (q >= _n || !IsDigit(_s[q]))
            {
                throw Error(q, $"invalid time '{Token(p)}': a digit must follow the decimal point");
            }
            while (q < _n && IsDigit(_s[q]))
            {
                if (digits < 9)
                {
                    nanos = (nanos * 10) + (_s[q] - '0');
                    digits++;
                }
                q++;
            }
            for (var k = digits; k < 9; k++)
            {
                nanos *= 10;
            }
        }
        end = q;
        return new TomlDateTime
        {
            Kind = TomlDateTimeKind.LocalTime,
            Hour = hour,
            Minute = minute,
            Second = second,
            Nanosecond = nanos,
            FractionDigits = digits,
        };
    }

    private void ExpectValueEnd(int start, string what)
    {
        if (_p < _n && !IsValueTerminator(_s[_p]))
        {
            throw Error(_p, $"invalid {what} '{Token(start)}': unexpected {Describe(_p)}");
        }
    }

    private bool Digits(int p, int count)
    {
        if (p + count > _n)
        {
            return false;
        }
        for (var i = 0; i < count; i++)
        {
            if (!IsDigit(_s[p + i]))
            {
                return false;
            }
        }
        return true;
    }

    private bool At(int p, char c) => p < _n && _s[p] == c;

    private int Number(int p, int count)
    {
        var v = 0;
        for (var i = 0; i < count; i++)
        {
            v = (v * 10) + (_s[p + i] - '0');
        }
        return v;
    }

    private string Token(int start)
    {
        var end = start;
        while (end < _n && end - start < 40)
        {
            var c = _s[end];
            var isDateTimeSpace = c == ' ' && end - start == 10 && end + 1 < _n && IsDigit(_s[end + 1]);
            if (IsValueTerminator(c) && !isDateTimeSpace)
            {
                break;
            }
            end++;
        }
        return TomlKeys.Printable(_s.AsSpan(start, end - start), 40);
    }

    // ---- characters and errors -----------------------------------------------------------------

    private static bool IsDigit(char c) => c is >= '0' and <= '9';

    private static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    /// <summary>Characters a value can be followed by.</summary>
    private static bool IsValueTerminator(char c) => c is ' ' or '\t' or '\n' or '\r' or ',' or ']' or '}' or '#';

    /// <summary>Control characters TOML allows nowhere unescaped (tab is allowed; line ends are handled apart).</summary>
    private static bool IsForbiddenControl(char c) => (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F;

    private static string Shorten(ReadOnlySpan<char> token) => TomlKeys.Printable(token, 40);

    private string Describe(int p)
    {
        if (p >= _n)
        {
            return "the end of the document";
        }
        var c = _s[p];
        if (IsNewline(p))
        {
            return "the end of the line";
        }
        if (char.IsHighSurrogate(c) && p + 1 < _n && char.IsLowSurrogate(_s[p + 1]))
        {
            return $"'{_s.AsSpan(p, 2)}' (U+{char.ConvertToUtf32(c, _s[p + 1]):X4})";
        }
        if (char.IsControl(c) || char.IsSurrogate(c) || char.IsWhiteSpace(c) && c != ' ')
        {
            return $"U+{(int)c:X4}";
        }
        return c > 0x7F ? $"'{c}' (U+{(int)c:X4})" : $"'{c}'";
    }

    private TomlPosition Pos(int offset) => _source.GetPosition(offset);

    private TomlException Error(int offset, string message) => new(new TomlError(Pos(offset), message));
}

/// <summary>Finds the first byte of an invalid UTF-8 sequence (overlongs, surrogates and values above U+10FFFF are invalid).</summary>
public static class Utf8Validation
{
    /// <summary>The offset of the first invalid byte, or -1 when the whole span is valid UTF-8.</summary>
    public static int FindInvalid(ReadOnlySpan<byte> bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes))
        {
            return -1;
        }
        var offset = 0;
        while (offset < bytes.Length)
        {
            var status = System.Text.Rune.DecodeFromUtf8(bytes[offset..], out _, out var consumed);
            if (status != System.Buffers.OperationStatus.Done)
            {
                return offset;
            }
            offset += consumed;
        }
        return -1;
    }
}
