using System.Text.Json;

namespace Trc.Cli.Tests.Commands;

public sealed class ManifestCommandsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("trc-manifest-").FullName;

    private const string Valid = "app = \"shop\"\n\n[processes.web]\nmemory = \"512Mi\"\n";

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void Validate_exits_0_for_a_valid_manifest()
    {
        var result = CliRunner.Run(["validate", Write("trc.toml", Valid)]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.EndsWith(": ok\n", result.Stdout);
    }

    [Fact]
    public void Validate_prints_every_problem_as_file_line_col_path_message_and_exits_1()
    {
        var file = Write("trc.toml", "app = \"Shop\"\n[processes.web]\ncpu = 0\n");
        var result = CliRunner.Run(["validate", file]);
        Assert.Equal(1, result.ExitCode);
        var lines = result.Stderr.TrimEnd('\n').Split('\n');
        Assert.Equal([
            $"{file}:1:7: app: \"Shop\" is not a valid name: use 1-32 lower-case letters, digits and '-', starting with a letter and not ending with '-'",
            $"{file}:2:1: processes.web.memory: is required",
            $"{file}:3:7: processes.web.cpu: 0 is out of range: must be greater than 0 and at most 64",
            $"{file}: 3 problems",
        ], lines);
    }

    [Fact]
    public void Validate_checks_several_files_and_fails_if_any_fails()
    {
        var result = CliRunner.Run(["validate", Write("a.toml", Valid), Write("b.toml", "app = 1\n")]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("a.toml: ok", result.Stdout);
        Assert.Contains("b.toml:1:7: app: expected a string", result.Stderr);
    }

    [Fact]
    public void Validate_reports_a_missing_file_with_exit_3()
    {
        var result = CliRunner.Run(["validate", Path.Combine(_dir, "nope.toml")]);
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("nope.toml: cannot read: no such file", result.Stderr);
    }

    [Fact]
    public void Validate_without_a_file_is_a_usage_error()
    {
        Assert.Equal(2, CliRunner.Run(["validate"]).ExitCode);
    }

    [Fact]
    public void Fmt_rewrites_the_file_in_place_and_check_then_passes()
    {
        var file = Write("trc.toml", "[processes.web]\nmemory='512Mi'\n# lead\n[[routes]]\nhostname='a.example.com'\nbackend_port=1\n");
        File.WriteAllText(file, "app='shop'\n" + File.ReadAllText(file));
        Assert.Equal(1, CliRunner.Run(["fmt", "--check", file]).ExitCode);

        var result = CliRunner.Run(["fmt", file]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("app = \"shop\"\n\n[processes.web]\nmemory = \"512Mi\"\n\n# lead\n[[routes]]\nhostname = \"a.example.com\"\nbackend_port = 1\n", File.ReadAllText(file));
        Assert.Equal(0, CliRunner.Run(["fmt", "--check", file]).ExitCode);
        Assert.Empty(Directory.GetFiles(_dir, ".*trc-fmt*"));
    }

    [Fact]
    public void Fmt_leaves_a_file_with_unknown_keys_untouched()
    {
        const string content = "app = 'shop'\n[processes.web]\nmemory = '1Gi'\ncolour = 'red'\n";
        var file = Write("trc.toml", content);
        var result = CliRunner.Run(["fmt", file]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("processes.web.colour: unknown key", result.Stderr);
        Assert.Contains("not formatted: fix the problems above first", result.Stderr);
        Assert.Equal(content, File.ReadAllText(file));
    }

    [Fact]
    public void Fmt_reads_stdin_and_writes_stdout_for_a_dash()
    {
        var result = CliRunner.Run(["fmt", "-"], "app='shop'\nprocesses.web.memory='512Mi'\n");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(Valid, result.Stdout);
    }

    [Fact]
    public void Manifest_json_prints_the_normalized_form()
    {
        var result = CliRunner.Run(["manifest", "json", Write("trc.toml", Valid)]);
        Assert.True(result.ExitCode == 0, result.ToString());
        using var json = JsonDocument.Parse(result.Stdout);
        Assert.Equal(512L << 20, json.RootElement.GetProperty("processes").GetProperty("web").GetProperty("memory_bytes").GetInt64());
    }

    [Fact]
    public void Manifest_json_of_an_invalid_manifest_prints_problems_and_exits_1()
    {
        var result = CliRunner.Run(["manifest", "json", Write("trc.toml", "app = 'shop'\n")]);
        Assert.Equal(1, result.ExitCode);
        Assert.Equal("", result.Stdout);
        Assert.Contains("processes: is required", result.Stderr);
    }

    [Fact]
    public void Manifest_schema_prints_the_checked_in_schema()
    {
        var result = CliRunner.Run(["manifest", "schema"]);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(File.ReadAllText(Path.Combine(CliRunner.RepositoryRoot, "docs", "manifest.schema.json")), result.Stdout);
    }

    [Fact]
    public async Task The_real_executable_validates_the_example()
    {
        var result = await CliRunner.RunProcessAsync(["validate", Path.Combine(CliRunner.RepositoryRoot, "examples", "shop", "trc.toml")]);
        Assert.True(result.ExitCode == 0, result.ToString());
    }
}
