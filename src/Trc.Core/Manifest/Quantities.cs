using System.Globalization;

namespace Trc.Core.Manifest;

/// <summary>
/// Byte sizes written like <c>512Mi</c> or <c>2Gi</c>: a positive integer and a binary unit
/// (Ki, Mi, Gi, Ti). A unit is required, so that "512" is never read as bytes by mistake.
/// </summary>
public static class ByteSize
{
    /// <summary>The pattern a size must match (also used in the JSON Schema).</summary>
    public const string Pattern = "^[1-9][0-9]{0,15}(Ki|Mi|Gi|Ti)$";

    /// <summary>Parses a size; returns false (with a message) when malformed or too large.</summary>
    public static bool TryParse(string text, out long bytes, out string error)
    {
        bytes = 0;
        error = "";
        var unitStart = text.Length - 2;
        if (text.Length < 3 || !IsUnit(text.AsSpan(unitStart)))
        {
            error = $"'{Shorten(text)}' is not a size: write a whole number and a unit, like \"512Mi\" or \"2Gi\" (units: Ki, Mi, Gi, Ti)";
            return false;
        }
        var digits = text.AsSpan(0, unitStart);
        if (digits.Length == 0 || digits.Length > 16 || digits[0] == '0' || !AllDigits(digits))
        {
            error = $"'{Shorten(text)}' is not a size: the number must be a positive whole number without leading zeros, like \"512Mi\"";
            return false;
        }
        var number = long.Parse(digits, CultureInfo.InvariantCulture);
        var shift = text[unitStart] switch { 'K' => 10, 'M' => 20, 'G' => 30, _ => 40 };
        if (number > long.MaxValue >> shift)
        {
            error = $"'{Shorten(text)}' is too large";
            return false;
        }
        bytes = number << shift;
        return true;
    }

    /// <summary>The shortest exact form of a byte count: <c>536870912</c> gives <c>512Mi</c>.</summary>
    public static string Format(long bytes)
    {
        foreach (var (unit, shift) in new[] { ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10) })
        {
            if (bytes >= 1L << shift && bytes % (1L << shift) == 0)
            {
                return (bytes >> shift).ToString(CultureInfo.InvariantCulture) + unit;
            }
        }
        return bytes.ToString(CultureInfo.InvariantCulture) + " bytes";
    }

    private static bool IsUnit(ReadOnlySpan<char> unit) => unit is "Ki" or "Mi" or "Gi" or "Ti";

    private static bool AllDigits(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }
        return true;
    }

    internal static string Shorten(string s) => Toml.TomlKeys.Printable(s, 40);
}

/// <summary>Durations written like <c>500ms</c>, <c>5s</c>, <c>2m</c> or <c>1h</c>: a positive integer and one unit.</summary>
public static class Duration
{
    /// <summary>The pattern a duration must match (also used in the JSON Schema).</summary>
    public const string Pattern = "^[1-9][0-9]{0,8}(ms|s|m|h)$";

    /// <summary>Parses a duration; returns false (with a message) when malformed.</summary>
    public static bool TryParse(string text, out TimeSpan value, out string error)
    {
        value = TimeSpan.Zero;
        error = "";
        var (unitLength, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (2, TimeSpan.FromMilliseconds(1))
            : text.EndsWith('s') ? (1, TimeSpan.FromSeconds(1))
            : text.EndsWith('m') ? (1, TimeSpan.FromMinutes(1))
            : text.EndsWith('h') ? (1, TimeSpan.FromHours(1))
            : (0, TimeSpan.Zero);
        var digits = text.AsSpan(0, text.Length - unitLength);
        if (unitLength == 0 || digits.Length is 0 or > 9 || digits[0] is < '1' or > '9' || !long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            error = $"'{ByteSize.Shorten(text)}' is not a duration: write a positive whole number and a unit, like \"500ms\", \"5s\", \"2m\" or \"1h\"";
            return false;
        }
        // Nine digits of hours (up to ~114,000 years) overflow a TimeSpan (~29,000 years).
        if (number > TimeSpan.MaxValue.Ticks / unit.Ticks)
        {
            error = $"'{ByteSize.Shorten(text)}' is too long a duration";
            return false;
        }
        value = TimeSpan.FromTicks(number * unit.Ticks);
        return true;
    }

    /// <summary>The shortest exact form: 5000 ms gives <c>5s</c>.</summary>
    public static string Format(TimeSpan value)
    {
        var ms = (long)value.TotalMilliseconds;
        if (ms > 0 && ms % 3_600_000 == 0)
        {
            return (ms / 3_600_000).ToString(CultureInfo.InvariantCulture) + "h";
        }
        if (ms > 0 && ms % 60_000 == 0)
        {
            return (ms / 60_000).ToString(CultureInfo.InvariantCulture) + "m";
        }
        if (ms > 0 && ms % 1000 == 0)
        {
            return (ms / 1000).ToString(CultureInfo.InvariantCulture) + "s";
        }
        return ms.ToString(CultureInfo.InvariantCulture) + "ms";
    }
}
