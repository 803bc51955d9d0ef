using System.Text;
using Trc.Core.Toml;
using TomlReader = Trc.Core.Toml.Toml;

namespace Trc.Core.Tests.Toml;

/// <summary>
/// Inputs built to hurt a parser: deep nesting, huge tokens, many items, broken encodings, control
/// characters. Each must give a positioned error (or the right document when it is valid TOML),
/// never an exception, a stack overflow or a hang. Every parse runs under a 10 s deadline.
/// </summary>
public sealed class TomlHostileInputTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    // ---- nesting --------------------------------------------------------------------------------

    [Fact]
    public void A_hundred_thousand_deep_bracket_header_is_rejected_at_the_third_bracket()
    {
        var error = Fails(new string('[', 100_000));
        Assert.Equal(new TomlPosition(1, 3), error.Position);
        Assert.Contains("expected a key in the array-of-tables header, found '['", error.Message);
    }

    [Fact]
    public void A_hundred_thousand_deep_closed_bracket_header_is_rejected()
    {
        var error = Fails(new string('[', 100_000) + "a" + new string(']', 100_000));
        Assert.Equal(new TomlPosition(1, 3), error.Position);
    }

    [Fact]
    public void A_hundred_thousand_deep_array_value_is_rejected_at_the_depth_limit()
    {
        // "a = " is 4 characters; the 129th '[' is at column 133, and a value there would be at depth 129.
        var error = Fails("a = " + new string('[', 100_000));
        Assert.Equal(new TomlPosition(1, 133), error.Position);
        Assert.Equal("value nests deeper than 128 levels", error.Message);
    }

    [Fact]
    public void A_hundred_thousand_deep_balanced_array_value_is_rejected_at_the_depth_limit()
    {
        var error = Fails("a = " + new string('[', 100_000) + new string(']', 100_000));
        Assert.Equal("value nests deeper than 128 levels", error.Message);
    }

    [Fact]
    public void A_hundred_thousand_deep_inline_table_is_rejected_at_the_depth_limit()
    {
        var sb = new StringBuilder("a = ");
        sb.Insert(sb.Length, "{b = ", 100_000).Append('1').Append('}', 100_000);
        var error = Fails(sb.ToString());
        Assert.Equal(1, error.Position.Line);
        Assert.Contains("nests deeper than 128 levels", error.Message);
    }

    [Fact]
    public void A_hundred_thousand_deep_inline_table_on_a_later_line_reports_that_line()
    {
        var sb = new StringBuilder("x = 1\n\n# deep\na = ");
        sb.Insert(sb.Length, "{b=", 100_000);
        var error = Fails(sb.ToString());
        Assert.Equal(4, error.Position.Line);
    }

    [Fact]
    public void A_dotted_key_with_a_hundred_thousand_parts_is_rejected_at_its_start()
    {
        var error = Fails(string.Join('.', Enumerable.Repeat("a", 100_000)) + " = 1");
        Assert.Equal(new TomlPosition(1, 1), error.Position);
        Assert.Equal("key nests deeper than 128 levels", error.Message);
    }

    [Fact]
    public void A_header_with_a_hundred_thousand_parts_is_rejected_at_its_key()
    {
        var error = Fails("[" + string.Join(" . ", Enumerable.Repeat("'a'", 100_000)) + "]");
        Assert.Equal(new TomlPosition(1, 2), error.Position);
        Assert.Equal("key nests deeper than 128 levels", error.Message);
    }

    [Fact]
    public void A_dotted_key_at_the_depth_limit_parses_and_one_more_part_does_not()
    {
        var at = Parses(string.Join('.', Enumerable.Repeat("k", 128)) + " = 1");
        Assert.Equal(128, Depth(at.Document!.Root));
        var past = Fails(string.Join('.', Enumerable.Repeat("k", 129)) + " = 1");
        Assert.Equal("key nests deeper than 128 levels", past.Message);
    }

    [Fact]
    public void A_table_header_at_the_depth_limit_parses_and_one_more_part_does_not()
    {
        Parses("[" + string.Join('.', Enumerable.Repeat("k", 128)) + "]");
        Parses("[[" + string.Join('.', Enumerable.Repeat("k", 128)) + "]]");
        Assert.Equal("key nests deeper than 128 levels", Fails("[" + string.Join('.', Enumerable.Repeat("k", 129)) + "]").Message);
    }

    [Fact]
    public void Keys_under_a_header_count_the_header_parts()
    {
        var header = "[" + string.Join('.', Enumerable.Repeat("k", 127)) + "]\n";
        Parses(header + "x = 1");
        var error = Fails(header + "x.y = 1");
        Assert.Equal(new TomlPosition(2, 1), error.Position);
        Assert.Equal("key nests deeper than 128 levels", error.Message);
    }

    [Fact]
    public void Arrays_at_the_depth_limit_parse_and_one_more_level_does_not()
    {
        // Depth is the length of the path to a value: the key, then one step per enclosing array.
        Parses("a = " + new string('[', 127) + "1" + new string(']', 127));
        Parses("a = " + new string('[', 128) + new string(']', 128));
        Assert.Equal("value nests deeper than 128 levels", Fails("a = " + new string('[', 128) + "1" + new string(']', 128)).Message);
        Assert.Equal("value nests deeper than 128 levels", Fails("a = " + new string('[', 129) + new string(']', 129)).Message);
    }

    [Fact]
    public void Inline_tables_count_both_the_table_and_its_keys_toward_the_depth()
    {
        // Each "{b = " level costs two: the inline table and the key inside it (see MaxDepth's doc).
        static string Nest(int n) => "a = " + string.Concat(Enumerable.Repeat("{b = ", n)) + "1" + new string('}', n);
        Parses(Nest(63));
        Assert.Equal("key nests deeper than 128 levels", Fails(Nest(64)).Message);
    }

    [Fact]
    public void A_smaller_max_depth_is_honoured_exactly()
    {
        var options = new TomlParserOptions { MaxDepth = 3 };
        Assert.True(TomlReader.Parse("a.b.c = 1", options).IsSuccess);
        Assert.True(TomlReader.Parse("a = [[1]]", options).IsSuccess);
        Assert.True(TomlReader.Parse("[a.b]\nc = 1", options).IsSuccess);
        Assert.Equal("key nests deeper than 3 levels", TomlReader.Parse("a.b.c.d = 1", options).Error!.Message);
        Assert.Equal("value nests deeper than 3 levels", TomlReader.Parse("a = [[[1]]]", options).Error!.Message);
        Assert.Equal("key nests deeper than 3 levels", TomlReader.Parse("[a.b.c]\nd = 1", options).Error!.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData(TomlParserOptions.MaxAllowedDepth + 1)]
    [InlineData(1_000_000)]
    public void A_max_depth_outside_the_safe_range_is_refused_when_the_options_are_made(int maxDepth)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TomlParserOptions { MaxDepth = maxDepth });
        Assert.Contains("between 1 and 512", e.Message);
    }

    [Fact]
    public void The_largest_allowed_depth_parses_and_encodes_without_exhausting_the_stack()
    {
        var options = new TomlParserOptions { MaxDepth = TomlParserOptions.MaxAllowedDepth };
        var depth = TomlParserOptions.MaxAllowedDepth - 1;
        var text = "a = " + new string('[', depth) + "1" + new string(']', depth);
        var result = Within(() => TomlReader.Parse(text, options));
        Assert.True(result.IsSuccess, result.Error?.ToString());
        Assert.Contains("\"integer\"", TomlTaggedJson.Encode(result.Document!.Root));
        Assert.False(Within(() => TomlReader.Parse("a = " + new string('[', depth + 2), options)).IsSuccess);
    }

    [Fact]
    public void Many_array_of_tables_levels_stay_within_what_the_json_encoder_accepts()
    {
        // Array-of-tables levels are not counted by MaxDepth, so the tree can be about twice as deep
        // as the limit; the tagged JSON encoder must still cope.
        var sb = new StringBuilder();
        for (var i = 1; i <= 128; i++)
        {
            sb.Append("[[").AppendJoin('.', Enumerable.Repeat("k", i)).Append("]]\n");
        }
        var result = Parses(sb.ToString());
        TomlTaggedJson.Encode(result.Document!.Root);
    }

    // ---- huge tokens and many items ---------------------------------------------------------------

    [Fact]
    public void A_one_megabyte_bare_key_parses()
    {
        var key = new string('k', 1 << 20);
        var root = Parses(key + " = 1").Document!.Root;
        Assert.Equal(key, Assert.Single(root.Keys));
    }

    [Fact]
    public void A_one_megabyte_quoted_key_parses_with_its_escapes_decoded()
    {
        var key = string.Concat(Enumerable.Repeat("é.\\\"", 1 << 18));
        var root = Parses("\"" + key + "\" = 1").Document!.Root;
        Assert.Equal(key.Replace("\\\"", "\"", StringComparison.Ordinal), Assert.Single(root.Keys));
    }

    [Fact]
    public void A_duplicate_one_megabyte_bare_key_gives_a_short_message()
    {
        var key = new string('k', 1 << 20);
        var error = Fails(key + " = 1\n" + key + " = 2");
        Assert.Equal(new TomlPosition(2, 1), error.Position);
        Assert.StartsWith("the key kkkk", error.Message);
        Assert.EndsWith("… is defined twice (first at 1:1)", error.Message);
        Assert.True(error.Message.Length < 200, $"message is {error.Message.Length} characters long");
    }

    [Fact]
    public void A_duplicate_one_megabyte_quoted_key_gives_a_short_message()
    {
        var key = new string('q', 1 << 20) + " with space";
        var error = Fails("\"" + key + "\" = 1\n'" + key + "' = 2");
        Assert.Equal(new TomlPosition(2, 1), error.Position);
        Assert.Contains("is defined twice", error.Message);
        Assert.True(error.Message.Length < 200, $"message is {error.Message.Length} characters long");
    }

    [Fact]
    public void A_duplicate_one_megabyte_table_header_gives_a_short_message()
    {
        var key = new string('t', 1 << 20);
        var error = Fails("[" + key + "]\n[" + key + "]");
        Assert.Equal(new TomlPosition(2, 1), error.Position);
        Assert.True(error.Message.Length < 200, $"message is {error.Message.Length} characters long");
    }

    [Fact]
    public void A_one_megabyte_key_without_equals_gives_a_short_message_at_the_right_column()
    {
        var error = Fails(new string('k', 1 << 20) + " 1");
        Assert.Equal(new TomlPosition(1, (1 << 20) + 2), error.Position);
        Assert.True(error.Message.Length < 200, $"message is {error.Message.Length} characters long");
    }

    [Theory]
    [InlineData("\"", "\"")]
    [InlineData("'", "'")]
    [InlineData("\"\"\"", "\"\"\"")]
    [InlineData("'''", "'''")]
    public void A_ten_megabyte_string_value_parses(string open, string close)
    {
        var text = new string('x', 10 << 20);
        var root = Parses("a = " + open + text + close).Document!.Root;
        Assert.Equal(text, ((TomlString)root["a"]).Value);
    }

    [Fact]
    public void A_ten_megabyte_unclosed_string_is_reported_at_its_opening_quote()
    {
        var error = Fails("a = \"" + new string('x', 10 << 20));
        Assert.Equal(new TomlPosition(1, 5), error.Position);
        Assert.Contains("not closed", error.Message);
    }

    [Fact]
    public void A_ten_megabyte_integer_is_out_of_range_with_a_short_message()
    {
        var error = Fails("a = " + new string('7', 10 << 20));
        Assert.Equal(new TomlPosition(1, 5), error.Position);
        Assert.Contains("out of the 64-bit range", error.Message);
        Assert.True(error.Message.Length < 200);
    }

    [Fact]
    public void A_ten_megabyte_fraction_parses()
    {
        var value = ((TomlFloat)Parses("a = 0." + new string('3', 10 << 20)).Document!.Root["a"]).Value;
        Assert.Equal(1.0 / 3, value, 15);
    }

    [Fact]
    public void A_ten_megabyte_comment_is_kept()
    {
        var result = Parses("# " + new string('c', 10 << 20));
        Assert.Equal(10 << 20, Assert.Single(result.Document!.FooterComments).Length - 1);
    }

    [Fact]
    public void Two_hundred_thousand_keys_parse()
    {
        var sb = new StringBuilder();
        for (var i = 0; i < 200_000; i++)
        {
            sb.Append('k').Append(i).Append(" = ").Append(i).Append('\n');
        }
        var root = Parses(sb.ToString()).Document!.Root;
        Assert.Equal(200_000, root.Count);
        Assert.Equal(199_999L, ((TomlInteger)root["k199999"]).Value);
    }

    [Fact]
    public void A_duplicate_after_two_hundred_thousand_keys_is_found()
    {
        var sb = new StringBuilder();
        for (var i = 0; i < 200_000; i++)
        {
            sb.Append('k').Append(i).Append(" = ").Append(i).Append('\n');
        }
        sb.Append("k123456 = 0\n");
        var error = Fails(sb.ToString());
        Assert.Equal(new TomlPosition(200_001, 1), error.Position);
        Assert.Equal("the key k123456 is defined twice (first at 123457:1)", error.Message);
    }

    [Fact]
    public void Fifty_thousand_array_of_tables_headers_parse()
    {
        var sb = new StringBuilder();
        for (var i = 0; i < 50_000; i++)
        {
            sb.Append("[[a]]\nn = ").Append(i).Append('\n');
        }
        var array = (TomlArray)Parses(sb.ToString()).Document!.Root["a"];
        Assert.Equal(50_000, array.Count);
        Assert.Equal(49_999L, ((TomlInteger)((TomlTable)array[^1])["n"]).Value);
    }

    [Fact]
    public void Fifty_thousand_nested_array_of_tables_headers_parse()
    {
        var sb = new StringBuilder();
        for (var i = 0; i < 50_000; i++)
        {
            sb.Append("[[a]]\n[[a.b]]\n[a.b.c]\n");
        }
        var array = (TomlArray)Parses(sb.ToString()).Document!.Root["a"];
        Assert.Equal(50_000, array.Count);
    }

    [Fact]
    public void A_million_blank_lines_parse_and_the_next_error_has_the_right_line()
    {
        Parses(new string('\n', 1_000_000) + "a = 1");
        Assert.Equal(new TomlPosition(1_000_001, 5), Fails(string.Concat(Enumerable.Repeat("\r\n", 1_000_000)) + "a = ?").Position);
    }

    [Fact]
    public void A_two_hundred_thousand_element_array_on_one_line_parses_in_linear_time()
    {
        // Each value records its column; counting columns from the start of the line for every
        // value made this quadratic (80,000 elements took 23 s).
        var text = "a = [" + string.Join(",", Enumerable.Repeat("1", 200_000)) + "]";
        var array = (TomlArray)Parses(text).Document!.Root["a"];
        Assert.Equal(200_000, array.Count);
        Assert.Equal(new TomlPosition(1, 6 + (2 * 199_999)), array[^1].Position);
    }

    [Fact]
    public void A_hundred_thousand_key_inline_table_on_one_line_parses_in_linear_time()
    {
        var text = "a = {" + string.Join(", ", Enumerable.Range(0, 100_000).Select(i => $"k{i} = {i}")) + "}";
        var table = (TomlTable)Parses(text).Document!.Root["a"];
        Assert.Equal(100_000, table.Count);
    }

    [Fact]
    public void A_hundred_thousand_emoji_strings_on_one_line_have_columns_in_scalar_values()
    {
        var text = "a = [" + string.Join(",", Enumerable.Repeat("\"😀\"", 100_000)) + "]";
        var array = (TomlArray)Parses(text).Document!.Root["a"];
        // Each element is 4 scalar values wide including its comma: "😀",
        Assert.Equal(new TomlPosition(1, 6 + (4 * 99_999)), array[^1].Position);
    }

    // ---- encodings ------------------------------------------------------------------------------

    public static TheoryData<string, byte[], int, int> InvalidUtf8Cases() => new()
    {
        // name, document, expected line, expected column of the bad byte
        { "bare key", Bytes("ok = 1\nk", Raw(0xFF), "y = 1\n"), 2, 2 },
        { "quoted key", Bytes("\"k", Raw(0xC3), "\" = 1\n"), 1, 3 },
        { "basic string", Bytes("a = 1\nb = \"é", Raw(0xE9, 0x80), "\"\n"), 2, 7 },
        { "literal string", Bytes("a = 'x", Raw(0xC0, 0x80), "'\n"), 1, 7 },
        { "multi-line basic string", Bytes("a = \"\"\"\nline one\nline ", Raw(0xED, 0xA0, 0x80), "\n\"\"\""), 3, 6 },
        { "multi-line literal string", Bytes("a = '''\n\n\n", Raw(0xF4, 0x90, 0x80, 0x80), "'''"), 4, 1 },
        { "comment", Bytes("a = 1 # caf", Raw(0x80), "\n"), 1, 12 },
        { "comment line", Bytes("# fine\n#", Raw(0xF8, 0x88, 0x80, 0x80, 0x80), "\n"), 2, 2 },
        { "value", Bytes("a = 1", Raw(0xFE), "\n"), 1, 6 },
        { "table header", Bytes("[tab", Raw(0xC3, 0x28), "le]\n"), 1, 5 },
        { "array element after lines", Bytes("a = [\n  1,\n  ", Raw(0xE2, 0x82), "\n]"), 3, 3 },
        { "after multi-byte text", Bytes("a = \"日本語\" # ", Raw(0xF0, 0x9F, 0x98), "\n"), 1, 13 },
        { "truncated at the end", Bytes("a = \"x\"\n", Raw(0xE2)), 2, 1 },
        { "after CRLF lines", Bytes("a = 1\r\nb = 2\r\n", Raw(0x80)), 3, 1 },
    };

    [Theory]
    [MemberData(nameof(InvalidUtf8Cases))]
    public void Invalid_utf8_is_reported_at_the_bad_byte(string name, byte[] document, int line, int column)
    {
        var error = Fails(document);
        Assert.True(new TomlPosition(line, column) == error.Position, $"{name}: expected {line}:{column}, got {error.Position}");
        Assert.StartsWith("invalid UTF-8: the sequence starting with byte 0x", error.Message);
    }

    [Fact]
    public void Invalid_utf8_reports_the_byte_offset_counting_the_byte_order_mark()
    {
        var error = Fails(Bytes(Raw(0xEF, 0xBB, 0xBF), "a = 1\n#", Raw(0xFF)));
        Assert.Equal(new TomlPosition(2, 2), error.Position);
        Assert.Equal("invalid UTF-8: the sequence starting with byte 0xFF at byte offset 10 is not valid UTF-8", error.Message);
    }

    [Fact]
    public void A_utf16_little_endian_file_is_rejected_at_its_byte_order_mark()
    {
        var bytes = Bytes(Encoding.Unicode.GetPreamble(), Encoding.Unicode.GetBytes("a = 1\n"));
        var error = Fails(bytes);
        Assert.Equal(new TomlPosition(1, 1), error.Position);
        Assert.Contains("0xFF", error.Message);
    }

    [Fact]
    public void A_utf16_big_endian_file_is_rejected_at_its_byte_order_mark()
    {
        var error = Fails(Bytes(Encoding.BigEndianUnicode.GetPreamble(), Encoding.BigEndianUnicode.GetBytes("a = 1\n")));
        Assert.Equal(new TomlPosition(1, 1), error.Position);
        Assert.Contains("0xFE", error.Message);
    }

    [Fact]
    public void A_utf16_file_without_byte_order_mark_is_rejected_at_its_first_nul()
    {
        var error = Fails(Encoding.Unicode.GetBytes("a = 1\n"));
        Assert.Equal(new TomlPosition(1, 2), error.Position);
        Assert.Contains("U+0000", error.Message);
    }

    [Fact]
    public void A_utf32_file_is_rejected()
    {
        Fails(Encoding.UTF32.GetPreamble().Concat(Encoding.UTF32.GetBytes("a = 1\n")).ToArray());
    }

    [Fact]
    public void A_doubled_byte_order_mark_is_rejected_with_a_position()
    {
        var error = Fails(Bytes(Raw(0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF), "a = 1"));
        Assert.Equal(new TomlPosition(1, 1), error.Position);
        Assert.Contains("U+FEFF", error.Message);
    }

    [Fact]
    public void A_byte_order_mark_alone_is_an_empty_document()
    {
        var result = Parses(Bytes(Raw(0xEF, 0xBB, 0xBF)));
        Assert.True(result.Document!.Syntax.HadByteOrderMark);
        Assert.Equal(0, result.Document.Root.Count);
    }

    [Theory]
    [InlineData("<D800>a = 1", 1, 1)]
    [InlineData("a = \"<DC00>\"", 1, 6)]
    [InlineData("a = 'x<D83D>'", 1, 7)]
    [InlineData("# <DE00>\na = 1", 1, 3)]
    [InlineData("a = 1\n\"<D83D><D83D>\" = 2", 2, 2)]
    [InlineData("a = 1 <DBFF>", 1, 7)]
    [InlineData("a = '😀<DC00>'", 1, 7)]
    [InlineData("\uFEFFa = \"<D800>", 1, 6)]
    public void A_lone_surrogate_in_a_string_document_is_a_positioned_error(string template, int line, int column)
    {
        // Attribute strings cannot carry lone surrogates, so the template names them as <XXXX>. A
        // string holding one is not Unicode text, so it cannot be a TOML document; it used to be
        // accepted, or throw ArgumentOutOfRangeException while describing it for the message.
        var document = System.Text.RegularExpressions.Regex.Replace(
            template, "<([0-9A-F]{4})>", m => ((char)Convert.ToInt32(m.Groups[1].Value, 16)).ToString());
        var result = Within(() => TomlReader.Parse(document));
        Assert.False(result.IsSuccess, "a lone surrogate was accepted");
        Assert.Equal(new TomlPosition(line, column), result.Error!.Position);
        Assert.StartsWith("invalid UTF-16: U+", result.Error.Message);
        Assert.EndsWith("is a lone surrogate, not a Unicode scalar value", result.Error.Message);
    }

    [Fact]
    public void Surrogate_pairs_in_a_string_document_are_fine()
    {
        var root = Within(() => TomlReader.Parse("\"😀\" = '🎉'")).Document!.Root;
        Assert.Equal("🎉", ((TomlString)root["😀"]).Value);
    }

    // ---- numbers --------------------------------------------------------------------------------

    [Theory]
    [InlineData("9223372036854775808")]
    [InlineData("+9223372036854775808")]
    [InlineData("-9223372036854775809")]
    [InlineData("9_223_372_036_854_775_808")]
    [InlineData("18446744073709551615")]
    [InlineData("18446744073709551616")]
    [InlineData("0x8000000000000000")]
    [InlineData("0xFFFFFFFFFFFFFFFF")]
    [InlineData("0x1_0000_0000_0000_0000")]
    [InlineData("0o1000000000000000000000")]
    [InlineData("0b1000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("99999999999999999999999999999999999999999999999999999999999999999999999999")]
    public void Integers_outside_64_bits_are_rejected_with_the_range_in_the_message(string literal)
    {
        var error = Fails("n = " + literal);
        Assert.Equal(new TomlPosition(1, 5), error.Position);
        Assert.EndsWith("is out of the 64-bit range (-9223372036854775808 to 9223372036854775807)", error.Message);
    }

    [Theory]
    [InlineData("1e400")]
    [InlineData("-1e400")]
    [InlineData("1.8e308")]
    [InlineData("1e99999999999999999999999999999")]
    public void Finite_float_literals_that_overflow_are_rejected(string literal)
    {
        var error = Fails("f = " + literal);
        Assert.Equal(new TomlPosition(1, 5), error.Position);
        Assert.Equal($"float '{literal}' is out of the range of a 64-bit float", error.Message);
    }

    [Theory]
    [InlineData("1e-400")]
    [InlineData("1e-99999999999999999999999999999")]
    public void Float_literals_that_underflow_become_zero(string literal)
    {
        Assert.Equal(0.0, ((TomlFloat)Parses("f = " + literal).Document!.Root["f"]).Value);
    }

    // ---- duplicates -------------------------------------------------------------------------------

    public static TheoryData<string, string, string> DuplicateCases() => new()
    {
        // document, position of the error, message
        { "a = 1\n\"a\" = 2", "2:1", "the key a is defined twice (first at 1:1)" },
        { "a = 1\n'a' = 2", "2:1", "the key a is defined twice (first at 1:1)" },
        { "'a' = 1\n\"a\" = 2", "2:1", "the key a is defined twice (first at 1:1)" },
        { "\"\\u0061\" = 1\na = 2", "2:1", "the key a is defined twice (first at 1:1)" },
        { "\"\" = 1\n'' = 2", "2:1", "the key \"\" is defined twice (first at 1:1)" },
        { "a.b = 1\na . \"b\" = 2", "2:5", "the key a.b is defined twice (first at 1:3)" },
        { "a.b = 1\n[a]", "2:1", "the table [a] was already defined by dotted keys at 1:1" },
        { "[t]\na.b = 1\n[t.a]", "3:1", "the table [t.a] was already defined by dotted keys at 2:1" },
        { "[a]\n[\"a\"]", "2:1", "the table [a] is defined twice (first at 1:1)" },
        { "[a.b]\n[a]\n['a']", "3:1", "the table [a] is defined twice (first at 2:1)" },
        { "[a]\nb = 1\n[a.b]", "3:1", "cannot define the table [a.b]: it is already an integer (defined at 2:5)" },
        { "[a]\nb = 1\n[a]\nc = 2", "3:1", "the table [a] is defined twice (first at 1:1)" },
        { "a = {b = 1, 'b' = 2}", "1:13", "the key a.b is defined twice (first at 1:6)" },
        { "a = {b.c = 1, b = 2}", "1:15", "the key a.b is defined twice (first at 1:6)" },
        { "a = {}\n[a]", "2:1", "the table [a] was already defined as an inline table at 1:5" },
        { "a = {}\na.b = 1", "2:1", "cannot add a.b to the inline table a (defined at 1:5): inline tables are complete" },
        { "a = [1]\n[[a]]", "2:1", "cannot define the array of tables [[a]]: a is already an array (defined at 1:5)" },
        { "[[a]]\n[a]", "2:1", "cannot define the table [a]: it is already an array of tables (defined at 1:1)" },
        { "a = 1\na.b = 2", "2:1", "cannot use a as a table: it is already an integer (defined at 1:5)" },
        { "[a.b]\n[a]\nb.c = 1", "3:1", "cannot add a.b.c with a dotted key: the table a.b was defined by a header at 1:1; add the key under that header instead" },
    };

    [Theory]
    [MemberData(nameof(DuplicateCases))]
    public void A_duplicate_in_any_form_is_rejected_where_it_is_redefined(string document, string position, string message)
    {
        var error = Fails(document);
        Assert.Equal(position, error.Position.ToString());
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void Keys_differing_only_in_unicode_normalisation_are_distinct()
    {
        var root = Parses("\"\u00E9\" = 1\n\"e\u0301\" = 2").Document!.Root;
        Assert.Equal(2, root.Count);
    }

    // ---- control characters -----------------------------------------------------------------------

    public static TheoryData<string, string> LoneCarriageReturnCases() => new()
    {
        // document (with a lone CR), position of the error
        { "\r", "1:1" },
        { "a = 1\r", "1:6" },
        { "a = 1\rb = 2", "1:6" },
        { "a\r= 1", "1:2" },
        { "a =\r1", "1:4" },
        { "a = \r", "1:5" },
        { "a = \"x\ry\"", "1:7" },
        { "a = 'x\ry'", "1:7" },
        { "a = \"\"\"x\ry\"\"\"", "1:9" },
        { "a = '''x\ry'''", "1:9" },
        { "a = \"\"\"\r\nx\\\ry\"\"\"", "2:3" },
        { "a = \"\"\"\rx\"\"\"", "1:8" },
        { "# comment\r", "1:10" },
        { "# comment\rstill = 1\n", "1:10" },
        { "a = 1 # comment\r", "1:16" },
        { "a = [1,\r2]", "1:8" },
        { "a = [\r]", "1:6" },
        { "a = { b = 1,\r c = 2 }", "1:13" },
        { "a = { b = 1\r}", "1:12" },
        { "[t\r]", "1:3" },
        { "[t]\r", "1:4" },
        { "[t]\ra = 1", "1:4" },
        { "[[t]]\r\n[[t]]\r", "2:6" },
        { "a = 2024-01-01\r", "1:15" },
        { "a = 2024-01-01T00:00:00\r", "1:24" },
        { "a = true\r", "1:9" },
        { "a.\rb = 1", "1:3" },
        { "\"k\"\r= 1", "1:4" },
    };

    [Theory]
    [MemberData(nameof(LoneCarriageReturnCases))]
    public void A_lone_carriage_return_is_rejected_where_it_stands(string document, string position)
    {
        var error = Fails(document);
        Assert.Equal(position, error.Position.ToString());
        // Whatever the context, the message must name the character, not call it a line end.
        Assert.True(
            error.Message.Contains("U+000D", StringComparison.Ordinal),
            $"the message does not name the carriage return: {error.Message}");
    }

    public static TheoryData<string, string> NulCases() => new()
    {
        { "\0", "1:1" },
        { "a\0 = 1", "1:2" },
        { "a = \0", "1:5" },
        { "a = 1\0", "1:6" },
        { "a = \"\0\"", "1:6" },
        { "a = '\0'", "1:6" },
        { "a = \"\"\"\n\0\"\"\"", "2:1" },
        { "a = '''\0'''", "1:8" },
        { "# \0", "1:3" },
        { "a = 1 #\0", "1:8" },
        { "[\0]", "1:2" },
        { "a = [1, \0]", "1:9" },
        { "a = {\0}", "1:6" },
        { "\"a\0\" = 1", "1:3" },
        { "a = 1979-05-27\0", "1:15" },
    };

    [Theory]
    [MemberData(nameof(NulCases))]
    public void A_nul_byte_is_rejected_where_it_stands(string document, string position)
    {
        var error = Fails(document);
        Assert.Equal(position, error.Position.ToString());
        Assert.Contains("U+0000", error.Message);
        Assert.DoesNotContain('\0', error.Message);
    }

    [Fact]
    public void An_escaped_nul_is_a_valid_string_and_key()
    {
        var root = Parses("\"k\\u0000\" = \"v\\u0000\"").Document!.Root;
        Assert.Equal("v\0", ((TomlString)root["k\0"]).Value);
        Assert.Contains("\\u0000", TomlTaggedJson.Encode(root));
    }

    [Theory]
    [InlineData("a = 1\u001B[2J")]
    [InlineData("a = 1979-05-27T00:00:00\u001B]0;pwned\u0007")]
    [InlineData("a = tru\u0008e")]
    [InlineData("a = 0x\u007F")]
    [InlineData("a = 1.5\u009B31m")]
    public void Error_messages_never_echo_raw_control_characters(string document)
    {
        // A CLI prints these messages to a terminal: an echoed ESC would let a file drive it.
        var error = Fails(document);
        Assert.DoesNotContain(error.Message, c => char.IsControl(c));
    }

    [Fact]
    public void Key_names_in_messages_escape_c1_control_characters()
    {
        // U+009B is an 8-bit CSI: valid unescaped in a TOML basic string, so the key is legal.
        var error = Fails("\"k\u009B31m\" = 1\n\"k\\u009B31m\" = 2");
        Assert.Equal("the key \"k\\u009B31m\" is defined twice (first at 1:1)", error.Message);
    }

    [Theory]
    [InlineData("a = 1", 40)]
    [InlineData("a = 1979-05-27T07:32:00", 40)]
    [InlineData("a = 0x", 40)]
    [InlineData("a = +1.", 40)]
    public void Error_messages_never_split_a_surrogate_pair(string prefix, int emoji)
    {
        var error = Fails(prefix + string.Concat(Enumerable.Repeat("😀", emoji)));
        Assert.True(IsWellFormedUtf16(error.Message), $"the message has a lone surrogate: {error.Message}");
    }

    [Fact]
    public void A_duplicate_long_emoji_key_message_does_not_split_a_surrogate_pair()
    {
        var key = string.Concat(Enumerable.Repeat("😀", 100));
        var error = Fails($"\"{key}\" = 1\n\"{key}\" = 2");
        Assert.True(IsWellFormedUtf16(error.Message), $"the message has a lone surrogate: {error.Message}");
        Assert.Contains("is defined twice", error.Message);
    }

    // ---- helpers --------------------------------------------------------------------------------

    internal static byte[] Bytes(params object[] parts)
    {
        var buffer = new List<byte>();
        foreach (var part in parts)
        {
            buffer.AddRange(part switch
            {
                string s => Encoding.UTF8.GetBytes(s),
                byte[] b => b,
                _ => throw new ArgumentException($"unsupported part {part.GetType()}"),
            });
        }
        return buffer.ToArray();
    }

    internal static byte[] Raw(params byte[] bytes) => bytes;

    internal static bool IsWellFormedUtf16(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(s[i]))
            {
                return false;
            }
        }
        return true;
    }

    private static int Depth(TomlValue value) => value switch
    {
        TomlTable t => t.Count == 0 ? 0 : 1 + t.Select(kv => Depth(kv.Value)).Max(),
        TomlArray a => a.Count == 0 ? 0 : 1 + a.Select(Depth).Max(),
        _ => 0,
    };

    private static T Within<T>(Func<T> parse)
    {
        var task = Task.Run(parse);
        Assert.True(task.Wait(Deadline), $"parsing did not finish within {Deadline.TotalSeconds} s");
        return task.Result;
    }

    private static TomlParseResult Parses(string document) => Parses(Encoding.UTF8.GetBytes(document));

    private static TomlParseResult Parses(byte[] document)
    {
        var result = Within(() => TomlReader.Parse(document));
        Assert.True(result.IsSuccess, $"rejected: {result.Error}");
        return result;
    }

    private static TomlError Fails(string document)
    {
        // The string and byte entry points must agree on valid UTF-16/UTF-8 input.
        var fromString = Within(() => TomlReader.Parse(document));
        var fromBytes = Fails(Encoding.UTF8.GetBytes(document));
        Assert.Equal(fromBytes, fromString.Error);
        return fromBytes;
    }

    private static TomlError Fails(byte[] document)
    {
        var result = Within(() => TomlReader.Parse(document));
        Assert.False(result.IsSuccess, "accepted an invalid document");
        var error = result.Error!;
        Assert.True(error.Position.Line >= 1 && error.Position.Column >= 1, $"bad position {error.Position}");
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
        return error;
    }
}
