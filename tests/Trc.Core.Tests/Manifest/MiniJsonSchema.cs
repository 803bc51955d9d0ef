using System.Text.Json;
using System.Text.RegularExpressions;

namespace Trc.Core.Tests.Manifest;

/// <summary>
/// An independent JSON Schema (draft 2020-12) evaluator for the keywords docs/manifest.schema.json
/// uses. It exists so a test can check the published schema against trc's validator without
/// sharing code with it. An unknown keyword throws, so the schema cannot outgrow this check silently.
/// </summary>
public static class MiniJsonSchema
{
    private static readonly HashSet<string> Annotations = ["$schema", "title", "description", "default"];

    public static bool IsValid(JsonElement schema, JsonElement instance)
    {
        foreach (var keyword in schema.EnumerateObject())
        {
            if (Annotations.Contains(keyword.Name) || keyword.Name is "then" or "properties" or "additionalProperties")
            {
                continue;
            }
            var ok = keyword.Name switch
            {
                "type" => HasType(instance, keyword.Value.GetString()!),
                "enum" => keyword.Value.EnumerateArray().Any(e => JsonEquals(e, instance)),
                "const" => JsonEquals(keyword.Value, instance),
                "pattern" => instance.ValueKind != JsonValueKind.String || Regex.IsMatch(instance.GetString()!, keyword.Value.GetString()!, RegexOptions.ECMAScript),
                "minLength" => instance.ValueKind != JsonValueKind.String || CodePoints(instance.GetString()!) >= keyword.Value.GetInt32(),
                "maxLength" => instance.ValueKind != JsonValueKind.String || CodePoints(instance.GetString()!) <= keyword.Value.GetInt32(),
                "minimum" => instance.ValueKind != JsonValueKind.Number || instance.GetDouble() >= keyword.Value.GetDouble(),
                "maximum" => instance.ValueKind != JsonValueKind.Number || instance.GetDouble() <= keyword.Value.GetDouble(),
                "exclusiveMinimum" => instance.ValueKind != JsonValueKind.Number || instance.GetDouble() > keyword.Value.GetDouble(),
                "minItems" => instance.ValueKind != JsonValueKind.Array || instance.GetArrayLength() >= keyword.Value.GetInt32(),
                "maxItems" => instance.ValueKind != JsonValueKind.Array || instance.GetArrayLength() <= keyword.Value.GetInt32(),
                "uniqueItems" => instance.ValueKind != JsonValueKind.Array || !keyword.Value.GetBoolean() || Unique(instance),
                "items" => instance.ValueKind != JsonValueKind.Array || instance.EnumerateArray().All(i => IsValid(keyword.Value, i)),
                "required" => instance.ValueKind != JsonValueKind.Object || keyword.Value.EnumerateArray().All(r => instance.TryGetProperty(r.GetString()!, out _)),
                "minProperties" => instance.ValueKind != JsonValueKind.Object || instance.EnumerateObject().Count() >= keyword.Value.GetInt32(),
                "propertyNames" => instance.ValueKind != JsonValueKind.Object || instance.EnumerateObject().All(p => IsValid(keyword.Value, JsonString(p.Name))),
                "oneOf" => keyword.Value.EnumerateArray().Count(s => IsValid(s, instance)) == 1,
                "allOf" => keyword.Value.EnumerateArray().All(s => IsValid(s, instance)),
                "if" => !IsValid(keyword.Value, instance) || !schema.TryGetProperty("then", out var then) || IsValid(then, instance),
                _ => throw new NotSupportedException($"MiniJsonSchema does not implement the keyword '{keyword.Name}'"),
            };
            if (!ok)
            {
                return false;
            }
        }
        return PropertiesValid(schema, instance);
    }

    private static bool PropertiesValid(JsonElement schema, JsonElement instance)
    {
        if (instance.ValueKind != JsonValueKind.Object)
        {
            return true;
        }
        var hasProperties = schema.TryGetProperty("properties", out var properties);
        var hasAdditional = schema.TryGetProperty("additionalProperties", out var additional);
        foreach (var property in instance.EnumerateObject())
        {
            if (hasProperties && properties.TryGetProperty(property.Name, out var sub))
            {
                if (!IsValid(sub, property.Value))
                {
                    return false;
                }
                continue;
            }
            if (!hasAdditional)
            {
                continue;
            }
            if (additional.ValueKind == JsonValueKind.False || (additional.ValueKind == JsonValueKind.Object && !IsValid(additional, property.Value)))
            {
                return false;
            }
        }
        return true;
    }

    private static bool HasType(JsonElement instance, string type) => type switch
    {
        "object" => instance.ValueKind == JsonValueKind.Object,
        "array" => instance.ValueKind == JsonValueKind.Array,
        "string" => instance.ValueKind == JsonValueKind.String,
        "boolean" => instance.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "number" => instance.ValueKind == JsonValueKind.Number,
        // Per the spec an integer is any number with a zero fraction.
        "integer" => instance.ValueKind == JsonValueKind.Number && Math.Floor(instance.GetDouble()) == instance.GetDouble(),
        _ => throw new NotSupportedException($"type {type}"),
    };

    private static bool Unique(JsonElement array)
    {
        var items = array.EnumerateArray().ToList();
        for (var i = 0; i < items.Count; i++)
        {
            for (var j = i + 1; j < items.Count; j++)
            {
                if (JsonEquals(items[i], items[j]))
                {
                    return false;
                }
            }
        }
        return true;
    }

    private static bool JsonEquals(JsonElement a, JsonElement b) => a.ValueKind == b.ValueKind && a.ValueKind switch
    {
        JsonValueKind.Number => a.GetDouble() == b.GetDouble(),
        JsonValueKind.String => a.GetString() == b.GetString(),
        JsonValueKind.Array or JsonValueKind.Object => a.GetRawText() == b.GetRawText(),
        _ => true,
    };

    private static int CodePoints(string s) => s.EnumerateRunes().Count();

    private static JsonElement JsonString(string s) => JsonDocument.Parse(JsonSerializer.Serialize(s)).RootElement;
}
