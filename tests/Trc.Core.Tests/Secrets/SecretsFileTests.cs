using System.Text;
using Trc.Core.Secrets;

namespace Trc.Core.Tests.Secrets;

public sealed class SecretsFileTests
{
    private const string Header = "# TRC_SECRETS_V1\n";

    // ---- Reading: what the format accepts ----

    [Fact]
    public void A_file_with_only_the_header_has_no_secrets()
    {
        Assert.Empty(Parsed(Header));
    }

    [Fact]
    public void The_header_alone_without_its_final_LF_is_accepted()
    {
        Assert.Empty(Parsed("# TRC_SECRETS_V1"));
    }

    [Fact]
    public void A_missing_final_LF_on_the_last_secret_is_accepted()
    {
        var secrets = Parsed(Header + "A=1\nB=2");
        Assert.Equal(["A", "B"], secrets.Select(s => s.Key));
        Assert.Equal("2"u8.ToArray(), secrets[1].Value);
    }

    [Fact]
    public void Values_are_raw_and_whitespace_is_significant()
    {
        var secrets = Parsed(Header + "A=  spaced  \nB=\t\nC= \n");
        Assert.Equal("  spaced  "u8.ToArray(), secrets[0].Value);
        Assert.Equal("\t"u8.ToArray(), secrets[1].Value);
        Assert.Equal(" "u8.ToArray(), secrets[2].Value);
    }

    [Fact]
    public void The_value_is_everything_after_the_first_equals_sign()
    {
        var secrets = Parsed(Header + "A==b=c=\n");
        Assert.Equal("=b=c="u8.ToArray(), secrets[0].Value);
    }

    [Fact]
    public void An_empty_value_is_allowed()
    {
        var secrets = Parsed(Header + "EMPTY=\n");
        Assert.Equal("EMPTY", secrets[0].Key);
        Assert.Empty(secrets[0].Value);
    }

    [Fact]
    public void A_hash_inside_a_value_is_part_of_the_value_not_a_comment()
    {
        var secrets = Parsed(Header + "A=x # not a comment\nB=#\n");
        Assert.Equal("x # not a comment"u8.ToArray(), secrets[0].Value);
        Assert.Equal("#"u8.ToArray(), secrets[1].Value);
    }

    [Fact]
    public void Comment_lines_and_empty_lines_are_ignored()
    {
        var secrets = Parsed(Header + "\n# a comment, with = in it\n\nA=1\n#\n\n");
        Assert.Single(secrets);
        Assert.Equal("A", secrets[0].Key);
    }

    [Fact]
    public void Secrets_keep_the_order_of_the_file()
    {
        var secrets = Parsed(Header + "Z=1\nA=2\n_9=3\n");
        Assert.Equal(["Z", "A", "_9"], secrets.Select(s => s.Key));
    }

    [Fact]
    public void Keys_may_use_upper_case_letters_digits_and_underscores()
    {
        var secrets = Parsed(Header + "ABC_123=x\n9=y\n_=z\n");
        Assert.Equal(["ABC_123", "9", "_"], secrets.Select(s => s.Key));
    }

    [Fact]
    public void A_key_of_255_bytes_is_accepted()
    {
        var key = new string('K', 255);
        Assert.Equal(key, Parsed(Header + key + "=v\n")[0].Key);
    }

    [Fact]
    public void Multi_byte_UTF8_and_control_characters_other_than_CR_LF_NUL_are_raw_values()
    {
        var secrets = Parsed(Header + "A=pässwörd 🔑 \u001b[0m\u007f\n");
        Assert.Equal(Encoding.UTF8.GetBytes("pässwörd 🔑 \u001b[0m\u007f"), secrets[0].Value);
    }

    [Fact]
    public void A_base64_value_is_decoded_to_its_exact_bytes()
    {
        var secrets = Parsed(Header + "A=base64:AA0KAP8=\n");
        Assert.Equal(new byte[] { 0x00, 0x0D, 0x0A, 0x00, 0xFF }, secrets[0].Value);
    }

    [Fact]
    public void Base64_with_nothing_after_the_prefix_is_the_empty_value()
    {
        Assert.Empty(Parsed(Header + "A=base64:\n")[0].Value);
    }

    [Fact]
    public void A_text_value_may_be_base64_encoded_even_when_it_need_not_be()
    {
        Assert.Equal("hunter2"u8.ToArray(), Parsed(Header + "A=base64:aHVudGVyMg==\n")[0].Value);
    }

    // ---- Reading: header, BOM, size ----

    [Fact]
    public void An_empty_file_is_rejected_for_its_missing_header()
    {
        var error = Rejected(""u8.ToArray());
        Assert.Equal((1, 1, 0L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("empty", error.Message);
        Assert.Contains("# TRC_SECRETS_V1", error.Message);
    }

    [Fact]
    public void A_file_without_the_header_is_rejected_without_echoing_its_first_line()
    {
        var error = Rejected("DB_PASSWORD=hunter2\n");
        Assert.Equal((1, 1, 0L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("missing header", error.Message);
        Assert.DoesNotContain("hunter2", error.Message);
    }

    [Fact]
    public void Another_version_of_the_header_is_rejected_as_unsupported()
    {
        var error = Rejected("# TRC_SECRETS_V2\nA=1\n");
        Assert.Equal(1, error.Line);
        Assert.Contains("unsupported", error.Message);
    }

    [Fact]
    public void A_header_with_trailing_whitespace_is_rejected()
    {
        var error = Rejected("# TRC_SECRETS_V1 \nA=1\n");
        Assert.Equal(1, error.Line);
    }

    [Fact]
    public void A_UTF8_byte_order_mark_is_rejected()
    {
        var error = Rejected([0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(Header)]);
        Assert.Equal((1, 1, 0L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("byte order mark", error.Message);
    }

    [Fact]
    public void A_file_over_4_MiB_is_rejected_before_it_is_read()
    {
        var file = new byte[SecretsFile.MaxFileBytes + 1];
        var error = Rejected(file);
        Assert.Contains("4 MiB", error.Message);
    }

    [Fact]
    public void A_file_of_exactly_4_MiB_is_accepted()
    {
        var prefix = Header + "A=";
        var file = Encoding.UTF8.GetBytes(prefix + new string('x', SecretsFile.MaxFileBytes - prefix.Length - 1) + "\n");
        Assert.Equal(SecretsFile.MaxFileBytes, file.Length);
        Assert.True(SecretsFile.Parse(file).IsSuccess);
    }

    // ---- Reading: keys ----

    [Fact]
    public void A_lower_case_key_is_rejected_naming_the_character()
    {
        var error = Rejected(Header + "A=1\ndb_password=hunter2\n");
        Assert.Equal((3, 1, 21L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("'d'", error.Message);
        Assert.Contains("lower case", error.Message);
        Assert.DoesNotContain("hunter2", error.Message);
    }

    [Fact]
    public void An_invalid_character_inside_a_key_is_named_with_its_column()
    {
        var error = Rejected(Header + "DB-PASS=x\n");
        Assert.Equal((2, 3, 19L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("'-'", error.Message);
    }

    [Fact]
    public void A_space_before_the_equals_sign_is_not_part_of_a_valid_key()
    {
        var error = Rejected(Header + "KEY =x\n");
        Assert.Equal((2, 4), (error.Line, error.Column));
        Assert.Contains("a space", error.Message);
    }

    [Fact]
    public void A_non_ASCII_key_character_is_named_by_its_code_point()
    {
        var error = Rejected(Header + "CAFÉ=x\n");
        Assert.Equal((2, 4, 20L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("U+00C9", error.Message);
    }

    [Fact]
    public void An_empty_key_is_rejected()
    {
        var error = Rejected(Header + "=secret\n");
        Assert.Equal((2, 1, 17L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("empty key", error.Message);
        Assert.DoesNotContain("secret", error.Message.Replace("secrets", ""));
    }

    [Fact]
    public void A_key_longer_than_255_bytes_is_rejected_and_truncated_in_the_message()
    {
        var key = new string('K', 300);
        var error = Rejected(Header + key + "=v\n");
        Assert.Equal((2, 256, 17L + 255), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("255 bytes", error.Message);
        Assert.True(error.Message.Length < 200, error.Message);
    }

    [Fact]
    public void A_duplicate_key_is_rejected_naming_the_line_of_its_first_definition()
    {
        var error = Rejected(Header + "A=1\n# c\nTOKEN=first\nTOKEN=second\n");
        Assert.Equal((5, 1), (error.Line, error.Column));
        Assert.Equal(Header.Length + "A=1\n# c\nTOKEN=first\n".Length, error.ByteOffset);
        Assert.Contains("duplicate key TOKEN", error.Message);
        Assert.Contains("line 4", error.Message);
        Assert.DoesNotContain("first", error.Message.Replace("first defined", ""));
        Assert.DoesNotContain("second", error.Message);
    }

    [Fact]
    public void A_line_without_an_equals_sign_is_rejected_without_echoing_it()
    {
        var error = Rejected(Header + "A=line one\nline two\n");
        Assert.Equal((3, 1, 28L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("no '='", error.Message);
        Assert.DoesNotContain("line two", error.Message);
    }

    // ---- Reading: CR, NUL, UTF-8 ----

    [Fact]
    public void A_CRLF_file_is_rejected_with_a_message_saying_so()
    {
        var error = Rejected("# TRC_SECRETS_V1\r\nA=1\r\n");
        Assert.Equal((1, 17, 16L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("CR LF", error.Message);
    }

    [Fact]
    public void A_CRLF_line_after_the_header_is_rejected_with_a_message_saying_so()
    {
        var error = Rejected(Header + "A=1\r\n");
        Assert.Equal((2, 4, 20L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("CR LF", error.Message);
    }

    [Fact]
    public void A_lone_CR_in_a_value_is_rejected_naming_the_key()
    {
        var error = Rejected(Header + "TOKEN=ab\rcd\n");
        Assert.Equal((2, 9, 25L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("raw CR", error.Message);
        Assert.Contains("value of TOKEN", error.Message);
        Assert.Contains("base64", error.Message);
    }

    [Fact]
    public void A_CR_at_the_very_end_of_the_file_is_a_raw_CR()
    {
        var error = Rejected(Header + "A=1\r");
        Assert.Equal((2, 4), (error.Line, error.Column));
        Assert.Contains("raw CR", error.Message);
    }

    [Fact]
    public void A_CR_in_a_comment_is_rejected()
    {
        var error = Rejected(Header + "# x\ry\n");
        Assert.Equal((2, 4, 20L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("in a comment", error.Message);
    }

    [Fact]
    public void A_raw_NUL_in_a_value_is_rejected_naming_the_key()
    {
        var error = Rejected(Header + "TOKEN=ab\0cd\n");
        Assert.Equal((2, 9, 25L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("NUL", error.Message);
        Assert.Contains("value of TOKEN", error.Message);
    }

    [Fact]
    public void A_raw_NUL_in_a_key_is_rejected()
    {
        var error = Rejected(Header + "A\0=x\n");
        Assert.Equal((2, 2, 18L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("NUL", error.Message);
    }

    [Fact]
    public void Invalid_UTF8_in_a_value_is_rejected_saying_it_must_be_base64_encoded()
    {
        var error = Rejected([.. "# TRC_SECRETS_V1\nKEY=é"u8, 0xFF, .. "tail\n"u8]);
        Assert.Equal((2, 6, 23L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("value of KEY is not valid UTF-8", error.Message);
        Assert.Contains("base64", error.Message);
        Assert.DoesNotContain("FF", error.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0xC0, 0x80 })] // overlong NUL
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })] // UTF-16 surrogate
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 })] // above U+10FFFF
    [InlineData(new byte[] { 0xE2, 0x82 })] // truncated
    [InlineData(new byte[] { 0x80 })] // lone continuation byte
    public void Every_kind_of_invalid_UTF8_in_a_value_is_rejected(byte[] bad)
    {
        var error = Rejected([.. "# TRC_SECRETS_V1\nKEY=ok"u8, .. bad]);
        Assert.Equal((2, 7, 23L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("not valid UTF-8", error.Message);
    }

    [Fact]
    public void Invalid_UTF8_in_a_comment_is_rejected()
    {
        var error = Rejected([.. "# TRC_SECRETS_V1\n# note "u8, 0xFE, .. "\nA=1\n"u8]);
        Assert.Equal((2, 8, 24L), (error.Line, error.Column, error.ByteOffset));
        Assert.Contains("comment is not valid UTF-8", error.Message);
    }

    // ---- Reading: canonical base64 ----

    [Theory]
    [InlineData("aHVudGVy Mg==", 20, "whitespace")]
    [InlineData("aHVudGVyMg==\t", 24, "whitespace")]
    [InlineData("aHVudGVyMg", 22, "padding")]
    [InlineData("-_8=", 12, "URL-safe")]
    [InlineData("aGk*", 15, "alphabet")]
    [InlineData("aGk=aGk=", 15, "padding")]
    [InlineData("aGl=", 14, "trailing bits")]
    [InlineData("AB==", 13, "trailing bits")]
    public void Non_canonical_base64_is_rejected_with_the_column_of_the_problem(string encoded, int column, string reason)
    {
        var error = Rejected(Header + "KEY=base64:" + encoded + "\n");
        Assert.Equal(2, error.Line);
        Assert.Equal(column, error.Column);
        Assert.Equal(Header.Length + column - 1, error.ByteOffset);
        Assert.Contains("value of KEY is not canonical base64", error.Message);
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void The_base64_prefix_is_case_sensitive_so_other_spellings_are_raw_text()
    {
        Assert.Equal("BASE64:!!"u8.ToArray(), Parsed(Header + "A=BASE64:!!\n")[0].Value);
    }

    [Fact]
    public void The_error_string_has_line_column_and_byte_offset()
    {
        var error = Rejected(Header + "a=1\n");
        Assert.StartsWith("2:1: ", error.ToString());
        Assert.EndsWith("(byte offset 17)", error.ToString());
    }

    // ---- Writing ----

    [Fact]
    public void Encode_writes_the_exact_canonical_bytes()
    {
        var file = SecretsFile.Encode(new Dictionary<string, byte[]>
        {
            ["TOKEN"] = "  spaced = value # kept  "u8.ToArray(),
            ["CERT"] = "line1\nline2\n"u8.ToArray(),
            ["BINARY"] = [0x00, 0xFF],
            ["EMPTY"] = [],
            ["A_1"] = "pässwörd"u8.ToArray(),
        });
        var expected =
            "# TRC_SECRETS_V1\n" +
            "A_1=pässwörd\n" +
            "BINARY=base64:AP8=\n" +
            "CERT=base64:bGluZTEKbGluZTIK\n" +
            "EMPTY=\n" +
            "TOKEN=  spaced = value # kept  \n";
        Assert.Equal(Encoding.UTF8.GetBytes(expected), file);
    }

    [Fact]
    public void Encode_of_no_secrets_is_the_header_line()
    {
        Assert.Equal("# TRC_SECRETS_V1\n"u8.ToArray(), SecretsFile.Encode([]));
    }

    [Fact]
    public void Encode_sorts_keys_ordinally_digits_then_letters_then_underscore()
    {
        var file = SecretsFile.Encode([new("_X", "1"u8.ToArray()), new("B", "2"u8.ToArray()), new("AB", "3"u8.ToArray()), new("A_", "4"u8.ToArray()), new("9", "5"u8.ToArray())]);
        Assert.Equal("# TRC_SECRETS_V1\n9=5\nAB=3\nA_=4\nB=2\n_X=1\n", Encoding.UTF8.GetString(file));
    }

    [Fact]
    public void Encode_is_deterministic_whatever_the_input_order()
    {
        KeyValuePair<string, byte[]>[] secrets = [new("B", [1]), new("A", [2]), new("C", "x"u8.ToArray())];
        Assert.Equal(SecretsFile.Encode(secrets), SecretsFile.Encode(secrets.Reverse()));
    }

    [Theory]
    [InlineData("plain", false)]
    [InlineData("", false)]
    [InlineData("   ", false)]
    [InlineData(" lead and trail\t", false)]
    [InlineData("a=b#c", false)]
    [InlineData("# looks like a comment", false)]
    [InlineData("pässwörd 🔑", false)]
    [InlineData("tab\there", false)]
    [InlineData("esc\u001b", false)]
    [InlineData("BASE64:x", false)]
    [InlineData("xbase64:", false)]
    [InlineData("base64:", true)]
    [InlineData("base64:aGk=", true)]
    [InlineData("two\nlines", true)]
    [InlineData("\n", true)]
    [InlineData("cr\r", true)]
    [InlineData("nul\0", true)]
    public void Encode_uses_base64_only_for_LF_CR_NUL_invalid_UTF8_and_the_base64_prefix(string value, bool base64)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        Assert.Equal(base64, SecretsFile.MustBase64Encode(bytes));
        var line = Encoding.UTF8.GetString(SecretsFile.Encode([new("K", bytes)]))["# TRC_SECRETS_V1\n".Length..];
        Assert.Equal(base64 ? "K=base64:" + Convert.ToBase64String(bytes) + "\n" : "K=" + value + "\n", line);
    }

    [Fact]
    public void Encode_uses_base64_for_invalid_UTF8()
    {
        byte[] value = [0x61, 0xC3];
        Assert.True(SecretsFile.MustBase64Encode(value));
        Assert.Equal("# TRC_SECRETS_V1\nK=base64:YcM=\n", Encoding.ASCII.GetString(SecretsFile.Encode([new("K", value)])));
    }

    [Theory]
    [InlineData("lower", "'l'")]
    [InlineData("WITH-DASH", "'-'")]
    [InlineData("SPACE ", "a space")]
    [InlineData("A=B", "'='")]
    [InlineData("NEW\nLINE", "U+000A")]
    [InlineData("", "empty")]
    public void Encode_rejects_an_invalid_key_naming_it(string key, string named)
    {
        var e = Assert.Throws<ArgumentException>(() => SecretsFile.Encode([new(key, "v"u8.ToArray())]));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void Encode_rejects_a_long_key_and_truncates_it_in_the_message()
    {
        var e = Assert.Throws<ArgumentException>(() => SecretsFile.Encode([new(new string('K', 10_000), [])]));
        Assert.Contains("255 bytes", e.Message);
        Assert.Contains("(10000 characters)", e.Message);
        Assert.True(e.Message.Length < 300, e.Message);
    }

    [Fact]
    public void Encode_rejects_a_duplicate_key()
    {
        var e = Assert.Throws<ArgumentException>(() => SecretsFile.Encode([new("A", "one"u8.ToArray()), new("A", "two"u8.ToArray())]));
        Assert.Contains("duplicate key 'A'", e.Message);
        Assert.DoesNotContain("one", e.Message);
    }

    [Fact]
    public void Encode_rejects_a_null_value()
    {
        Assert.Throws<ArgumentNullException>(() => SecretsFile.Encode([new("A", null!)]));
    }

    [Fact]
    public void Encode_refuses_to_write_a_file_the_parser_would_reject_for_its_size()
    {
        var e = Assert.Throws<ArgumentException>(() => SecretsFile.Encode([new("A", new byte[SecretsFile.MaxFileBytes / 2]), new("B", new byte[SecretsFile.MaxFileBytes / 2])]));
        Assert.Contains("4 MiB", e.Message);
    }

    [Fact]
    public void A_parsed_file_encodes_back_to_the_same_bytes_when_it_is_canonical()
    {
        var canonical = "# TRC_SECRETS_V1\nA=1\nB=base64:AA==\nC= x \n"u8.ToArray();
        Assert.Equal(canonical, SecretsFile.Encode(SecretsFile.Parse(canonical).Secrets!));
    }

    [Theory]
    [InlineData("DB_PASSWORD", true)]
    [InlineData("0", true)]
    [InlineData("db_password", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void IsValidKey_follows_the_key_grammar(string? key, bool valid)
    {
        Assert.Equal(valid, SecretsFile.IsValidKey(key));
    }

    private static IReadOnlyList<KeyValuePair<string, byte[]>> Parsed(string file)
    {
        var result = SecretsFile.Parse(Encoding.UTF8.GetBytes(file));
        Assert.True(result.IsSuccess, result.Error?.ToString());
        return result.Secrets!;
    }

    private static SecretsFileError Rejected(string file) => Rejected(Encoding.UTF8.GetBytes(file));

    private static SecretsFileError Rejected(byte[] file)
    {
        var result = SecretsFile.Parse(file);
        Assert.False(result.IsSuccess);
        Assert.Null(result.Secrets);
        return result.Error!;
    }
}
