using System.Reflection;
using System.Text.Json.Nodes;

namespace Trc.Client.Tests;

/// <summary>The client has a method for every operation of the checked-in OpenAPI document.</summary>
public sealed class CoverageTests
{
    /// <summary>Operations served by one method with an optional org (null: the platform's log).</summary>
    private static readonly Dictionary<string, string> Shared = new(StringComparer.Ordinal)
    {
        ["listOrgEvents"] = nameof(TrcClient.GetEventsAsync),
        ["listEvents"] = nameof(TrcClient.GetEventsAsync),
        ["streamOrgEvents"] = nameof(TrcClient.StreamEventsAsync),
        ["streamEvents"] = nameof(TrcClient.StreamEventsAsync),
        ["whoami"] = nameof(TrcClient.WhoAmIAsync),
    };

    [Fact]
    public void Every_documented_operation_has_a_client_method()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "trc.slnx")))
        {
            root = root.Parent;
        }
        Assert.NotNull(root);
        var document = JsonNode.Parse(File.ReadAllText(Path.Combine(root.FullName, "docs", "api", "openapi.json")))!;
        var operations = document["paths"]!.AsObject()
            .SelectMany(path => path.Value!.AsObject().Select(op => op.Value!["operationId"]!.GetValue<string>()))
            .ToList();
        Assert.True(operations.Count >= 30, $"only {operations.Count} operations read");

        var methods = typeof(TrcClient).GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Select(m => m.Name)
            .ToHashSet(StringComparer.Ordinal);
        var missing = operations
            .Select(id => (id, method: Shared.TryGetValue(id, out var shared) ? shared : char.ToUpperInvariant(id[0]) + id[1..] + "Async"))
            .Where(x => !methods.Contains(x.method))
            .Select(x => $"{x.id} (expected TrcClient.{x.method})")
            .ToList();
        Assert.True(missing.Count == 0, "operations without a client method: " + string.Join(", ", missing));
    }
}
