using System.Text.RegularExpressions;
using Trc.Core.Manifest;

namespace Trc.Core.Tests.Manifest;

/// <summary>The manifest reference's samples are real: each TOML block validates, and the full example is the tested one.</summary>
public sealed partial class ManifestDocsTests
{
    private static readonly string Docs = File.ReadAllText(Path.Combine(SharedTestData.RepositoryRoot, "docs", "manifest.md"));

    [GeneratedRegex("```toml\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex TomlBlock();

    public static TheoryData<int> Blocks()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < TomlBlock().Matches(Docs).Count; i++)
        {
            data.Add(i);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Every_toml_sample_in_the_manifest_reference_is_a_valid_formatted_manifest(int index)
    {
        var text = TomlBlock().Matches(Docs)[index].Groups[1].Value;
        var loaded = ManifestLoader.Load(text);
        Assert.True(loaded.IsValid, $"sample {index} of docs/manifest.md is invalid:\n{text}\n{string.Join("\n", loaded.Diagnostics)}");
        Assert.Equal(text, ManifestFormatter.Format(loaded));
    }

    [Fact]
    public void The_complete_example_in_the_reference_is_examples_shop()
    {
        var example = File.ReadAllText(ManifestLoaderTests.ExamplePath);
        Assert.Equal(example, TomlBlock().Matches(Docs)[0].Groups[1].Value);
    }

    [Fact]
    public void The_sample_error_output_is_what_validate_prints()
    {
        var loaded = ManifestLoader.Load("app = \"Shop\"\n[processes.web]\ncpu = 0\n");
        var printed = string.Join("\n", loaded.Diagnostics.Select(d => d.Format("trc.toml"))) + "\ntrc.toml: 3 problems\n";
        Assert.Contains("```text\n" + printed + "```", Docs);
    }
}
