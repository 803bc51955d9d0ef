using System.Globalization;
using System.Text.Json;
using Trc.Core.Manifest;
using Trc.Core.Toml;
using TomlReader = Trc.Core.Toml.Toml;

namespace Trc.Core.Tests.Manifest;

public sealed class ManifestSchemaTests
{
    private static readonly string CheckedIn = Path.Combine(SharedTestData.RepositoryRoot, "docs", "manifest.schema.json");

    [Fact]
    public void The_checked_in_schema_is_the_one_the_validator_is_built_from()
    {
        var generated = ManifestSchema.ToJsonSchema();
        Assert.True(File.ReadAllText(CheckedIn) == generated,
            "docs/manifest.schema.json is stale: regenerate it with `scripts/trc manifest schema > docs/manifest.schema.json`");
    }

    [Fact]
    public void The_schema_and_the_validator_agree_on_generated_manifests_and_their_mutations()
    {
        using var schema = JsonDocument.Parse(ManifestSchema.ToJsonSchema());
        var generator = new ManifestGenerator(seed: 7);
        var random = new Random(7);
        var checkedInvalid = 0;
        for (var i = 0; i < 1500; i++)
        {
            var text = generator.Next();
            var document = TomlReader.Parse(text).Document!;
            AssertAgreement(schema.RootElement, document.Root, text);

            // Mutate one value or key and check again: both must accept, or both reject, the shape.
            var mutated = Mutate(text, random);
            var parsed = TomlReader.Parse(mutated);
            if (!parsed.IsSuccess)
            {
                continue;
            }
            if (!AssertAgreement(schema.RootElement, parsed.Document!.Root, mutated))
            {
                checkedInvalid++;
            }
        }
        Assert.True(checkedInvalid > 300, $"only {checkedInvalid} mutations were shape errors: the mutator is too weak to prove much");
    }

    [Theory]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\n[[routes]]\nhostname = \"a.example.com\"\nbackend_port = 1\nproxy_protocol = \"v2\"\n")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80]\nhealthcheck = { tcp = 80, http = { port = 80 } }\n")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80]\nhealthcheck = { interval = \"5s\" }\n")]
    [InlineData("app = \"a\"\nprocesses = {}\n")]
    [InlineData("app = \"a\"\n[processes.Web]\nmemory = \"1Gi\"\n")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [80, 80]\n")]
    [InlineData("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\nports = [1979-05-27]\n")]
    public void The_schema_rejects_what_the_validator_rejects_as_a_shape_error(string toml)
    {
        using var schema = JsonDocument.Parse(ManifestSchema.ToJsonSchema());
        Assert.False(AssertAgreement(schema.RootElement, TomlReader.Parse(toml).Document!.Root, toml));
    }

    /// <summary>Asserts that the schema's verdict equals "no Schema-kind diagnostic"; returns that verdict.</summary>
    private static bool AssertAgreement(JsonElement schema, TomlTable root, string text)
    {
        var loaded = ManifestLoader.Validate(TomlReader.Parse(text).Document!);
        var trcShapeValid = loaded.Diagnostics.All(d => d.Kind != ManifestDiagnosticKind.Schema);
        using var instance = JsonDocument.Parse(ToPlainJson(root));
        var schemaValid = MiniJsonSchema.IsValid(schema, instance.RootElement);
        Assert.True(trcShapeValid == schemaValid,
            $"JSON Schema says {(schemaValid ? "valid" : "invalid")}, trc says {(trcShapeValid ? "valid" : "invalid")}:\n{text}\n{string.Join("\n", loaded.Diagnostics)}");
        return schemaValid;
    }

    private static readonly string[] MutationValues =
    [
        "0", "-1", "70000", "1.5", "0.0001", "true", "\"\"", "\"Bad Name\"", "\"1Gi\"", "\"10GB\"", "\"5s\"", "\"v2\"", "\"tcp_raw\"",
        "[]", "[1, 1]", "[\"a\"]", "{}", "{ tcp = 1 }", "1979-05-27", "\"a.example.com\"", "\"*.example.com\"", "\"/x\"", "\"x\"",
    ];

    private static string Mutate(string text, Random random)
    {
        var lines = text.Split('\n');
        var candidates = Enumerable.Range(0, lines.Length).Where(i => lines[i].Contains(" = ", StringComparison.Ordinal) && !lines[i].TrimStart().StartsWith('#')).ToList();
        if (candidates.Count == 0)
        {
            return text;
        }
        var index = candidates[random.Next(candidates.Count)];
        var line = lines[index];
        var eq = line.IndexOf(" = ", StringComparison.Ordinal);
        switch (random.Next(4))
        {
            case 0:
                // Misspell the key.
                lines[index] = line[..eq] + "x" + line[eq..];
                break;
            case 1:
                // Drop the line.
                lines[index] = "";
                break;
            default:
                lines[index] = line[..(eq + 3)] + MutationValues[random.Next(MutationValues.Length)];
                break;
        }
        return string.Join('\n', lines);
    }

    /// <summary>
    /// TOML as plain JSON, the way editors hand TOML to a JSON Schema validator. Dates become an
    /// object so that they do not pass for strings, which trc would not accept either. Integral
    /// floats are kept as 1.0-style numbers, which JSON Schema counts as integers though trc does
    /// not; the mutator never produces one in an integer position.
    /// </summary>
    private static string ToPlainJson(TomlValue value)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            Write(writer, value);
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());

        static void Write(Utf8JsonWriter w, TomlValue v)
        {
            switch (v)
            {
                case TomlTable t:
                    w.WriteStartObject();
                    foreach (var (key, item) in t)
                    {
                        w.WritePropertyName(key);
                        Write(w, item);
                    }
                    w.WriteEndObject();
                    break;
                case TomlArray a:
                    w.WriteStartArray();
                    foreach (var item in a)
                    {
                        Write(w, item);
                    }
                    w.WriteEndArray();
                    break;
                case TomlString s: w.WriteStringValue(s.Value); break;
                case TomlInteger i: w.WriteNumberValue(i.Value); break;
                case TomlFloat f: w.WriteRawValue(f.Value.ToString("0.0###############", CultureInfo.InvariantCulture)); break;
                case TomlBoolean b: w.WriteBooleanValue(b.Value); break;
                case TomlDateTimeValue d:
                    w.WriteStartObject();
                    w.WriteString("$toml-datetime", d.Value.ToString());
                    w.WriteEndObject();
                    break;
            }
        }
    }
}
