using System.Text.Json;

namespace Trc.Cli.Tests.Commands;

public sealed class TomlCommandsTests
{
    [Fact]
    public void Decode_prints_tagged_json_and_exits_0()
    {
        var result = CliRunner.Run(["toml", "decode"], "a = 1\nb = \"x\"\n[t]\nd = 1979-05-27\n");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var json = JsonDocument.Parse(result.Stdout);
        Assert.Equal("integer", json.RootElement.GetProperty("a").GetProperty("type").GetString());
        Assert.Equal("1", json.RootElement.GetProperty("a").GetProperty("value").GetString());
        Assert.Equal("date-local", json.RootElement.GetProperty("t").GetProperty("d").GetProperty("type").GetString());
        Assert.Equal("", result.Stderr);
    }

    [Fact]
    public void Decode_reports_an_error_with_line_and_column_on_stderr_and_exits_1()
    {
        var result = CliRunner.Run(["toml", "decode"], "a = 1\nb = \n");
        Assert.Equal(1, result.ExitCode);
        Assert.Equal("", result.Stdout);
        Assert.StartsWith("stdin:2:5: ", result.Stderr);
        Assert.Contains("the key b has no value", result.Stderr);
    }

    [Fact]
    public async Task The_real_executable_keeps_the_toml_test_decoder_contract()
    {
        var ok = await CliRunner.RunProcessAsync(["toml", "decode"], "x = [1.5, inf]\n"u8.ToArray());
        Assert.True(ok.ExitCode == 0, ok.ToString());
        using (var json = JsonDocument.Parse(ok.Stdout))
        {
            var x = json.RootElement.GetProperty("x");
            Assert.Equal("float", x[0].GetProperty("type").GetString());
            Assert.Equal("inf", x[1].GetProperty("value").GetString());
        }

        var bad = await CliRunner.RunProcessAsync(["toml", "decode"], "x = [1.5, inf\n"u8.ToArray());
        Assert.Equal(1, bad.ExitCode);
        Assert.Empty(bad.StdoutBytes);
        Assert.Contains("not closed", bad.Stderr);
    }

    [Fact]
    public void An_unknown_command_is_a_usage_error_with_exit_2()
    {
        var result = CliRunner.Run(["toml", "encode-everything"]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("trc --help", result.Stderr);
    }
}
