using System.Globalization;
using System.Text;

namespace Trc.Core.Toml;

/// <summary>Which of TOML's four date and time forms a value is.</summary>
public enum TomlDateTimeKind
{
    /// <summary><c>1979-05-27T07:32:00Z</c> or with a numeric offset.</summary>
    OffsetDateTime,

    /// <summary><c>1979-05-27T07:32:00</c>: no offset.</summary>
    LocalDateTime,

    /// <summary><c>1979-05-27</c>.</summary>
    LocalDate,

    /// <summary><c>07:32:00</c>.</summary>
    LocalTime,
}

/// <summary>
/// A TOML date, time or date-time, kept as its components so that no precision or offset form is
/// lost (a <see cref="DateTimeOffset"/> cannot hold a local time, nor tell <c>Z</c> from <c>+00:00</c>).
/// </summary>
public readonly record struct TomlDateTime
{
    /// <summary>The form of the value.</summary>
    public TomlDateTimeKind Kind { get; init; }

    /// <summary>Year, 0-9999 (date forms only).</summary>
    public int Year { get; init; }

    /// <summary>Month, 1-12 (date forms only).</summary>
    public int Month { get; init; }

    /// <summary>Day of month (date forms only).</summary>
    public int Day { get; init; }

    /// <summary>Hour, 0-23 (time forms only).</summary>
    public int Hour { get; init; }

    /// <summary>Minute, 0-59 (time forms only).</summary>
    public int Minute { get; init; }

    /// <summary>Second, 0-60 (60 is a leap second).</summary>
    public int Second { get; init; }

    /// <summary>Fraction of the second in nanoseconds; digits past the ninth are truncated.</summary>
    public int Nanosecond { get; init; }

    /// <summary>How many fraction digits were written (0-9), so the value prints as written.</summary>
    public int FractionDigits { get; init; }

    /// <summary>Offset from UTC in minutes (offset date-times only).</summary>
    public int OffsetMinutes { get; init; }

    /// <summary>True when the offset was written as <c>Z</c> (or <c>z</c>) rather than numerically.</summary>
    public bool IsZulu { get; init; }

    /// <summary>Whether the value carries a date part.</summary>
    public bool HasDate => Kind != TomlDateTimeKind.LocalTime;

    /// <summary>Whether the value carries a time part.</summary>
    public bool HasTime => Kind != TomlDateTimeKind.LocalDate;

    /// <summary>
    /// RFC 3339 text: <c>T</c> separator, upper-case <c>Z</c>, fraction padded to milliseconds when
    /// present (the form toml-test prints).
    /// </summary>
    public override string ToString()
    {
        var sb = new StringBuilder(35);
        if (HasDate)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{Year:D4}-{Month:D2}-{Day:D2}");
        }
        if (HasDate && HasTime)
        {
            sb.Append('T');
        }
        if (HasTime)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{Hour:D2}:{Minute:D2}:{Second:D2}");
            if (FractionDigits > 0)
            {
                var digits = Math.Max(3, FractionDigits);
                var fraction = Nanosecond.ToString("D9", CultureInfo.InvariantCulture)[..digits];
                sb.Append('.').Append(fraction);
            }
        }
        if (Kind == TomlDateTimeKind.OffsetDateTime)
        {
            if (IsZulu)
            {
                sb.Append('Z');
            }
            else
            {
                var sign = OffsetMinutes < 0 ? '-' : '+';
                var abs = Math.Abs(OffsetMinutes);
                sb.Append(sign).Append(CultureInfo.InvariantCulture, $"{abs / 60:D2}:{abs % 60:D2}");
            }
        }
        return sb.ToString();
    }

    /// <summary>Days in a month of the proleptic Gregorian calendar.</summary>
    internal static int DaysInMonth(int year, int month) => month switch
    {
        2 => IsLeapYear(year) ? 29 : 28,
        4 or 6 or 9 or 11 => 30,
        _ => 31,
    };

    private static bool IsLeapYear(int year) => year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}
