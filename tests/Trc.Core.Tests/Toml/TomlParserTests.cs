using System.Text;
using Trc.Core.Toml;
using TomlReader = Trc.Core.Toml.Toml;

namespace Trc.Core.Tests.Toml;

/// <summary>
/// Targeted tests of TOML 1.0.0's tricky corners, and of the position and wording of error messages.
/// </summary>
public sealed class TomlParserTests
{
    // ---- multi-line strings ---------------------------------------------------------------------

    [Theory]
    [InlineData("a = \"\"\"x\"\"\"", "x")]
    [InlineData("a = \"\"\"x\"\"\"\"", "x\"")]
    [InlineData("a = \"\"\"x\"\"\"\"\"", "x\"\"")]
    [InlineData("a = \"\"\"\"x\"\"\"", "\"x")]
    [InlineData("a = \"\"\"\"\"x\"\"\"", "\"\"x")]
    [InlineData("a = \"\"\"a\"b\"\"c\"\"\"", "a\"b\"\"c")]
    [InlineData("a = \"\"\"\"\"\"", "")]
    [InlineData("a = \"\"\"\"\"\"\"", "\"")]
    [InlineData("a = \"\"\"\"\"\"\"\"", "\"\"")]
    [InlineData("a = \"\"\"x\\\"\"\"\"", "x\"")]
    [InlineData("a = \"\"\"x\\\"\"\"\"\"", "x\"\"")]
    [InlineData("a = '''x'''", "x")]
    [InlineData("a = '''x''''", "x'")]
    [InlineData("a = '''x'''''", "x''")]
    [InlineData("a = ''''x'''", "'x")]
    [InlineData("a = '''''x'''", "''x")]
    [InlineData("a = ''''''", "")]
    [InlineData("a = '''''''", "'")]
    [InlineData("a = ''''''''", "''")]
    public void Quote_runs_of_one_to_five_before_the_closing_delimiter_are_content(string document, string expected)
    {
        Assert.Equal(expected, StringValue(document));
    }

    [Theory]
    [InlineData("a = \"\"\"x\"\"\"\"\"\"", "1:9", "too many quotes: 6 \" characters in a row in a multi-line string (at most 2 may be content)")]
    [InlineData("a = \"\"\"\"\"\"\"\"\"", "1:8", "too many quotes: 6 \" characters in a row in a multi-line string (at most 2 may be content)")]
    [InlineData("a = '''x''''''", "1:9", "too many quotes: 6 ' characters in a row in a multi-line string (at most 2 may be content)")]
    [InlineData("a = \"\"\"x\"\"\"\"\"\"\"\"\"\"", "1:9", "too many quotes: 10 \" characters in a row in a multi-line string (at most 2 may be content)")]
    public void Six_or_more_quotes_in_a_row_are_an_error(string document, string position, string message)
    {
        AssertError(document, position, message);
    }

    [Theory]
    [InlineData("a = \"\"\"\nfoo\"\"\"", "foo")]
    [InlineData("a = \"\"\"\r\nfoo\"\"\"", "foo")]
    [InlineData("a = \"\"\"\n\nfoo\"\"\"", "\nfoo")]
    [InlineData("a = \"\"\"\r\n\r\nfoo\"\"\"", "\nfoo")]
    [InlineData("a = '''\nfoo'''", "foo")]
    [InlineData("a = '''\r\nfoo'''", "foo")]
    [InlineData("a = \"\"\" \nfoo\"\"\"", " \nfoo")]
    public void Only_the_newline_right_after_the_opening_delimiter_is_trimmed(string document, string expected)
    {
        Assert.Equal(expected, StringValue(document));
    }

    [Theory]
    [InlineData("a = \"\"\"a\r\nb\r\n\"\"\"", "a\nb\n")]
    [InlineData("a = '''a\r\nb\r\n'''", "a\nb\n")]
    [InlineData("a = \"\"\"a\\r\\nb\"\"\"", "a\r\nb")]
    public void Crlf_inside_multi_line_strings_becomes_lf_but_an_escaped_cr_stays(string document, string expected)
    {
        Assert.Equal(expected, StringValue(document));
    }

    [Theory]
    [InlineData("a = \"\"\"\nfoo \\\nbar\"\"\"", "foo bar")]
    [InlineData("a = \"\"\"\r\nfoo \\\r\n   bar\"\"\"", "foo bar")]
    [InlineData("a = \"\"\"foo \\   \r\n  \t bar\"\"\"", "foo bar")]
    [InlineData("a = \"\"\"foo\\\t\n\r\n\n   \r\n\tbar\"\"\"", "foobar")]
    [InlineData("a = \"\"\"foo\\\n\"\"\"", "foo")]
    [InlineData("a = \"\"\"foo\\\r\n   \"\"\"", "foo")]
    [InlineData("a = \"\"\"\\\n  \\\n  x\"\"\"", "x")]
    [InlineData("a = \"\"\"foo\\\\\nbar\"\"\"", "foo\\\nbar")]
    [InlineData("a = '''foo\\\nbar'''", "foo\\\nbar")]
    public void A_line_ending_backslash_removes_the_newline_and_the_whitespace_after_it(string document, string expected)
    {
        Assert.Equal(expected, StringValue(document));
    }

    [Theory]
    [InlineData("a = \"\"\"foo\\  bar\"\"\"", "1:11", "a backslash followed by whitespace must be the last thing on its line")]
    [InlineData("a = \"\"\"foo\\ \"\"\"", "1:11", "a backslash followed by whitespace must be the last thing on its line")]
    [InlineData("a = \"\"\"foo\\ ", "1:11", "a backslash followed by whitespace must be the last thing on its line")]
    [InlineData("a = \"\"\"foo\\", "1:11", "the string ends in the middle of an escape sequence")]
    [InlineData("a = \"\"\"foo\\\r\"\"\"", "1:12", "carriage return (U+000D) must be followed by a line feed: a lone CR is not a line ending in TOML")]
    [InlineData("a = \"foo\\\nbar\"", "1:9", "invalid escape sequence '\\' (the end of the line); valid escapes are \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX")]
    public void A_misplaced_line_ending_backslash_is_an_error(string document, string position, string message)
    {
        AssertError(document, position, message);
    }

    [Theory]
    [InlineData("a = \"\"\"\nx", "1:5", "the multi-line string is not closed: expected '\"\"\"'")]
    [InlineData("a = \"\"\"x\"\"", "1:5", "the multi-line string is not closed: expected '\"\"\"'")]
    [InlineData("a = '''\nx''", "1:5", "the multi-line literal string is not closed: expected \"'''\"")]
    [InlineData("a = \"x", "1:5", "the string is not closed: expected '\"'")]
    [InlineData("a = \"x\ny\"", "1:5", "the string is not closed before the end of the line (use \"\"\" for multi-line strings)")]
    [InlineData("a = 'x", "1:5", "the literal string is not closed: expected \"'\"")]
    [InlineData("a = 'x\r\n'", "1:5", "the literal string is not closed before the end of the line (use ''' for multi-line strings)")]
    public void An_unclosed_string_is_reported_at_its_opening_quote(string document, string position, string message)
    {
        AssertError(document, position, message);
    }

    [Theory]
    [InlineData("a = \"\\u0001\"", "\u0001")]
    [InlineData("a = '''tab\there'''", "tab\there")]
    [InlineData("a = \"tab\there\"", "tab\there")]
    public void Tab_is_allowed_raw_and_other_controls_escaped(string document, string expected)
    {
        Assert.Equal(expected, StringValue(document));
    }

    [Theory]
    [InlineData("a = \"x\u0001\"", "1:7", "control character U+0001 must be escaped in a string")]
    [InlineData("a = \"\"\"x\u007F\"\"\"", "1:9", "control character U+007F must be escaped in a string")]
    [InlineData("a = 'x\u001F'", "1:7", "control character U+001F is not allowed in a literal string")]
    [InlineData("a = '''\n\u0008'''", "2:1", "control character U+0008 must be escaped in a string")]
    [InlineData("# \u007F", "1:3", "control character U+007F is not allowed in a comment")]
    public void Raw_control_characters_are_rejected_with_their_code(string document, string position, string message)
    {
        AssertError(document, position, message);
    }

    // ---- escapes --------------------------------------------------------------------------------

    [Fact]
    public void Every_simple_escape_decodes()
    {
        Assert.Equal("\b\t\n\f\r\"\\", StringValue("a = \"\\b\\t\\n\\f\\r\\\"\\\\\""));
    }

    [Theory]
    [InlineData("\\u00e9", "é")]
    [InlineData("\\u00E9", "é")]
    [InlineData("\\U0001F600", "😀")]
    [InlineData("\\U0010FFFF", "\U0010FFFF")]
    [InlineData("\\u0000", "\0")]
    [InlineData("\\uD7FF", "\uD7FF")]
    [InlineData("\\uE000", "\uE000")]
    [InlineData("\\uFFFF", "\uFFFF")]
    public void Unicode_escapes_of_scalar_values_decode(string escape, string expected)
    {
        Assert.Equal(expected, StringValue($"a = \"{escape}\""));
        Assert.Equal(expected, StringValue($"a = \"\"\"{escape}\"\"\""));
    }

    [Theory]
    [InlineData("\\uD800")]
    [InlineData("\\uDBFF")]
    [InlineData("\\uDC00")]
    [InlineData("\\uDFFF")]
    [InlineData("\\U0000D800")]
    [InlineData("\\U00110000")]
    [InlineData("\\UFFFFFFFF")]
    [InlineData("\\U80000000")]
    public void Unicode_escapes_of_surrogates_or_beyond_10FFFF_are_rejected(string escape)
    {
        AssertError(
            $"a = \"x{escape}\"",
            "1:7",
            $"the escape {escape} is not a Unicode scalar value (surrogates and values above 10FFFF are not allowed)");
    }

    [Fact]
    public void A_surrogate_pair_written_as_two_escapes_is_rejected()
    {
        AssertError("a = \"\\uD83D\\uDE00\"", "1:6", "the escape \\uD83D is not a Unicode scalar value (surrogates and values above 10FFFF are not allowed)");
    }

    [Theory]
    [InlineData("a = \"\\x41\"", "1:6", "invalid escape sequence '\\x' ('x'); valid escapes are \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX")]
    [InlineData("a = \"\\e\"", "1:6", "invalid escape sequence '\\e' ('e'); valid escapes are \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX")]
    [InlineData("a = \"\\ \"", "1:6", "invalid escape sequence '\\ ' (' '); valid escapes are \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX")]
    [InlineData("a = \"\\'\"", "1:6", "invalid escape sequence '\\'' ('''); valid escapes are \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX")]
    [InlineData("a = \"\\\u0001\"", "1:6", "invalid escape sequence '\\' (U+0001); valid escapes are \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX")]
    [InlineData("a = \"\\u12\"", "1:6", "the \\u escape needs 4 hex digits")]
    [InlineData("a = \"\\u12G4\"", "1:10", "the \\u escape needs 4 hex digits, found 'G'")]
    [InlineData("a = \"\\U1234567\"", "1:15", "the \\U escape needs 8 hex digits, found '\"'")]
    [InlineData("a = \"\\u12", "1:6", "the \\u escape needs 4 hex digits")]
    [InlineData("a = \"\\", "1:6", "the string ends in the middle of an escape sequence")]
    public void Bad_escapes_are_reported_at_the_backslash_or_the_bad_digit(string document, string position, string message)
    {
        AssertError(document, position, message);
    }

    [Fact]
    public void Literal_strings_have_no_escapes()
    {
        Assert.Equal("C:\\Users\\nodejs\\templates", StringValue("a = 'C:\\Users\\nodejs\\templates'"));
        Assert.Equal("\\\\ServerX\\admin$\\system32\\", StringValue("a = '\\\\ServerX\\admin$\\system32\\'"));
        Assert.Equal("I [dw]on't need \\d{2} apples", StringValue("a = '''I [dw]on't need \\d{2} apples'''"));
    }

    // ---- date-times -----------------------------------------------------------------------------

    [Theory]
    [InlineData("2000-02-29")]
    [InlineData("2024-02-29")]
    [InlineData("1600-02-29")]
    [InlineData("0000-02-29")]
    [InlineData("0000-01-01")]
    [InlineData("9999-12-31")]
    public void Leap_days_and_extreme_years_are_valid_dates(string date)
    {
        var value = DateTimeValue("a = " + date);
        Assert.Equal(TomlDateTimeKind.LocalDate, value.Kind);
        Assert.Equal(date, value.ToString());
    }

    [Theory]
    [InlineData("1900-02-29", "1:13", "invalid date '1900-02-29': day 29 does not exist in 1900-02")]
    [InlineData("2023-02-29", "1:13", "invalid date '2023-02-29': day 29 does not exist in 2023-02")]
    [InlineData("2023-04-31", "1:13", "invalid date '2023-04-31': day 31 does not exist in 2023-04")]
    [InlineData("2023-01-00", "1:13", "invalid date '2023-01-00': day 00 does not exist in 2023-01")]
    [InlineData("2023-01-32", "1:13", "invalid date '2023-01-32': day 32 does not exist in 2023-01")]
    [InlineData("2023-13-01", "1:10", "invalid date '2023-13-01': month 13 is not 01-12")]
    [InlineData("2023-00-01", "1:10", "invalid date '2023-00-01': month 00 is not 01-12")]
    [InlineData("2023-1-01", "1:5", "invalid date '2023-1-01': expected YYYY-MM-DD")]
    [InlineData("2023-01", "1:5", "invalid date '2023-01': expected YYYY-MM-DD")]
    [InlineData("2023-01-011", "1:15", "invalid date '2023-01-011': unexpected '1'")]
    [InlineData("2023-01-01T", "1:16", "invalid time '': expected HH:MM:SS (seconds are required)")]
    [InlineData("2023-01-01 07:32", "1:16", "invalid time '07:32': expected HH:MM:SS (seconds are required)")]
    [InlineData("2023-01-01T24:00:00", "1:16", "invalid time '24:00:00': hour 24 is not 00-23")]
    [InlineData("2023-01-01T23:60:00", "1:19", "invalid time '23:60:00': minute 60 is not 00-59")]
    [InlineData("2023-01-01T23:59:61", "1:22", "invalid time '23:59:61': second 61 is not 00-60")]
    [InlineData("2023-01-01T23:59:59.", "1:25", "invalid time '23:59:59.': a digit must follow the decimal point")]
    [InlineData("2023-01-01T23:59:59+24:00", "1:24", "invalid offset in date-time '2023-01-01T23:59:59+24:00': +24:00 is out of range")]
    [InlineData("2023-01-01T23:59:59-05:60", "1:24", "invalid offset in date-time '2023-01-01T23:59:59-05:60': -05:60 is out of range")]
    [InlineData("2023-01-01T23:59:59+0500", "1:24", "invalid offset in date-time '2023-01-01T23:59:59+0500': expected +HH:MM or -HH:MM")]
    [InlineData("2023-01-01T23:59:59Zx", "1:25", "invalid date-time '2023-01-01T23:59:59Zx': unexpected 'x'")]
    [InlineData("2023-01-01T23:59:59 Z", "1:25", "expected the end of the line after the value, found 'Z'")]
    [InlineData("07:32:00Z", "1:13", "invalid local time '07:32:00Z': unexpected 'Z'")]
    [InlineData("07:32:00+01:00", "1:13", "invalid local time '07:32:00+01:00': unexpected '+'")]
    [InlineData("07:32", "1:5", "invalid time '07:32': expected HH:MM:SS (seconds are required)")]
    [InlineData("7:32:00", "1:6", "invalid integer '7:32:00': unexpected ':'")]
    public void Invalid_date_times_are_reported_at_the_bad_component(string literal, string position, string message)
    {
        AssertError("a = " + literal, position, message);
    }

    [Theory]
    [InlineData("1979-05-27T23:59:60Z", "1979-05-27T23:59:60Z")]
    [InlineData("00:00:60", "00:00:60")]
    [InlineData("1979-05-27t07:32:00z", "1979-05-27T07:32:00Z")]
    [InlineData("1979-05-27 07:32:00Z", "1979-05-27T07:32:00Z")]
    [InlineData("1979-05-27T07:32:00+00:00", "1979-05-27T07:32:00+00:00")]
    [InlineData("1979-05-27T07:32:00-00:00", "1979-05-27T07:32:00+00:00")]
    [InlineData("1979-05-27T07:32:00-07:00", "1979-05-27T07:32:00-07:00")]
    [InlineData("1979-05-27T07:32:00+23:59", "1979-05-27T07:32:00+23:59")]
    [InlineData("1979-05-27T07:32:00.5", "1979-05-27T07:32:00.500")]
    [InlineData("1979-05-27T07:32:00.123456", "1979-05-27T07:32:00.123456")]
    [InlineData("1979-05-27T07:32:00.123456789", "1979-05-27T07:32:00.123456789")]
    [InlineData("1979-05-27T07:32:00.1234567891234Z", "1979-05-27T07:32:00.123456789Z")]
    [InlineData("07:32:00.999999999999", "07:32:00.999999999")]
    public void Date_times_accept_leap_seconds_lower_case_and_long_fractions(string literal, string expected)
    {
        Assert.Equal(expected, DateTimeValue("a = " + literal).ToString());
    }

    [Fact]
    public void Fraction_digits_past_the_ninth_are_truncated_not_rounded()
    {
        var value = DateTimeValue("a = 07:32:00.9999999999");
        Assert.Equal(999_999_999, value.Nanosecond);
        Assert.Equal(9, value.FractionDigits);
        Assert.Equal((7, 32, 0), (value.Hour, value.Minute, value.Second));
    }

    [Fact]
    public void Offsets_are_kept_as_written()
    {
        var zulu = DateTimeValue("a = 1979-05-27T07:32:00z");
        Assert.True(zulu.IsZulu);
        Assert.Equal(0, zulu.OffsetMinutes);
        var minus = DateTimeValue("a = 1979-05-27T07:32:00-07:30");
        Assert.False(minus.IsZulu);
        Assert.Equal(-450, minus.OffsetMinutes);
        Assert.Equal(TomlDateTimeKind.OffsetDateTime, minus.Kind);
    }

    [Theory]
    [InlineData("a = 1979-05-27 07:32:00 # at dawn", TomlDateTimeKind.LocalDateTime, " at dawn")]
    [InlineData("a = 1979-05-27 # a date", TomlDateTimeKind.LocalDate, " a date")]
    [InlineData("a = 1979-05-27#tight", TomlDateTimeKind.LocalDate, "tight")]
    [InlineData("a = 1979-05-27\t# tab", TomlDateTimeKind.LocalDate, " tab")]
    [InlineData("a = 1979-05-27 07:32:00Z# z", TomlDateTimeKind.OffsetDateTime, " z")]
    [InlineData("a = 07:32:00 #t", TomlDateTimeKind.LocalTime, "t")]
    public void A_space_separated_date_time_can_be_followed_by_a_comment(string document, TomlDateTimeKind kind, string comment)
    {
        var result = Parse(document);
        Assert.Equal(kind, ((TomlDateTimeValue)result.Document!.Root["a"]).Value.Kind);
        Assert.Equal(comment, result.Document.Syntax.Items[0].TrailingComment!.Text);
    }

    [Fact]
    public void Date_times_work_as_array_elements_with_a_space_separator()
    {
        var array = (TomlArray)Parse("a = [1979-05-27 07:32:00,1979-05-27 ,07:32:00]").Document!.Root["a"];
        Assert.Equal(
            ["1979-05-27T07:32:00", "1979-05-27", "07:32:00"],
            array.Select(v => ((TomlDateTimeValue)v).Value.ToString()));
    }

    [Fact]
    public void A_date_followed_by_a_space_and_a_number_is_not_a_date_time()
    {
        AssertError("a = 1979-05-27 07", "1:16", "expected the end of the line after the value, found '0'");
        AssertError("a = [1979-05-27 07]", "1:17", "expected ',' or ']' after an array element, found '0'");
    }

    // ---- numbers --------------------------------------------------------------------------------

    [Theory]
    [InlineData("-0.0", true)]
    [InlineData("+0.0", false)]
    [InlineData("0.0", false)]
    [InlineData("-0e0", true)]
    [InlineData("-0E-0", true)]
    public void Zero_floats_keep_their_sign(string literal, bool negative)
    {
        var value = FloatValue("a = " + literal);
        Assert.Equal(0.0, value);
        Assert.Equal(negative, double.IsNegative(value));
    }

    [Theory]
    [InlineData("nan")]
    [InlineData("+nan")]
    [InlineData("-nan")]
    public void Nan_parses_with_any_sign(string literal)
    {
        // TOML leaves the NaN encoding to the implementation; this reader does not keep the sign.
        Assert.True(double.IsNaN(FloatValue("a = " + literal)));
        Assert.Contains("\"value\": \"nan\"", TomlTaggedJson.Encode(Parse("a = " + literal).Document!.Root));
    }

    [Theory]
    [InlineData("inf", double.PositiveInfinity)]
    [InlineData("+inf", double.PositiveInfinity)]
    [InlineData("-inf", double.NegativeInfinity)]
    [InlineData("1.7976931348623157e308", double.MaxValue)]
    [InlineData("-1.7976931348623157e308", double.MinValue)]
    [InlineData("4.9e-324", double.Epsilon)]
    [InlineData("1e1_0", 1e10)]
    [InlineData("1e007", 1e7)]
    [InlineData("1_000.000_1", 1000.0001)]
    [InlineData("5e+22", 5e22)]
    [InlineData("6.626e-34", 6.626e-34)]
    [InlineData("0e5", 0.0)]
    [InlineData("3.14159", 3.14159)]
    public void Float_limits_and_forms_parse(string literal, double expected)
    {
        Assert.Equal(expected, FloatValue("a = " + literal));
    }

    [Theory]
    [InlineData("1.", "1:7", "invalid float '1.': a digit must follow the decimal point")]
    [InlineData(".1", "1:5", "expected a value, found '.'")]
    [InlineData("+.1", "1:6", "invalid float '+.1': expected a digit, found '.'")]
    [InlineData("1.e1", "1:7", "invalid float '1.e1': a digit must follow the decimal point")]
    [InlineData("1e", "1:7", "invalid float '1e': the exponent needs digits")]
    [InlineData("1e+", "1:8", "invalid float '1e+': the exponent needs digits")]
    [InlineData("1e_1", "1:7", "invalid float '1e_1': the exponent needs digits")]
    [InlineData("1_.0", "1:6", "invalid float '1_.0': an underscore must be between two digits")]
    [InlineData("1._0", "1:7", "invalid float '1._0': a digit must follow the decimal point")]
    [InlineData("01.0", "1:5", "invalid float '01.0': leading zeros are not allowed")]
    [InlineData("-01.0", "1:5", "invalid float '-01.0': leading zeros are not allowed")]
    [InlineData("00.0", "1:5", "invalid float '00.0': leading zeros are not allowed")]
    [InlineData("1.0.0", "1:8", "invalid float '1.0.0': unexpected '.'")]
    [InlineData("1e1.5", "1:8", "invalid float '1e1.5': unexpected '.'")]
    [InlineData("Inf", "1:5", "invalid value 'Inf': strings must be quoted, booleans are lower-case true/false")]
    [InlineData("NaN", "1:5", "invalid value 'NaN': strings must be quoted, booleans are lower-case true/false")]
    [InlineData("infinity", "1:5", "invalid value 'infinity': strings must be quoted, booleans are lower-case true/false")]
    [InlineData("+-1", "1:6", "invalid integer '+-1': expected a digit, found '-'")]
    public void Malformed_floats_are_rejected(string literal, string position, string message)
    {
        AssertError("a = " + literal, position, message);
    }

    [Theory]
    [InlineData("0x7FFFFFFFFFFFFFFF", long.MaxValue)]
    [InlineData("0x7fff_ffff_ffff_ffff", long.MaxValue)]
    [InlineData("0o777777777777777777777", long.MaxValue)]
    [InlineData("0b111111111111111111111111111111111111111111111111111111111111111", long.MaxValue)]
    [InlineData("0x0000000000000000000000000000000000001", 1L)]
    [InlineData("0xdead_BEEF", 0xDEADBEEFL)]
    [InlineData("0o0", 0L)]
    [InlineData("0b0", 0L)]
    [InlineData("9223372036854775807", long.MaxValue)]
    [InlineData("+9223372036854775807", long.MaxValue)]
    [InlineData("-9223372036854775808", long.MinValue)]
    [InlineData("-9_223_372_036_854_775_808", long.MinValue)]
    [InlineData("-0", 0L)]
    [InlineData("+0", 0L)]
    [InlineData("1_000", 1000L)]
    public void Integer_limits_in_every_base_parse(string literal, long expected)
    {
        Assert.Equal(expected, ((TomlInteger)Parse("a = " + literal).Document!.Root["a"]).Value);
    }

    [Theory]
    [InlineData("0x_1", "1:7", "invalid hexadecimal integer '0x_1': an underscore must be between two digits")]
    [InlineData("0x1_", "1:8", "invalid hexadecimal integer '0x1_': an underscore must be between two digits")]
    [InlineData("0x1__2", "1:8", "invalid hexadecimal integer '0x1__2': an underscore must be between two digits")]
    [InlineData("0X1", "1:6", "invalid integer '0X1': unexpected 'X'")]
    [InlineData("-0x1", "1:7", "invalid integer '-0x1': unexpected 'x'")]
    [InlineData("+0o1", "1:7", "invalid integer '+0o1': unexpected 'o'")]
    [InlineData("0x", "1:6", "invalid integer '0x': unexpected 'x'")]
    [InlineData("0xg", "1:7", "invalid hexadecimal integer '0xg': expected a digit, found 'g'")]
    [InlineData("0o8", "1:7", "invalid octal integer '0o8': expected a digit, found '8'")]
    [InlineData("0b2", "1:7", "invalid binary integer '0b2': expected a digit, found '2'")]
    [InlineData("0b1012", "1:10", "invalid binary integer '0b1012': unexpected '2'")]
    [InlineData("00", "1:5", "invalid integer '00': leading zeros are not allowed")]
    [InlineData("01", "1:5", "invalid integer '01': leading zeros are not allowed")]
    [InlineData("-01", "1:5", "invalid integer '-01': leading zeros are not allowed")]
    [InlineData("0_0", "1:5", "invalid integer '0_0': leading zeros are not allowed")]
    [InlineData("1__0", "1:6", "invalid integer '1__0': an underscore must be between two digits")]
    [InlineData("1_", "1:6", "invalid integer '1_': an underscore must be between two digits")]
    [InlineData("_1", "1:5", "expected a value, found '_'")]
    [InlineData("+", "1:6", "invalid integer '+': expected a digit, found the end of the document")]
    [InlineData("1x", "1:6", "invalid integer '1x': unexpected 'x'")]
    public void Malformed_integers_are_rejected(string literal, string position, string message)
    {
        AssertError("a = " + literal, position, message);
    }

    // ---- keys -----------------------------------------------------------------------------------

    [Theory]
    [InlineData("\"a.b\" = 1", new[] { "a.b" })]
    [InlineData("'a.b' = 1", new[] { "a.b" })]
    [InlineData("a . b . c = 1", new[] { "a", "b", "c" })]
    [InlineData("a\t.\t\"b\"\t.'c' = 1", new[] { "a", "b", "c" })]
    [InlineData("\"\" = 1", new[] { "" })]
    [InlineData("'' = 1", new[] { "" })]
    [InlineData("a.\"\".b = 1", new[] { "a", "", "b" })]
    [InlineData("1.2 = 3", new[] { "1", "2" })]
    [InlineData("3.14159 = 'pi'", new[] { "3", "14159" })]
    [InlineData("true = 1", new[] { "true" })]
    [InlineData("inf.nan = 1", new[] { "inf", "nan" })]
    [InlineData("-_- = 1", new[] { "-_-" })]
    [InlineData("1979-05-27 = 1", new[] { "1979-05-27" })]
    [InlineData("\"\\u00e9\\t\" = 1", new[] { "é\t" })]
    [InlineData("'a\\b' = 1", new[] { "a\\b" })]
    [InlineData("\"ʎǝʞ\" = 1", new[] { "ʎǝʞ" })]
    [InlineData("\"a\\\"b\" = 1", new[] { "a\"b" })]
    public void Keys_decode_to_the_expected_path(string document, string[] path)
    {
        TomlValue value = Parse(document).Document!.Root;
        foreach (var part in path)
        {
            var table = Assert.IsType<TomlTable>(value);
            Assert.Equal(part, Assert.Single(table.Keys));
            value = table[part];
        }
        Assert.IsNotType<TomlTable>(value);
    }

    [Theory]
    [InlineData("[\"\"]\na = 1", "")]
    [InlineData("[ '' ]\na = 1", "")]
    [InlineData("[ \"a.b\" ]\na = 1", "a.b")]
    public void Empty_and_dotted_quoted_names_work_in_headers(string document, string table)
    {
        var root = Parse(document).Document!.Root;
        Assert.Equal(1L, ((TomlInteger)((TomlTable)root[table])["a"]).Value);
    }

    [Theory]
    [InlineData("= 1", "1:1", "a key is missing before '='")]
    [InlineData("a..b = 1", "1:3", "a key part is missing before '.'")]
    [InlineData(".a = 1", "1:1", "a key part is missing before '.'")]
    [InlineData("a. = 1", "1:4", "a key is missing before '='")]
    [InlineData("a.\n= 1", "1:3", "expected a key in the key/value pair, found the end of the line")]
    [InlineData("a", "1:2", "expected '=' after the key a, found the end of the line")]
    [InlineData("a\n= 1", "1:2", "expected '=' after the key a, found the end of the line")]
    [InlineData("a\r\n= 1", "1:2", "expected '=' after the key a, found the end of the line")]
    [InlineData("a b = 1", "1:3", "expected '=' after the key a, found 'b'")]
    [InlineData("a = 1 b = 2", "1:7", "expected the end of the line after the value, found 'b'")]
    [InlineData("a =", "1:4", "the key a has no value after '='")]
    [InlineData("a = # no", "1:5", "the key a has no value after '='")]
    [InlineData("a =\n1", "1:4", "the key a has no value after '='")]
    [InlineData("a = \r\n1", "1:5", "the key a has no value after '='")]
    [InlineData("\"\"\"a\"\"\" = 1", "1:1", "a multi-line string cannot be a key")]
    [InlineData("'''a''' = 1", "1:1", "a multi-line string cannot be a key")]
    [InlineData("\"a\nb\" = 1", "1:1", "the string is not closed before the end of the line (use \"\"\" for multi-line strings)")]
    [InlineData("é = 1", "1:1", "expected a key in the key/value pair, found 'é' (U+00E9) (bare keys may hold only A-Z a-z 0-9 _ -; quote other names)")]
    [InlineData("a\u00A0= 1", "1:2", "expected '=' after the key a, found U+00A0")]
    [InlineData("a = 1\n  \tb.c = x", "2:10", "invalid value 'x': strings must be quoted, booleans are lower-case true/false")]
    public void Malformed_keys_are_reported_precisely(string document, string position, string message)
    {
        AssertError(document, position, message);
    }

    // ---- headers and tables ----------------------------------------------------------------------

    [Theory]
    [InlineData("[]", "1:2", "the table header has an empty key")]
    [InlineData("[[]]", "1:3", "the array-of-tables header has an empty key")]
    [InlineData("[a..b]", "1:4", "a key part is missing before '.'")]
    [InlineData("[a.]", "1:4", "the table header has an empty key")]
    [InlineData("[a", "1:3", "expected ']' to close the table header [a], found the end of the document")]
    [InlineData("[a\nb = 1", "1:3", "expected ']' to close the table header [a], found the end of the line")]
    [InlineData("[a\r\nb = 1", "1:3", "expected ']' to close the table header [a], found the end of the line")]
    [InlineData("[a b]", "1:4", "expected ']' to close the table header [a], found 'b'")]
    [InlineData("[[a]", "1:5", "expected ']]' to close the array-of-tables header [[a]], found the end of the document")]
    [InlineData("[[a] ]", "1:5", "expected ']]' to close the array-of-tables header [[a]], found ' '")]
    [InlineData("[ [a]]", "1:3", "expected a key in the table header, found '[' (bare keys may hold only A-Z a-z 0-9 _ -; quote other names)")]
    [InlineData("[a]]", "1:4", "expected the end of the line after the table header, found ']'")]
    [InlineData("[a] b = 1", "1:5", "expected the end of the line after the table header, found 'b'")]
    [InlineData("[a] # ok\n[b]c", "2:4", "expected the end of the line after the table header, found 'c'")]
    [InlineData("[\"a\nb\"]", "1:2", "the string is not closed before the end of the line (use \"\"\" for multi-line strings)")]
    public void Malformed_headers_are_reported_precisely(string document, string position, string message)
    {
        AssertError(document, position, message);
    }

    [Theory]
    [InlineData("[ a ]\nx = 1")]
    [InlineData("[\ta\t.\tb\t]\nx = 1")]
    [InlineData("[[ a . b ]]\nx = 1")]
    [InlineData("[ \"a\" . 'b' ]\nx = 1")]
    public void Whitespace_inside_headers_is_ignored(string document)
    {
        Assert.True(Parse(document).IsSuccess);
    }

    [Theory]
    [InlineData("[a.b.c]\n[a]\nx = 1")]
    [InlineData("[a.b.c]\n[a.b]\n[a]")]
    [InlineData("[a.b]\n[a.b.c]\n[a]")]
    [InlineData("[[a.b]]\n[a]")]
    [InlineData("[a]\n[[a.b]]\n[[a.b]]")]
    [InlineData("[fruit]\napple.color = 'red'\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true")]
    [InlineData("a.b.c = 1\n[a.b.d]")]
    [InlineData("a.b = 1\n[[a.c]]")]
    [InlineData("[a]\nb.c = 1\nb.d = 2\n[x]\n[a.b.e]")]
    [InlineData("a = {b.c = 1, b.d = 2}")]
    [InlineData("a = {b = [1, {c = 2}]}")]
    [InlineData("[[a]]\n[a.b]\n[[a]]\n[a.b]")]
    [InlineData("[[a]]\n[[a.b]]\n[a.b.c]\n[[a.b]]\n[a.b.c]")]
    [InlineData("[a.b]\nc = 1\n[a]\nd = 2")]
    public void Tables_follow_the_spec_where_it_allows(string document)
    {
        var result = Parse(document);
        Assert.True(result.IsSuccess, $"rejected: {result.Error}");
    }

    [Theory]
    [InlineData("[a]\n[a.b]\n[a]", "3:1", "the table [a] is defined twice (first at 1:1)")]
    [InlineData("[a.b]\n[a]\n[a]", "3:1", "the table [a] is defined twice (first at 2:1)")]
    [InlineData("[fruit]\napple.color = 1\n[fruit.apple]", "3:1", "the table [fruit.apple] was already defined by dotted keys at 2:1")]
    [InlineData("[fruit]\napple.taste.sweet = true\n[fruit.apple.taste]", "3:1", "the table [fruit.apple.taste] was already defined by dotted keys at 2:7")]
    [InlineData("[a.b.c]\n[a]\nb.d = 1", "3:1", "cannot add a.b.d with a dotted key: the table a.b was created by the table header at 1:4; define keys of a.b under its own [a.b] header instead")]
    [InlineData("[a]\nb.c = 1\n[a.b.c]", "3:1", "cannot define the table [a.b.c]: it is already an integer (defined at 2:7)")]
    [InlineData("a = {b = 1}\n[a.c]", "2:2", "cannot add the table [a.c] to the inline table a (defined at 1:5): inline tables are complete")]
    [InlineData("a.b = {c = 1}\na.b.d = 2", "2:3", "cannot add a.b.d to the inline table a.b (defined at 1:7): inline tables are complete")]
    [InlineData("a = {b = {c = 1}, b.d = 2}", "1:19", "cannot add a.b.d to the inline table a.b (defined at 1:10): inline tables are complete")]
    [InlineData("a = [{b = 1}]\n[[a]]", "2:1", "cannot define the array of tables [[a]]: a is already an array (defined at 1:5)")]
    [InlineData("a = [{b = 1}]\n[a.c]", "2:2", "cannot add the table [a.c] to a, which is a static array (defined at 1:5)")]
    [InlineData("a = 1\n[a.b]", "2:2", "cannot define the table [a.b]: a is already an integer (defined at 1:5)")]
    [InlineData("[[a.b]]\n[[a]]", "2:1", "cannot define the array of tables [[a]]: a is already a table (defined at 1:3)")]
    [InlineData("[[a]]\n[a.b]\n[a.b]", "3:1", "the table [a.b] is defined twice (first at 2:1)")]
    [InlineData("[a]\nb = 1\n[a]", "3:1", "the table [a] is defined twice (first at 1:1)")]
    [InlineData("[a]\nx = 1\n[b]\n[a.x]", "4:1", "cannot define the table [a.x]: it is already an integer (defined at 2:5)")]
    public void Tables_follow_the_spec_where_it_forbids(string document, string position, string message)
    {
        AssertError(document, position, message);
    }

    [Fact]
    public void Array_of_tables_subtables_attach_to_the_last_element()
    {
        var root = Parse("""
            [[fruits]]
            name = "apple"

            [fruits.physical]
            color = "red"

            [[fruits.varieties]]
            name = "red delicious"

            [[fruits.varieties]]
            name = "granny smith"

            [[fruits]]
            name = "banana"

            [[fruits.varieties]]
            name = "plantain"
            """).Document!.Root;
        var fruits = (TomlArray)root["fruits"];
        Assert.True(fruits.IsArrayOfTables);
        Assert.Equal(2, fruits.Count);
        var apple = (TomlTable)fruits[0];
        Assert.Equal("red", ((TomlString)((TomlTable)apple["physical"])["color"]).Value);
        Assert.Equal(2, ((TomlArray)apple["varieties"]).Count);
        var banana = (TomlTable)fruits[1];
        Assert.False(banana.ContainsKey("physical"));
        Assert.Equal("plantain", ((TomlString)((TomlTable)((TomlArray)banana["varieties"])[0])["name"]).Value);
    }

    [Fact]
    public void Table_origins_record_how_each_table_was_made()
    {
        var root = Parse("[a.b]\n[a]\nc.d = 1\ne = {f = 1}\n[[g]]").Document!.Root;
        var a = (TomlTable)root["a"];
        Assert.Equal(TomlTableOrigin.Header, a.Origin);
        Assert.Equal(new TomlPosition(2, 1), a.HeaderPosition);
        Assert.Equal(TomlTableOrigin.Header, ((TomlTable)a["b"]).Origin);
        Assert.Equal(TomlTableOrigin.Dotted, ((TomlTable)a["c"]).Origin);
        Assert.Equal(TomlTableOrigin.Inline, ((TomlTable)a["e"]).Origin);
        Assert.Equal(TomlTableOrigin.Header, ((TomlTable)((TomlArray)root["g"])[0]).Origin);
        Assert.Equal(TomlTableOrigin.Root, root.Origin);
    }

    // ---- arrays and inline tables -----------------------------------------------------------------

    [Fact]
    public void Arrays_may_mix_types_and_end_with_a_comma()
    {
        var array = (TomlArray)Parse("a = [1, 'x', 1.5, [2], {b = 1}, true, 1979-05-27,]").Document!.Root["a"];
        Assert.Equal(
            [TomlValueKind.Integer, TomlValueKind.String, TomlValueKind.Float, TomlValueKind.Array, TomlValueKind.Table, TomlValueKind.Boolean, TomlValueKind.DateTime],
            array.Select(v => v.Kind));
        Assert.False(array.IsArrayOfTables);
    }

    [Theory]
    [InlineData("a = [,]", "1:6", "an array cannot start with ','")]
    [InlineData("a = [1,,2]", "1:8", "expected a value between two commas in the array")]
    [InlineData("a = [1 2]", "1:8", "expected ',' or ']' after an array element, found '2'")]
    [InlineData("a = [1", "1:5", "the array of key a is not closed: expected ']'")]
    [InlineData("a = [\n1,\n# c\n", "1:5", "the array of key a is not closed: expected ']'")]
    [InlineData("a = [1,\n2\n3]", "3:1", "expected ',' or ']' after an array element, found '3'")]
    [InlineData("a = [1}", "1:7", "expected ',' or ']' after an array element, found '}'")]
    [InlineData("a = [ = ]", "1:7", "expected a value, found '='")]
    [InlineData("a = { b = 1, }", "1:14", "a trailing comma is not allowed in an inline table")]
    [InlineData("a = {,}", "1:6", "expected a key/value pair in the inline table, found ','")]
    [InlineData("a = { b = 1 c = 2 }", "1:13", "expected ',' or '}' in the inline table, found 'c'")]
    [InlineData("a = { b = 1\n}", "1:12", "an inline table must stay on one line (TOML 1.0): found a line break before '}'")]
    [InlineData("a = {\nb = 1}", "1:6", "an inline table must stay on one line (TOML 1.0): found a line break before '}'")]
    [InlineData("a = { b = 1,\nc = 2 }", "1:13", "an inline table must stay on one line (TOML 1.0): found a line break before '}'")]
    [InlineData("a = { b = 1", "1:5", "the inline table is not closed: expected '}'")]
    [InlineData("a = { b = 1 # c\n}", "1:13", "expected ',' or '}' in the inline table, found '#'")]
    [InlineData("a = { b }", "1:9", "expected '=' after the key b, found '}'")]
    [InlineData("a = { b = }", "1:11", "expected a value, found '}'")]
    [InlineData("a = {b = 1}}", "1:12", "expected the end of the line after the value, found '}'")]
    public void Malformed_arrays_and_inline_tables_are_reported_precisely(string document, string position, string message)
    {
        AssertError(document, position, message);
    }

    [Fact]
    public void Arrays_inside_inline_tables_may_span_lines()
    {
        var root = Parse("a = { b = [\n  1, # one\n  2,\n] }").Document!.Root;
        Assert.Equal(2, ((TomlArray)((TomlTable)root["a"])["b"]).Count);
    }

    [Fact]
    public void Empty_inline_tables_and_arrays_parse()
    {
        var root = Parse("a = {}\nb = { }\nc = []\nd = [ ]\ne = [\n\n]\nf = [{}]").Document!.Root;
        Assert.Equal(0, ((TomlTable)root["a"]).Count);
        Assert.Equal(0, ((TomlTable)root["b"]).Count);
        Assert.Empty((TomlArray)root["c"]);
        Assert.Empty((TomlArray)root["e"]);
        Assert.Equal(0, ((TomlTable)((TomlArray)root["f"])[0]).Count);
    }

    // ---- whole documents ---------------------------------------------------------------------------

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("\t\n \r\n")]
    [InlineData("# only\n")]
    [InlineData("\uFEFF")]
    [InlineData("\uFEFF# bom\r\n")]
    public void Documents_without_items_are_empty_tables(string document)
    {
        Assert.Equal(0, Parse(document).Document!.Root.Count);
    }

    [Fact]
    public void Positions_count_scalar_values_not_utf16_units()
    {
        var root = Parse("\"😀\" = '🎉'\nk = \"日本\"    # 😀\nz = 1").Document!.Root;
        Assert.Equal(new TomlPosition(1, 7), root["😀"].Position);
        Assert.Equal(new TomlPosition(1, 1), root.GetKeyPosition("😀"));
        AssertError("\"😀😀\" = 1 x", "1:10", "expected the end of the line after the value, found 'x'");
        AssertError("a = '🎉' 😀", "1:9", "expected the end of the line after the value, found '😀' (U+1F600)");
    }

    [Fact]
    public void Value_and_key_positions_point_at_what_was_written()
    {
        var root = Parse("[t]\n  k = [ 1,\n    2 ]\n  s.x = \"v\"").Document!.Root;
        var t = (TomlTable)root["t"];
        Assert.Equal(new TomlPosition(1, 1), t.Position);
        Assert.Equal(new TomlPosition(2, 3), t.GetKeyPosition("k"));
        Assert.Equal(new TomlPosition(2, 7), t["k"].Position);
        Assert.Equal(new TomlPosition(3, 5), ((TomlArray)t["k"])[1].Position);
        Assert.Equal(new TomlPosition(4, 3), t["s"].Position);
        Assert.Equal(new TomlPosition(4, 9), ((TomlTable)t["s"])["x"].Position);
    }

    [Fact]
    public void The_strict_entry_point_throws_the_same_error()
    {
        var e = Assert.Throws<TomlException>(() => TomlReader.ParseTable("a = 1\na = 2"));
        Assert.Equal(new TomlPosition(2, 1), e.Error.Position);
        Assert.Equal("2:1: the key a is defined twice (first at 1:1)", e.Message);
        Assert.Equal(1L, ((TomlInteger)TomlReader.ParseTable("a = 1")["a"]).Value);
    }

    [Fact]
    public void The_byte_and_string_entry_points_agree_on_a_byte_order_mark()
    {
        var fromBytes = TomlReader.Parse(Encoding.UTF8.GetPreamble().Concat("a = x"u8.ToArray()).ToArray());
        var fromString = TomlReader.Parse("\uFEFFa = x");
        Assert.Equal(new TomlPosition(1, 5), fromBytes.Error!.Position);
        Assert.Equal(fromBytes.Error, fromString.Error);
    }

    // ---- helpers --------------------------------------------------------------------------------

    private static TomlParseResult Parse(string document)
    {
        var result = TomlReader.Parse(Encoding.UTF8.GetBytes(document));
        Assert.True(result.IsSuccess, $"rejected: {result.Error}");
        return result;
    }

    private static string StringValue(string document) => ((TomlString)Parse(document).Document!.Root["a"]).Value;

    private static double FloatValue(string document) => ((TomlFloat)Parse(document).Document!.Root["a"]).Value;

    private static TomlDateTime DateTimeValue(string document) => ((TomlDateTimeValue)Parse(document).Document!.Root["a"]).Value;

    private static void AssertError(string document, string position, string message)
    {
        var result = TomlReader.Parse(Encoding.UTF8.GetBytes(document));
        Assert.False(result.IsSuccess, $"accepted: {document}");
        Assert.Equal(message, result.Error!.Message);
        Assert.Equal(position, result.Error.Position.ToString());
        Assert.Equal(result.Error, TomlReader.Parse(document).Error);
    }
}
