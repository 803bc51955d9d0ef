using System.Text;

namespace Trc.Core.Toml;

/// <summary>Helpers to print keys and paths the way TOML would write them.</summary>
public static class TomlKeys
{
    /// <summary>The longest key part printed in a message; longer ones are cut with an ellipsis.</summary>
    public const int MaxPrintedLength = 64;

    /// <summary>True when <paramref name="name"/> can be written bare (<c>[A-Za-z0-9_-]+</c>).</summary>
    public static bool IsBare(string name)
    {
        if (name.Length == 0)
        {
            return false;
        }
        foreach (var c in name)
        {
            if (!IsBareChar(c))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Whether a character may appear in a bare key.</summary>
    public static bool IsBareChar(char c) =>
        c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '-';

    /// <summary>A key part as TOML source: bare when possible, else a basic string.</summary>
    public static string Quote(string name) => IsBare(name) ? name : TomlStrings.QuoteBasic(name);

    /// <summary>Joins key parts with dots, quoting where needed and shortening very long parts for messages.</summary>
    public static string Join(IEnumerable<string> parts)
    {
        var sb = new StringBuilder();
        foreach (var part in parts)
        {
            if (sb.Length > 0)
            {
                sb.Append('.');
            }
            sb.Append(Printable(Quote(part), MaxPrintedLength));
        }
        return sb.ToString();
    }

    /// <summary>
    /// Source text for a message: at most <paramref name="max"/> characters (then an ellipsis),
    /// never half a surrogate pair, and control and format characters (bidi overrides, zero-width
    /// joiners) written as <c>\uXXXX</c> so that a message printed to a terminal can neither carry
    /// escape sequences from the document nor display text other than what it holds.
    /// </summary>
    public static string Printable(ReadOnlySpan<char> text, int max)
    {
        var cut = Math.Min(text.Length, max);
        // Parsed text has no lone surrogate, so a high surrogate at the cut means the cut split a pair.
        if (cut > 0 && char.IsHighSurrogate(text[cut - 1]))
        {
            cut--;
        }
        var sb = new StringBuilder(cut + 1);
        foreach (var c in text[..cut])
        {
            if (char.IsControl(c) || System.Globalization.CharUnicodeInfo.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format)
            {
                sb.Append("\\u").Append(((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }
        if (cut < text.Length)
        {
            sb.Append('…');
        }
        return sb.ToString();
    }
}

/// <summary>Helpers to write TOML strings.</summary>
public static class TomlStrings
{
    /// <summary>Writes <paramref name="value"/> as a TOML basic string, escaping what must be escaped.</summary>
    public static string QuoteBasic(string value)
    {
        var sb = new StringBuilder(value.Length + 2);
        sb.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\t': sb.Append("\\t"); break;
                case '\n': sb.Append("\\n"); break;
                case '\f': sb.Append("\\f"); break;
                case '\r': sb.Append("\\r"); break;
                default:
                    if (c < 0x20 || c == 0x7F)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    /// <summary>
    /// The canonical form of a string value: a basic string, or a literal string when that avoids
    /// escapes (backslashes or double quotes) and the value can be one.
    /// </summary>
    public static string QuoteCanonical(string value)
    {
        var needsEscape = value.AsSpan().IndexOfAny('\\', '"') >= 0;
        if (needsEscape && CanBeLiteral(value))
        {
            return "'" + value + "'";
        }
        return QuoteBasic(value);
    }

    private static bool CanBeLiteral(string value)
    {
        foreach (var c in value)
        {
            if (c == '\'' || (c < 0x20 && c != '\t') || c == 0x7F)
            {
                return false;
            }
        }
        return true;
    }
}
