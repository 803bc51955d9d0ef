using System.Text;
using Trc.Core.Manifest;

namespace Trc.Core.Tests.Manifest;

/// <summary>Hostile manifests end in clean, positioned diagnostics: no exception, no hang, no megabyte-long message.</summary>
public sealed class ManifestHostileInputTests
{
    public static TheoryData<string, byte[], string> Cases()
    {
        var data = new TheoryData<string, byte[], string>
        {
            { "deep array nesting", Bytes("app = \"a\"\nx = " + new string('[', 100_000)), "nests deeper than 128 levels" },
            { "deep inline tables", Bytes("app = \"a\"\nx = " + string.Concat(Enumerable.Repeat("{a=", 50_000))), "nests deeper than 128 levels" },
            { "deep header", Bytes(new string('[', 100_000)), "" },
            { "dotted key with 100,000 parts", Bytes(string.Join('.', Enumerable.Repeat("a", 100_000)) + " = 1"), "nests deeper than 128 levels" },
            { "1 MB unknown key", Bytes("app = \"a\"\n" + new string('k', 1 << 20) + " = 1\n"), "" },
            { "1 MB process name", Bytes("app = \"a\"\n[processes." + new string('p', 1 << 20) + "]\nmemory = \"1Gi\"\n"), "" },
            { "invalid UTF-8 in a value", [.. Bytes("app = \""), 0xC3, 0x28, .. Bytes("\"\n")], "invalid UTF-8" },
            { "integer overflow", Bytes("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [99999999999999999999]\n"), "out of the 64-bit range" },
            { "duplicate keys", Bytes("app = \"a\"\napp = \"b\"\n"), "defined twice" },
            { "duplicate process tables", Bytes("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\n[processes.web]\nmemory = \"1Gi\"\n"), "defined twice" },
            { "lone CR", Bytes("app = \"a\"\r[processes.web]\n"), "carriage return" },
            { "NUL byte", Bytes("app = \"a\"\0\n"), "U+0000" },
            { "UTF-16 file", Encoding.Unicode.GetBytes("app = \"a\"\n"), "" },
            { "over 1 MiB", Bytes("app = \"a\"\n#" + new string('x', (1 << 20) + 10) + "\n"), "at most 1048576" },
            { "empty file", [], "is required" },
            { "only a BOM", [0xEF, 0xBB, 0xBF], "is required" },
            { "array of tables for app", Bytes("[[app]]\n"), "expected a string, found an array" },
            { "table for processes.web", Bytes("app = \"a\"\nprocesses = { web = 1 }\n"), "expected a table, found an integer" },
            { "routes as a table", Bytes("app = \"a\"\n[routes]\nhostname = \"x\"\n[processes.web]\nmemory = \"1Gi\"\n"), "expected an array, found a table" },
            { "10,000 routes", Bytes("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [1]\n" + string.Concat(Enumerable.Range(0, 10_000).Select(i => $"[[routes]]\nhostname = \"h{i}.example.com\"\nbackend_port = 1\n"))), "at most 64 are allowed" },
            { "10,000 unknown keys", Bytes("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\n" + string.Concat(Enumerable.Range(0, 10_000).Select(i => $"k{i} = {i}\n"))), "unknown key" },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Hostile_manifests_give_clean_diagnostics(string name, byte[] input, string expected)
    {
        var result = await Task.Run(() => ManifestLoader.Load(input)).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.False(result.IsValid, $"{name}: was accepted");
        Assert.NotEmpty(result.Diagnostics);
        Assert.All(result.Diagnostics, d =>
        {
            Assert.True(d.Position.Line >= 1 && d.Position.Column >= 1);
            Assert.True(d.Format("trc.toml").Length < 1000, $"{name}: a {d.Format("trc.toml").Length}-character message");
        });
        Assert.True(result.Diagnostics.Any(d => d.Message.Contains(expected, StringComparison.Ordinal)),
            $"{name}: expected a message containing '{expected}', got:\n{string.Join("\n", result.Diagnostics.Take(5))}");
    }

    [Theory]
    [InlineData("app = \"\\u001b[2Jx\"\n[processes.web]\nmemory = \"1Gi\"\n")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"\\u009b31m\"\n")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nuser = \"\\u0007\"\n")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80]\nhealthcheck = { tcp = 80, interval = \"\\u001b]0;pwned\\u0007\" }\n")]
    public void Messages_never_carry_control_characters_from_the_manifest(string toml)
    {
        var result = ManifestLoader.Load(toml);
        Assert.NotEmpty(result.Diagnostics);
        Assert.All(result.Diagnostics, d => Assert.DoesNotContain(d.Format("trc.toml"), char.IsControl));
        Assert.Contains(result.Diagnostics, d => d.Message.Contains("\\u00", StringComparison.Ordinal));
    }

    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);
}
