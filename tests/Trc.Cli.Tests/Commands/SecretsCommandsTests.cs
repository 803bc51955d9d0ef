using System.Text;
using System.Text.Json;

namespace Trc.Cli.Tests.Commands;

public sealed class SecretsCommandsTests : IDisposable
{
    private const string Secret = "hunter2-do-not-log";

    private readonly string _dir = Directory.CreateTempSubdirectory("trc-secrets-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // ---- render ----

    [Fact]
    public void Render_writes_the_exact_secrets_file_to_stdout()
    {
        var json = WriteFile("s.json", """
            {
              "TOKEN": "  spaced = value  ",
              "CERT": "line1\nline2\n",
              "BINARY": {"base64": "AP8="},
              "EMPTY": "",
              "A_1": "p\u00e4ssw\u00f6rd"
            }
            """);
        var result = CliRunner.Run(["secrets", "render", "--from-json", json]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("", result.Stderr);
        var expected =
            "# TRC_SECRETS_V1\n" +
            "A_1=pässwörd\n" +
            "BINARY=base64:AP8=\n" +
            "CERT=base64:bGluZTEKbGluZTIK\n" +
            "EMPTY=\n" +
            "TOKEN=  spaced = value  \n";
        Assert.Equal(Encoding.UTF8.GetBytes(expected), result.StdoutBytes);
    }

    [Fact]
    public void Render_of_an_empty_object_is_the_header_alone()
    {
        var result = CliRunner.Run(["secrets", "render", "--from-json", WriteFile("s.json", "{}")]);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("# TRC_SECRETS_V1\n"u8.ToArray(), result.StdoutBytes);
    }

    [Fact]
    public void Render_then_decode_gives_back_the_exact_bytes()
    {
        var json = WriteFile("s.json", """{"B": {"base64": "AA0KAP8="}, "A": "base64:looks encoded"}""");
        var rendered = CliRunner.Run(["secrets", "render", "--from-json", json]);
        Assert.True(rendered.ExitCode == 0, rendered.ToString());
        var decoded = CliRunner.Run(["secrets", "decode", WriteFile("app.secrets", rendered.StdoutBytes)]);
        Assert.True(decoded.ExitCode == 0, decoded.ToString());
        using var document = JsonDocument.Parse(decoded.Stdout);
        Assert.Equal("base64:looks encoded"u8.ToArray(), Convert.FromBase64String(document.RootElement.GetProperty("A").GetString()!));
        Assert.Equal(new byte[] { 0x00, 0x0D, 0x0A, 0x00, 0xFF }, Convert.FromBase64String(document.RootElement.GetProperty("B").GetString()!));
    }

    [Theory]
    [InlineData("""{"db_password": "hunter2-do-not-log"}""", "'db_password'")]
    [InlineData("""{"A": 1, "KEY": "hunter2-do-not-log"}""", "value of A is a number")]
    [InlineData("""{"A": ["hunter2-do-not-log"]}""", "value of A is an array")]
    [InlineData("""{"A": null}""", "value of A is null")]
    [InlineData("""{"A": true}""", "value of A is a boolean")]
    [InlineData("""{"A": {}}""", "value of A is an empty object")]
    [InlineData("""{"A": {"value": "hunter2-do-not-log"}}""", "value of A is an object with a field other than \"base64\"")]
    [InlineData("""{"A": {"base64": "aGk=", "extra": 1}}""", "value of A is an object with a field other than \"base64\"")]
    [InlineData("""{"A": {"base64": "aGk=", "base64": "aGk="}}""", "\"base64\" twice")]
    [InlineData("""{"A": {"base64": 5}}""", "field \"base64\" of A must be a string")]
    [InlineData("""{"A": {"base64": "aGk"}}""", "field \"base64\" of A is not canonical standard base64")]
    [InlineData("""{"A": {"base64": "a-_="}}""", "URL-safe")]
    [InlineData("""{"A": {"base64": "aGk=\n"}}""", "whitespace")]
    [InlineData("""{"A": "hunter2-do-not-log", "A": "hunter2-do-not-log"}""", "duplicate key A")]
    [InlineData("""{"A": "\ud800hunter2-do-not-log"}""", "value of A is not valid Unicode")]
    [InlineData("""{"\udc00": "hunter2-do-not-log"}""", "not valid Unicode")]
    [InlineData("""{"A": "hunter2-do-not-log",}""", "not valid JSON at line 1")]
    [InlineData("""{"A": "hunter2-do-not-log""", "not valid JSON")]
    [InlineData("""["hunter2-do-not-log"]""", "must be an object")]
    [InlineData("", "not valid JSON")]
    public void Render_rejects_bad_JSON_with_exit_1_naming_the_key_and_never_the_value(string json, string expected)
    {
        var result = CliRunner.Run(["secrets", "render", "--from-json", WriteFile("s.json", json)]);
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Empty(result.StdoutBytes);
        Assert.Contains(expected, result.Stderr);
        Assert.DoesNotContain("hunter2", result.Stderr);
    }

    [Fact]
    public void Render_rejects_JSON_that_is_not_UTF8()
    {
        var result = CliRunner.Run(["secrets", "render", "--from-json", WriteFile("s.json", [.. "{\"A\": \"x"u8, 0xFF, .. "\"}"u8])]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("value of A is not valid Unicode", result.Stderr);
    }

    [Fact]
    public void Render_rejects_deeply_nested_JSON_cleanly()
    {
        var json = "{\"A\": " + new string('[', 100_000) + new string(']', 100_000) + "}";
        var result = CliRunner.Run(["secrets", "render", "--from-json", WriteFile("s.json", json)]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("not valid JSON", result.Stderr);
    }

    [Fact]
    public void Render_rejects_a_key_that_is_too_long_and_truncates_it()
    {
        var key = new string('K', 100_000);
        var result = CliRunner.Run(["secrets", "render", "--from-json", WriteFile("s.json", $"{{\"{key}\": \"x\"}}")]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("255 bytes", result.Stderr);
        Assert.True(result.Stderr.Length < 500, result.Stderr);
    }

    [Fact]
    public void Render_from_a_missing_file_exits_3()
    {
        var missing = Path.Combine(_dir, "missing.json");
        var result = CliRunner.Run(["secrets", "render", "--from-json", missing]);
        Assert.Equal(3, result.ExitCode);
        Assert.Contains($"{missing}: no such file", result.Stderr);
    }

    [Fact]
    public void Render_without_from_json_is_a_usage_error_that_says_the_option_is_required()
    {
        var result = CliRunner.Run(["secrets", "render"]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--from-json", result.Stderr);
        Assert.Contains("required", result.Stderr);
        Assert.Empty(result.StdoutBytes);
    }

    [Fact]
    public void Render_help_has_an_example()
    {
        var result = CliRunner.Run(["secrets", "render", "--help"]);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("trc secrets render --from-json", result.Stdout);
        Assert.Contains("--from-json", result.Stdout);
    }

    // ---- decode ----

    [Fact]
    public void Decode_prints_the_base64_of_each_value_in_file_order()
    {
        var file = WriteFile("app.secrets", "# TRC_SECRETS_V1\nZ=last\n# comment\n\nA=  first  \nE=\nB=base64:AP8=\n");
        var result = CliRunner.Run(["secrets", "decode", file]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("", result.Stderr);
        using var document = JsonDocument.Parse(result.Stdout);
        var properties = document.RootElement.EnumerateObject().ToList();
        Assert.Equal(["Z", "A", "E", "B"], properties.Select(p => p.Name));
        Assert.Equal(["bGFzdA==", "ICBmaXJzdCAg", "", "AP8="], properties.Select(p => p.Value.GetString()));
        Assert.EndsWith("}\n", result.Stdout);
    }

    [Fact]
    public void Decode_reports_a_parse_error_as_file_line_column_with_exit_1_and_without_the_value()
    {
        var file = WriteFile("app.secrets", $"# TRC_SECRETS_V1\nA=1\nTOKEN={Secret}\r\n");
        var result = CliRunner.Run(["secrets", "decode", file]);
        Assert.Equal(1, result.ExitCode);
        Assert.Empty(result.StdoutBytes);
        Assert.StartsWith($"{file}:3:{"TOKEN=".Length + Secret.Length + 1}: ", result.Stderr);
        Assert.Contains("CR LF", result.Stderr);
        Assert.DoesNotContain(Secret, result.Stderr);
    }

    [Theory]
    [InlineData("# TRC_SECRETS_V1\nTOKEN=hunter2-do-not-log\nTOKEN=hunter2-do-not-log\n", "3:1: duplicate key TOKEN")]
    [InlineData("TOKEN=hunter2-do-not-log\n", "1:1: missing header")]
    [InlineData("# TRC_SECRETS_V1\nTOKEN=hunter2-do-not-log\nhunter2-do-not-log\n", "3:1: the line has no '='")]
    [InlineData("# TRC_SECRETS_V1\nTOKEN=base64:hunter2-do-not-log\n", "2:21: the value of TOKEN is not canonical base64")]
    [InlineData("# TRC_SECRETS_V1\nTOKEN=hunter2-do-not-log\0\n", "2:25: raw NUL byte (0x00) in the value of TOKEN")]
    public void Decode_errors_name_the_key_and_position_but_never_the_value(string content, string expected)
    {
        var file = WriteFile("app.secrets", content);
        var result = CliRunner.Run(["secrets", "decode", file]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{file}:{expected}", result.Stderr);
        Assert.DoesNotContain("hunter2", result.Stderr);
    }

    [Fact]
    public void Decode_rejects_invalid_UTF8_in_a_value_saying_it_must_be_base64()
    {
        var file = WriteFile("app.secrets", [.. "# TRC_SECRETS_V1\nK=ab"u8, 0xFF, (byte)'\n']);
        var result = CliRunner.Run(["secrets", "decode", file]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains(":2:5: the value of K is not valid UTF-8", result.Stderr);
        Assert.Contains("base64", result.Stderr);
    }

    [Fact]
    public void Decode_rejects_a_5_MB_file_without_reading_it_all()
    {
        var file = WriteFile("big.secrets", [.. "# TRC_SECRETS_V1\nA="u8, .. Enumerable.Repeat((byte)'x', 5_000_000), (byte)'\n']);
        var result = CliRunner.Run(["secrets", "decode", file]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("4 MiB", result.Stderr);
    }

    [Fact]
    public void Decode_of_a_missing_file_exits_3()
    {
        var result = CliRunner.Run(["secrets", "decode", Path.Combine(_dir, "nope.secrets")]);
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("no such file", result.Stderr);
    }

    [Fact]
    public void Decode_without_a_file_is_a_usage_error()
    {
        var result = CliRunner.Run(["secrets", "decode"]);
        Assert.Equal(2, result.ExitCode);
    }

    [Fact]
    public void Decode_help_has_an_example()
    {
        var result = CliRunner.Run(["secrets", "decode", "--help"]);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("trc secrets decode app.secrets", result.Stdout);
    }

    private string WriteFile(string name, string content) => WriteFile(name, Encoding.UTF8.GetBytes(content));

    private string WriteFile(string name, byte[] content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, content);
        return path;
    }
}
