using System.Diagnostics.CodeAnalysis;

namespace Trc.Oci.Registry;

/// <summary>
/// One challenge from a <c>WWW-Authenticate</c> header (RFC 9110 section 11.6.1): a scheme
/// (<c>Basic</c>, <c>Bearer</c>) and its parameters (<c>realm</c>, <c>service</c>, <c>scope</c>).
/// </summary>
public sealed record AuthChallenge
{
    /// <summary>The longest header value read; registries send a few hundred bytes.</summary>
    public const int MaxHeaderLength = 8 * 1024;

    /// <summary>The scheme, as sent (compare ignoring case).</summary>
    public required string Scheme { get; init; }

    /// <summary>The parameters, names lowercased.</summary>
    public required IReadOnlyDictionary<string, string> Parameters { get; init; }

    /// <summary>Whether this is a <c>Basic</c> challenge.</summary>
    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether this is a <c>Bearer</c> challenge.</summary>
    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);

    /// <summary>The <c>realm</c> parameter, or null.</summary>
    public string? Realm => Parameters.GetValueOrDefault("realm");

    /// <summary>The <c>service</c> parameter, or null.</summary>
    public string? Service => Parameters.GetValueOrDefault("service");

    /// <summary>The <c>scope</c> parameter, or null.</summary>
    public string? Scope => Parameters.GetValueOrDefault("scope");

    /// <summary>Parses a header value that may hold several challenges.</summary>
    /// <param name="header">The header value.</param>
    /// <param name="challenges">The challenges, in order.</param>
    /// <param name="error">What is wrong and at which character, when false.</param>
    /// <returns>Whether the value parsed.</returns>
    public static bool TryParse(string? header, [NotNullWhen(true)] out IReadOnlyList<AuthChallenge>? challenges, [NotNullWhen(false)] out string? error)
    {
        challenges = null;
        if (string.IsNullOrWhiteSpace(header))
        {
            error = "WWW-Authenticate is empty";
            return false;
        }
        if (header.Length > MaxHeaderLength)
        {
            error = $"WWW-Authenticate is {header.Length} characters, more than the {MaxHeaderLength} allowed";
            return false;
        }

        var list = new List<AuthChallenge>();
        var s = header;
        var i = 0;
        while (true)
        {
            SkipSpacesAndCommas(s, ref i);
            if (i >= s.Length)
            {
                break;
            }
            var schemeStart = i;
            while (i < s.Length && IsTokenChar(s[i]))
            {
                i++;
            }
            if (i == schemeStart)
            {
                error = $"WWW-Authenticate: expected an auth scheme at character {i}, found '{Printable(s[i])}'";
                return false;
            }
            var scheme = s[schemeStart..i];
            var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
            // Parameters follow until a token that is not followed by '=': that is the next challenge's scheme.
            while (true)
            {
                SkipSpacesAndCommas(s, ref i);
                if (i >= s.Length)
                {
                    break;
                }
                var nameStart = i;
                while (i < s.Length && IsTokenChar(s[i]))
                {
                    i++;
                }
                if (i == nameStart)
                {
                    error = $"WWW-Authenticate: expected a parameter name at character {i}, found '{Printable(s[i])}'";
                    return false;
                }
                var afterName = i;
                while (i < s.Length && s[i] is ' ' or '\t')
                {
                    i++;
                }
                if (i >= s.Length || s[i] != '=')
                {
                    i = nameStart;
                    break;
                }
                i++;
                while (i < s.Length && s[i] is ' ' or '\t')
                {
                    i++;
                }
                var name = s[nameStart..afterName].ToLowerInvariant();
                string value;
                if (i < s.Length && s[i] == '"')
                {
                    if (!TryReadQuoted(s, ref i, out value, out error))
                    {
                        return false;
                    }
                }
                else
                {
                    var valueStart = i;
                    while (i < s.Length && IsTokenChar(s[i]) || i < s.Length && s[i] is '/' or '=')
                    {
                        i++;
                    }
                    if (i == valueStart)
                    {
                        error = $"WWW-Authenticate: parameter {name} has no value (character {i})";
                        return false;
                    }
                    value = s[valueStart..i];
                }
                if (!parameters.TryAdd(name, value))
                {
                    error = $"WWW-Authenticate: parameter {name} appears twice in one challenge";
                    return false;
                }
            }
            list.Add(new AuthChallenge { Scheme = scheme, Parameters = parameters });
        }
        if (list.Count == 0)
        {
            error = "WWW-Authenticate holds no challenge";
            return false;
        }
        challenges = list;
        error = null;
        return true;
    }

    private static bool TryReadQuoted(string s, ref int i, out string value, [NotNullWhen(false)] out string? error)
    {
        var start = i;
        i++;
        var builder = new System.Text.StringBuilder();
        while (i < s.Length)
        {
            var c = s[i];
            if (c == '"')
            {
                i++;
                value = builder.ToString();
                error = null;
                return true;
            }
            if (c == '\\')
            {
                i++;
                if (i >= s.Length)
                {
                    break;
                }
                c = s[i];
            }
            if (char.IsControl(c) && c != '\t')
            {
                value = "";
                error = $"WWW-Authenticate: control character \\u{(int)c:x4} in a quoted value at character {i}";
                return false;
            }
            builder.Append(c);
            i++;
        }
        value = "";
        error = $"WWW-Authenticate: the quoted value opened at character {start} is not closed";
        return false;
    }

    private static void SkipSpacesAndCommas(string s, ref int i)
    {
        while (i < s.Length && s[i] is ' ' or '\t' or ',')
        {
            i++;
        }
    }

    // RFC 9110 tchar.
    private static bool IsTokenChar(char c) =>
        c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9')
            or '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~' or ':';

    private static string Printable(char c) => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString();
}
