using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Trc.Agent.Tests.Firecracker;

/// <summary>
/// A test-only validator for the JSON Schema subset Swagger 2.0 uses in Firecracker's spec:
/// <c>type</c>, <c>required</c>, <c>properties</c>, <c>additionalProperties</c>, <c>enum</c>,
/// <c>minimum</c>/<c>maximum</c> (with draft-4 boolean <c>exclusiveMinimum</c>/<c>exclusiveMaximum</c>),
/// <c>items</c>, and <c>$ref</c> to <c>#/definitions/...</c> (siblings of a <c>$ref</c> are
/// ignored, as Swagger 2.0 says). Other keywords (description, default, format, readOnly,
/// example) do not constrain. Strict mode treats an object schema without
/// <c>additionalProperties</c> as closed, so a misspelt field is an error rather than ignored.
/// </summary>
internal sealed class SchemaSubset(JsonNode document, bool strict)
{
    /// <summary>Every violation, each as "path: what"; empty when <paramref name="instance"/> conforms.</summary>
    public IReadOnlyList<string> Validate(JsonNode? instance, JsonNode schema, string path = "$")
    {
        var errors = new List<string>();
        Check(instance, schema, path, errors, depth: 0);
        return errors;
    }

    private void Check(JsonNode? instance, JsonNode schema, string path, List<string> errors, int depth)
    {
        if (depth > 64)
        {
            throw new InvalidOperationException($"{path}: $ref cycle");
        }
        if (schema is not JsonObject s)
        {
            throw new InvalidOperationException($"{path}: a schema must be an object, found {schema.ToJsonString()}");
        }
        if (s["$ref"] is { } reference)
        {
            Check(instance, Resolve(reference.GetValue<string>()), path, errors, depth + 1);
            return;
        }
        if (s["type"] is { } type && !HasType(instance, type.GetValue<string>()))
        {
            errors.Add($"{path}: expected {type.GetValue<string>()}, found {Describe(instance)}");
            return;
        }
        if (s["enum"] is JsonArray options && !options.Any(o => JsonNode.DeepEquals(o, instance)))
        {
            errors.Add($"{path}: {Describe(instance)} is not one of {options.ToJsonString()}");
        }
        if (instance is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
        {
            var number = Number(v);
            if (s["minimum"] is { } min)
            {
                var exclusive = s["exclusiveMinimum"] is JsonValue em && em.GetValueKind() == JsonValueKind.True;
                var bound = Number(min);
                if (exclusive ? number <= bound : number < bound)
                {
                    errors.Add($"{path}: {Describe(instance)} is below the minimum {min.ToJsonString()}");
                }
            }
            if (s["maximum"] is { } max)
            {
                var exclusive = s["exclusiveMaximum"] is JsonValue em && em.GetValueKind() == JsonValueKind.True;
                var bound = Number(max);
                if (exclusive ? number >= bound : number > bound)
                {
                    errors.Add($"{path}: {Describe(instance)} is above the maximum {max.ToJsonString()}");
                }
            }
        }
        if (instance is JsonObject obj)
        {
            if (s["required"] is JsonArray required)
            {
                foreach (var name in required.Select(r => r!.GetValue<string>()).Where(n => !obj.ContainsKey(n)))
                {
                    errors.Add($"{path}: the required property '{name}' is missing");
                }
            }
            var properties = s["properties"] as JsonObject;
            foreach (var (name, value) in obj)
            {
                if (properties?[name] is { } propertySchema)
                {
                    Check(value, propertySchema, $"{path}.{name}", errors, depth + 1);
                    continue;
                }
                switch (s["additionalProperties"])
                {
                    case JsonObject additional:
                        Check(value, additional, $"{path}.{name}", errors, depth + 1);
                        break;
                    case JsonValue allowed when allowed.GetValueKind() == JsonValueKind.False:
                        errors.Add($"{path}: the property '{name}' is not allowed");
                        break;
                    case null when strict && (properties is not null || s["type"]?.GetValue<string>() == "object"):
                        errors.Add($"{path}: the property '{name}' is not in the schema");
                        break;
                }
            }
        }
        if (instance is JsonArray array && s["items"] is { } items)
        {
            for (var i = 0; i < array.Count; i++)
            {
                Check(array[i], items, $"{path}[{i.ToString(CultureInfo.InvariantCulture)}]", errors, depth + 1);
            }
        }
    }

    private JsonNode Resolve(string reference)
    {
        const string prefix = "#/definitions/";
        if (!reference.StartsWith(prefix, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"unsupported $ref '{reference}'");
        }
        return document["definitions"]?[reference[prefix.Length..]]
            ?? throw new InvalidOperationException($"$ref '{reference}' names no definition");
    }

    private static bool HasType(JsonNode? instance, string type)
    {
        var kind = instance?.GetValueKind() ?? JsonValueKind.Null;
        return type switch
        {
            "object" => kind == JsonValueKind.Object,
            "array" => kind == JsonValueKind.Array,
            "string" => kind == JsonValueKind.String,
            "boolean" => kind is JsonValueKind.True or JsonValueKind.False,
            "null" => kind == JsonValueKind.Null,
            "number" => kind == JsonValueKind.Number,
            "integer" => kind == JsonValueKind.Number && IsIntegral(instance!.AsValue()),
            _ => throw new InvalidOperationException($"unknown type '{type}'"),
        };
    }

    private static bool IsIntegral(JsonValue value)
    {
        var d = Number(value);
        return Math.Floor(d) == d && !double.IsInfinity(d);
    }

    // Through the JSON text: values from the YAML reader are CLR numbers, those from a request
    // body are JSON elements, and JsonValue converts between neither.
    private static double Number(JsonNode value) => double.Parse(value.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture);

    private static string Describe(JsonNode? instance) => instance is null ? "null" : instance.ToJsonString();
}
