using System.Text.Json.Nodes;
using Trc.Core.Tests;

namespace Trc.Agent.Tests.Firecracker;

/// <summary>
/// Firecracker's swagger file (../shared/testdata/firecracker/firecracker.yaml) as the contract
/// tests read it: which operations exist, and the schema of each one's body.
/// </summary>
internal sealed class FirecrackerSpec
{
    private static readonly Lazy<FirecrackerSpec> Shared = new(() => Load(SharedTestData.PathOf("firecracker", "firecracker.yaml")));

    private FirecrackerSpec(JsonNode document)
    {
        Document = document;
        Paths = document["paths"] as JsonObject ?? throw new FormatException("the spec has no paths");
        Validator = new SchemaSubset(document, strict: true);
    }

    /// <summary>The spec from the shared test data (the caller skips when it is absent).</summary>
    public static FirecrackerSpec Instance => Shared.Value;

    public static FirecrackerSpec Load(string path) =>
        new(MiniYaml.Parse(File.ReadAllText(path)) ?? throw new FormatException($"{path} is empty"));

    public JsonNode Document { get; }

    public JsonObject Paths { get; }

    public SchemaSubset Validator { get; }

    /// <summary>The operation for a method and a concrete path (templates like <c>/drives/{drive_id}</c> match one segment), or null.</summary>
    public (string Template, JsonObject Operation)? Find(string method, string path)
    {
        var segments = path.Split('/');
        foreach (var (template, item) in Paths)
        {
            var parts = template.Split('/');
            if (parts.Length != segments.Length)
            {
                continue;
            }
            var match = true;
            for (var i = 0; i < parts.Length && match; i++)
            {
                var isParameter = parts[i].StartsWith('{') && parts[i].EndsWith('}');
                match = isParameter ? segments[i].Length > 0 : parts[i] == segments[i];
            }
            if (match && item?[method.ToLowerInvariant()] is JsonObject operation)
            {
                return (template, operation);
            }
        }
        return null;
    }

    /// <summary>The schema of an operation's body parameter, or null when it takes none.</summary>
    public static JsonNode? BodySchema(JsonObject operation) =>
        (operation["parameters"] as JsonArray)?
            .OfType<JsonObject>()
            .FirstOrDefault(p => p["in"]?.GetValue<string>() == "body")?["schema"];

    /// <summary>Whether an operation's body parameter is required.</summary>
    public static bool BodyRequired(JsonObject operation) =>
        (operation["parameters"] as JsonArray)?
            .OfType<JsonObject>()
            .FirstOrDefault(p => p["in"]?.GetValue<string>() == "body")?["required"]?.GetValue<bool>() == true;
}
