using System.Globalization;
using System.Text.Json;
using Trc.Core.Toml;

namespace Trc.Core.Tests.Toml;

/// <summary>
/// Every case listed in toml-test's files-toml-1.0.0: valid documents decode to the expected tagged
/// JSON, invalid ones are rejected with a positioned error.
/// </summary>
public sealed class TomlTestSuiteTests
{
    public static TheoryData<string> ValidCases() => Cases("valid/");

    public static TheoryData<string> InvalidCases() => Cases("invalid/");

    [SharedTestDataTheory]
    [MemberData(nameof(ValidCases))]
    public void Valid_case_decodes_to_the_expected_json(string name)
    {
        var bytes = File.ReadAllBytes(SharedTestData.PathOf("toml-test", name));
        var result = global::Trc.Core.Toml.Toml.Parse(bytes);
        Assert.True(result.IsSuccess, $"{name} was rejected: {result.Error}");

        using var expected = JsonDocument.Parse(File.ReadAllText(SharedTestData.PathOf("toml-test", Path.ChangeExtension(name, ".json"))));
        using var actual = JsonDocument.Parse(TomlTaggedJson.Encode(result.Document!.Root));
        AssertTaggedEqual(expected.RootElement, actual.RootElement, "$");
    }

    [SharedTestDataTheory]
    [MemberData(nameof(InvalidCases))]
    public void Invalid_case_is_rejected_with_a_position(string name)
    {
        var bytes = File.ReadAllBytes(SharedTestData.PathOf("toml-test", name));
        var result = global::Trc.Core.Toml.Toml.Parse(bytes);
        Assert.False(result.IsSuccess, $"{name} was accepted:\n{(result.IsSuccess ? TomlTaggedJson.Encode(result.Document!.Root) : "")}");
        Assert.True(result.Error!.Position.Line >= 1 && result.Error.Position.Column >= 1);
        Assert.False(string.IsNullOrWhiteSpace(result.Error.Message));
    }

    [SharedTestDataFact]
    public void The_suite_lists_both_valid_and_invalid_cases()
    {
        Assert.True(((IEnumerable<object[]>)ValidCases()).Count() > 100, "expected the full toml-test 1.0.0 list");
        Assert.True(((IEnumerable<object[]>)InvalidCases()).Count() > 100, "expected the full toml-test 1.0.0 list");
    }

    private static TheoryData<string> Cases(string prefix)
    {
        var data = new TheoryData<string>();
        if (SharedTestData.Directory is null)
        {
            data.Add("(testdata absent)");
            return data;
        }
        foreach (var line in File.ReadLines(SharedTestData.PathOf("toml-test", "files-toml-1.0.0")))
        {
            var name = line.Trim();
            if (name.StartsWith(prefix, StringComparison.Ordinal) && name.EndsWith(".toml", StringComparison.Ordinal))
            {
                data.Add(name);
            }
        }
        return data;
    }

    /// <summary>Compares like toml-test does: numbers and date-times by value, everything else exactly.</summary>
    internal static void AssertTaggedEqual(JsonElement expected, JsonElement actual, string path)
    {
        if (expected.ValueKind == JsonValueKind.Array)
        {
            Assert.True(actual.ValueKind == JsonValueKind.Array, $"{path}: expected an array, got {actual}");
            var e = expected.EnumerateArray().ToList();
            var a = actual.EnumerateArray().ToList();
            Assert.True(e.Count == a.Count, $"{path}: expected {e.Count} elements, got {a.Count}");
            for (var i = 0; i < e.Count; i++)
            {
                AssertTaggedEqual(e[i], a[i], $"{path}[{i}]");
            }
            return;
        }
        Assert.True(actual.ValueKind == JsonValueKind.Object, $"{path}: expected an object, got {actual}");
        if (IsTaggedScalar(expected))
        {
            Assert.True(IsTaggedScalar(actual), $"{path}: expected a {expected.GetProperty("type")}, got {actual}");
            var type = expected.GetProperty("type").GetString()!;
            Assert.Equal(type, actual.GetProperty("type").GetString());
            var ev = expected.GetProperty("value").GetString()!;
            var av = actual.GetProperty("value").GetString()!;
            switch (type)
            {
                case "float":
                    var ef = ParseFloat(ev);
                    var af = ParseFloat(av);
                    Assert.True(ef.Equals(af) || (double.IsNaN(ef) && double.IsNaN(af)), $"{path}: expected float {ev}, got {av}");
                    break;
                case "integer":
                    Assert.Equal(long.Parse(ev, CultureInfo.InvariantCulture), long.Parse(av, CultureInfo.InvariantCulture));
                    break;
                case "datetime" or "datetime-local" or "date-local" or "time-local":
                    Assert.Equal(NormalizeDateTime(ev), NormalizeDateTime(av));
                    break;
                default:
                    Assert.True(ev == av, $"{path}: expected {type} {JsonSerializer.Serialize(ev)}, got {JsonSerializer.Serialize(av)}");
                    break;
            }
            return;
        }
        var expectedKeys = expected.EnumerateObject().Select(p => p.Name).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var actualKeys = actual.EnumerateObject().Select(p => p.Name).OrderBy(k => k, StringComparer.Ordinal).ToList();
        Assert.True(expectedKeys.SequenceEqual(actualKeys), $"{path}: expected keys [{string.Join(", ", expectedKeys)}], got [{string.Join(", ", actualKeys)}]");
        foreach (var key in expectedKeys)
        {
            AssertTaggedEqual(expected.GetProperty(key), actual.GetProperty(key), $"{path}.{key}");
        }
    }

    private static bool IsTaggedScalar(JsonElement e) =>
        e.ValueKind == JsonValueKind.Object
        && e.EnumerateObject().Count() == 2
        && e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
        && e.TryGetProperty("value", out var v) && v.ValueKind == JsonValueKind.String;

    private static double ParseFloat(string s) => s switch
    {
        "inf" or "+inf" => double.PositiveInfinity,
        "-inf" => double.NegativeInfinity,
        "nan" or "+nan" or "-nan" => double.NaN,
        _ => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    /// <summary>Upper-cases T/Z, turns a space separator into T, and pads the fraction to nanoseconds.</summary>
    private static string NormalizeDateTime(string s)
    {
        s = s.ToUpperInvariant();
        if (s.Length > 10 && s[10] == ' ')
        {
            s = string.Concat(s.AsSpan(0, 10), "T", s.AsSpan(11));
        }
        var dot = s.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0)
        {
            return s.Replace("+00:00", "Z", StringComparison.Ordinal);
        }
        var end = dot + 1;
        while (end < s.Length && char.IsAsciiDigit(s[end]))
        {
            end++;
        }
        var fraction = s[(dot + 1)..end].PadRight(9, '0')[..9];
        return (s[..dot] + "." + fraction + s[end..]).Replace("+00:00", "Z", StringComparison.Ordinal);
    }
}
