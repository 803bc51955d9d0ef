using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Trc.Agent.Tests.Firecracker;

/// <summary>
/// A test-only YAML reader, just enough for Firecracker's swagger file (and kept honest by its
/// own tests): block mappings and sequences (including a sequence at its key's indentation and
/// "- key: value" items), plain scalars over several lines, single- and double-quoted scalars,
/// block scalars (<c>|</c> and <c>&gt;</c> with chomping), one-line flow sequences and mappings,
/// and comments. Scalars follow YAML 1.2's core schema (so <c>Off</c> and <c>None</c> are strings).
/// No anchors, aliases, tags or multiple documents. Produces a <see cref="JsonNode"/> tree.
/// </summary>
internal sealed class MiniYaml
{
    private readonly List<string> _lines;
    private int _i;

    private MiniYaml(string text)
    {
        _lines = [.. text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n')];
    }

    public static JsonNode? Parse(string text)
    {
        var reader = new MiniYaml(text);
        var node = reader.ParseNode(-1);
        reader.SkipInsignificant();
        if (reader._i < reader._lines.Count)
        {
            throw reader.Error("content after the document's root node");
        }
        return node;
    }

    private FormatException Error(string what) => new($"YAML line {_i + 1}: {what}");

    private static int IndentOf(string line)
    {
        var n = 0;
        while (n < line.Length && line[n] == ' ')
        {
            n++;
        }
        if (n < line.Length && line[n] == '\t')
        {
            throw new FormatException("tabs are not YAML indentation");
        }
        return n;
    }

    private static bool IsInsignificant(string line)
    {
        var t = line.Trim();
        return t.Length == 0 || t[0] == '#' || t == "---";
    }

    private void SkipInsignificant()
    {
        while (_i < _lines.Count && IsInsignificant(_lines[_i]))
        {
            _i++;
        }
    }

    private static bool IsSequenceItem(string content) => content == "-" || content.StartsWith("- ", StringComparison.Ordinal);

    // The node whose lines are indented more than parentIndent (or a sequence at exactly that
    // indentation: "key:\n- item" is a sequence value for "key").
    private JsonNode? ParseNode(int parentIndent)
    {
        SkipInsignificant();
        if (_i >= _lines.Count)
        {
            return null;
        }
        var indent = IndentOf(_lines[_i]);
        if (indent <= parentIndent)
        {
            return null;
        }
        var content = _lines[_i][indent..];
        if (IsSequenceItem(content))
        {
            return ParseSequence(indent);
        }
        if (TrySplitEntry(content, out _, out _))
        {
            return ParseMapping(indent);
        }
        var text = _lines[_i][indent..];
        _i++;
        return ParseInlineValue(text, parentIndent);
    }

    private JsonArray ParseSequence(int indent)
    {
        var items = new JsonArray();
        while (true)
        {
            SkipInsignificant();
            if (_i >= _lines.Count || IndentOf(_lines[_i]) != indent || !IsSequenceItem(_lines[_i][indent..]))
            {
                return items;
            }
            var afterDash = _lines[_i][(indent + 1)..];
            var rest = afterDash.TrimStart(' ');
            if (rest.Length == 0 || rest[0] == '#')
            {
                _i++;
                items.Add(ParseNode(indent));
                continue;
            }
            // "- key: value" or "- scalar": the item's content becomes a line of its own, at the
            // column where it stands, and is parsed as a node more indented than the dash.
            _lines[_i] = new string(' ', indent + 1 + (afterDash.Length - rest.Length)) + rest;
            items.Add(ParseNode(indent));
        }
    }

    private JsonObject ParseMapping(int indent)
    {
        var map = new JsonObject();
        while (true)
        {
            SkipInsignificant();
            if (_i >= _lines.Count || IndentOf(_lines[_i]) != indent)
            {
                return map;
            }
            var content = _lines[_i][indent..];
            if (IsSequenceItem(content))
            {
                return map;
            }
            if (!TrySplitEntry(content, out var key, out var rest))
            {
                throw Error($"expected 'key: value', found '{content}'");
            }
            if (map.ContainsKey(key))
            {
                throw Error($"duplicate key '{key}'");
            }
            _i++;
            JsonNode? value;
            if (rest.Length == 0)
            {
                SkipInsignificant();
                value = _i < _lines.Count && IndentOf(_lines[_i]) == indent && IsSequenceItem(_lines[_i][indent..])
                    ? ParseSequence(indent)
                    : ParseNode(indent);
            }
            else
            {
                value = ParseInlineValue(rest, indent);
            }
            map[key] = value;
        }
    }

    // "key: rest" (rest without a trailing comment), with a plain or quoted key.
    private static bool TrySplitEntry(string content, out string key, out string rest)
    {
        key = "";
        rest = "";
        int colon;
        if (content.Length > 0 && content[0] is '"' or '\'')
        {
            var end = EndOfQuoted(content, 0);
            if (end < 0)
            {
                return false;
            }
            key = Unquote(content[..(end + 1)]);
            var after = content[(end + 1)..].TrimStart(' ');
            if (!after.StartsWith(':'))
            {
                return false;
            }
            colon = content.Length - after.Length;
        }
        else
        {
            if (content.Length == 0 || content[0] is '[' or '{' or '#' or '|' or '>')
            {
                return false;
            }
            colon = -1;
            for (var j = 0; j < content.Length; j++)
            {
                if (content[j] == '#' && j > 0 && content[j - 1] == ' ')
                {
                    return false;
                }
                if (content[j] == ':' && (j + 1 == content.Length || content[j + 1] == ' '))
                {
                    colon = j;
                    break;
                }
            }
            if (colon <= 0)
            {
                return false;
            }
            key = content[..colon].TrimEnd(' ');
        }
        if (colon + 1 < content.Length && content[colon + 1] != ' ')
        {
            return false;
        }
        // Comments in the value are the value parser's business (a quoted "#" is not one).
        rest = content[(colon + 1)..].Trim(' ');
        if (rest.StartsWith('#'))
        {
            rest = "";
        }
        return true;
    }

    // A value that starts on the current line (already consumed); its continuation lines are
    // those indented more than the owner's indentation.
    private JsonNode? ParseInlineValue(string text, int ownerIndent)
    {
        text = text.Trim(' ');
        if (text.Length == 0)
        {
            return null;
        }
        switch (text[0])
        {
            case '|' or '>':
                return JsonValue.Create(ParseBlockScalar(text, ownerIndent));
            case '"' or '\'':
                return JsonValue.Create(ParseQuoted(text, ownerIndent));
            case '[' or '{':
                return ParseFlow(text);
        }
        var plain = new StringBuilder(StripComment(text));
        // A plain scalar continues on more-indented lines, folded with single spaces; an empty
        // line in between is a newline.
        var pendingNewlines = 0;
        while (_i < _lines.Count)
        {
            var line = _lines[_i];
            if (line.Trim().Length == 0)
            {
                pendingNewlines++;
                _i++;
                continue;
            }
            if (IndentOf(line) <= ownerIndent || line.TrimStart(' ').StartsWith('#'))
            {
                break;
            }
            plain.Append(pendingNewlines > 0 ? new string('\n', pendingNewlines) : " ");
            pendingNewlines = 0;
            plain.Append(StripComment(line.Trim(' ')));
            _i++;
        }
        return ConvertPlain(plain.ToString());
    }

    private string ParseQuoted(string text, int ownerIndent)
    {
        // A quoted scalar may run over lines: each line break folds into a space.
        var all = text;
        while (EndOfQuoted(all, 0) < 0)
        {
            if (_i >= _lines.Count || (IndentOf(_lines[_i]) <= ownerIndent && _lines[_i].Trim().Length > 0))
            {
                throw Error("unterminated quoted scalar");
            }
            all += " " + _lines[_i].Trim(' ');
            _i++;
        }
        var end = EndOfQuoted(all, 0);
        var trailing = StripComment(all[(end + 1)..].Trim(' '));
        if (trailing.Length > 0)
        {
            throw Error($"text after a quoted scalar: '{trailing}'");
        }
        return Unquote(all[..(end + 1)]);
    }

    private string ParseBlockScalar(string header, int ownerIndent)
    {
        var folded = header[0] == '>';
        var chomp = header.Length > 1 ? header[1..].Trim() : "";
        chomp = StripComment(chomp);
        var keep = chomp.Contains('+');
        var strip = chomp.Contains('-');
        var digit = chomp.FirstOrDefault(char.IsAsciiDigit);
        var lines = new List<string>();
        var blockIndent = digit != default ? ownerIndent + (digit - '0') : -1;
        while (_i < _lines.Count)
        {
            var line = _lines[_i];
            if (line.Trim().Length == 0)
            {
                lines.Add("");
                _i++;
                continue;
            }
            var indent = IndentOf(line);
            if (indent <= ownerIndent)
            {
                break;
            }
            if (blockIndent < 0)
            {
                blockIndent = indent;
            }
            if (indent < blockIndent)
            {
                break;
            }
            lines.Add(line[blockIndent..]);
            _i++;
        }
        var trailingBlank = 0;
        while (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
            trailingBlank++;
        }
        var body = new StringBuilder();
        for (var j = 0; j < lines.Count; j++)
        {
            if (j > 0)
            {
                var previous = lines[j - 1];
                var current = lines[j];
                if (!folded || current.Length == 0 || previous.StartsWith(' ') || current.StartsWith(' '))
                {
                    // Literal, an empty line, or a more-indented line: the break stays.
                    body.Append('\n');
                }
                else if (previous.Length > 0)
                {
                    body.Append(' ');
                }
                // else: folded after empty lines, which already stood for the break.
            }
            body.Append(lines[j]);
        }
        if (lines.Count > 0 && !strip)
        {
            body.Append('\n');
            if (keep)
            {
                body.Append('\n', trailingBlank);
            }
        }
        return body.ToString();
    }

    private JsonNode ParseFlow(string text)
    {
        var all = StripCommentOutsideFlow(text);
        var pos = 0;
        var node = ParseFlowNode(all, ref pos);
        SkipSpaces(all, ref pos);
        if (pos != all.Length)
        {
            throw Error($"text after a flow collection: '{all[pos..]}'");
        }
        return node ?? throw Error("empty flow node");
    }

    private JsonNode? ParseFlowNode(string s, ref int pos)
    {
        SkipSpaces(s, ref pos);
        if (pos >= s.Length)
        {
            throw Error("unterminated flow collection");
        }
        if (s[pos] == '[')
        {
            pos++;
            var array = new JsonArray();
            SkipSpaces(s, ref pos);
            if (pos < s.Length && s[pos] == ']')
            {
                pos++;
                return array;
            }
            while (true)
            {
                array.Add(ParseFlowNode(s, ref pos));
                SkipSpaces(s, ref pos);
                if (pos < s.Length && s[pos] == ',')
                {
                    pos++;
                    continue;
                }
                if (pos < s.Length && s[pos] == ']')
                {
                    pos++;
                    return array;
                }
                throw Error("expected ',' or ']' in a flow sequence");
            }
        }
        if (s[pos] == '{')
        {
            pos++;
            var map = new JsonObject();
            SkipSpaces(s, ref pos);
            if (pos < s.Length && s[pos] == '}')
            {
                pos++;
                return map;
            }
            while (true)
            {
                var keyNode = ParseFlowScalar(s, ref pos, stopAtColon: true);
                SkipSpaces(s, ref pos);
                if (pos >= s.Length || s[pos] != ':')
                {
                    throw Error("expected ':' in a flow mapping");
                }
                pos++;
                map[keyNode?.ToString() ?? "null"] = ParseFlowNode(s, ref pos);
                SkipSpaces(s, ref pos);
                if (pos < s.Length && s[pos] == ',')
                {
                    pos++;
                    continue;
                }
                if (pos < s.Length && s[pos] == '}')
                {
                    pos++;
                    return map;
                }
                throw Error("expected ',' or '}' in a flow mapping");
            }
        }
        return ParseFlowScalar(s, ref pos, stopAtColon: false);
    }

    private JsonNode? ParseFlowScalar(string s, ref int pos, bool stopAtColon)
    {
        SkipSpaces(s, ref pos);
        if (pos < s.Length && s[pos] is '"' or '\'')
        {
            var end = EndOfQuoted(s, pos);
            if (end < 0)
            {
                throw Error("unterminated quoted scalar in a flow collection");
            }
            var value = Unquote(s[pos..(end + 1)]);
            pos = end + 1;
            return JsonValue.Create(value);
        }
        var start = pos;
        while (pos < s.Length && s[pos] is not (',' or ']' or '}') && !(stopAtColon && s[pos] == ':'))
        {
            pos++;
        }
        return ConvertPlain(s[start..pos].Trim(' '));
    }

    private static void SkipSpaces(string s, ref int pos)
    {
        while (pos < s.Length && s[pos] == ' ')
        {
            pos++;
        }
    }

    private static string StripCommentOutsideFlow(string s)
    {
        char? quote = null;
        for (var j = 0; j < s.Length; j++)
        {
            var c = s[j];
            if (quote is null && c is '"' or '\'')
            {
                quote = c;
            }
            else if (quote == '"' && c == '\\')
            {
                j++;
            }
            else if (quote == c)
            {
                quote = null;
            }
            else if (quote is null && c == '#' && j > 0 && s[j - 1] == ' ')
            {
                return s[..j].TrimEnd(' ');
            }
        }
        return s;
    }

    // " #" starts a comment in a plain scalar.
    private static string StripComment(string text)
    {
        for (var j = 0; j < text.Length; j++)
        {
            if (text[j] == '#' && (j == 0 || text[j - 1] == ' '))
            {
                return text[..j].TrimEnd(' ');
            }
        }
        return text;
    }

    // The index of the quote that closes the quoted scalar starting at start, or -1.
    private static int EndOfQuoted(string s, int start)
    {
        var quote = s[start];
        for (var j = start + 1; j < s.Length; j++)
        {
            if (quote == '"' && s[j] == '\\')
            {
                j++;
                continue;
            }
            if (s[j] == quote)
            {
                if (quote == '\'' && j + 1 < s.Length && s[j + 1] == '\'')
                {
                    j++;
                    continue;
                }
                return j;
            }
        }
        return -1;
    }

    private static string Unquote(string quoted)
    {
        var body = quoted[1..^1];
        if (quoted[0] == '\'')
        {
            return body.Replace("''", "'", StringComparison.Ordinal);
        }
        var sb = new StringBuilder();
        for (var j = 0; j < body.Length; j++)
        {
            if (body[j] != '\\')
            {
                sb.Append(body[j]);
                continue;
            }
            j++;
            if (j >= body.Length)
            {
                throw new FormatException("a lone backslash ends a double-quoted scalar");
            }
            switch (body[j])
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '0': sb.Append('\0'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'e': sb.Append('\u001b'); break;
                case ' ': sb.Append(' '); break;
                case '"': sb.Append('"'); break;
                case '/': sb.Append('/'); break;
                case '\\': sb.Append('\\'); break;
                case 'x':
                    sb.Append((char)int.Parse(body.AsSpan(j + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    j += 2;
                    break;
                case 'u':
                    sb.Append((char)int.Parse(body.AsSpan(j + 1, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    j += 4;
                    break;
                default:
                    throw new FormatException($"unknown escape '\\{body[j]}'");
            }
        }
        return sb.ToString();
    }

    // YAML 1.2 core schema.
    private static JsonNode? ConvertPlain(string text)
    {
        switch (text)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return null;
            case "true" or "True" or "TRUE":
                return JsonValue.Create(true);
            case "false" or "False" or "FALSE":
                return JsonValue.Create(false);
        }
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer)
            && text.TrimStart('-', '+').All(char.IsAsciiDigit))
        {
            return JsonValue.Create(integer);
        }
        if (text.Any(char.IsAsciiDigit) && text.All(c => char.IsAsciiDigit(c) || c is '.' or 'e' or 'E' or '-' or '+')
            && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var real))
        {
            return JsonValue.Create(real);
        }
        return JsonValue.Create(text);
    }
}
