using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Trc.Core.Toml;

namespace Trc.Core.Manifest.Schema;

// A small declarative schema language. Each node validates TOML values (reporting every problem
// with its path and position) and writes itself as JSON Schema (draft 2020-12). Because the
// validator and docs/manifest.schema.json come from the same nodes, they cannot drift apart;
// rules JSON Schema cannot express are attached as `Rule` checks and reported with that kind.

/// <summary>A node of the manifest schema.</summary>
public abstract class SchemaNode
{
    /// <summary>What the value means, for the JSON Schema and the docs.</summary>
    public string? Description { get; init; }

    /// <summary>Checks a value, reporting every problem found.</summary>
    public abstract void Validate(TomlValue value, string path, ValidationContext context);

    /// <summary>Writes this node as a JSON Schema object.</summary>
    public abstract void WriteSchema(Utf8JsonWriter writer);

    /// <summary>Writes the keywords every node shares.</summary>
    protected void WriteDescription(Utf8JsonWriter writer)
    {
        if (Description is not null)
        {
            writer.WriteString("description", Description);
        }
    }

    /// <summary>Describes a range for a message from its optional bounds.</summary>
    protected static string RangeText<T>(T? low, T? high, string both, string lowOnly)
        where T : struct, IFormattable => (low, high) switch
        {
            ({ } lo, { } hi) => string.Format(CultureInfo.InvariantCulture, both, lo, hi),
            ({ } lo, null) => string.Format(CultureInfo.InvariantCulture, lowOnly, lo),
            (null, { } hi) => string.Format(CultureInfo.InvariantCulture, "at most {0}", hi),
            _ => "any value",
        };

    /// <summary>Reports a value of the wrong type.</summary>
    protected static void WrongType(TomlValue value, string expected, string path, ValidationContext context) =>
        context.Report(value.Position, path, $"expected {expected}, found {value.TypeNameWithArticle}", ManifestDiagnosticKind.Schema);
}

/// <summary>Where a problem was found and what kind of rule caught it.</summary>
public sealed class ValidationContext
{
    private readonly List<ManifestDiagnostic> _diagnostics = [];

    /// <summary>Everything reported so far.</summary>
    public IReadOnlyList<ManifestDiagnostic> Diagnostics => _diagnostics;

    /// <summary>Records a problem.</summary>
    public void Report(TomlPosition position, string path, string message, ManifestDiagnosticKind kind) =>
        _diagnostics.Add(new ManifestDiagnostic(position, path, message, kind));
}

/// <summary>A string, optionally constrained by a pattern, an enumeration and a length, plus a trc-only check.</summary>
public sealed class StringNode : SchemaNode
{
    private Regex? _regex;

    /// <summary>ECMA-262-compatible pattern the whole string must match (anchored with ^ and $).</summary>
    public string? Pattern { get; init; }

    /// <summary>Message when <see cref="Pattern"/> does not match; {0} is the value.</summary>
    public string? PatternMessage { get; init; }

    /// <summary>The allowed values, when the string is an enumeration.</summary>
    public IReadOnlyList<string>? Enum { get; init; }

    /// <summary>Minimum length in characters.</summary>
    public int? MinLength { get; init; }

    /// <summary>Maximum length in characters.</summary>
    public int? MaxLength { get; init; }

    /// <summary>A further check JSON Schema cannot express; returns an error message or null.</summary>
    public Func<string, string?>? Rule { get; init; }

    /// <inheritdoc />
    public override void Validate(TomlValue value, string path, ValidationContext context)
    {
        if (value is not TomlString { Value: var s })
        {
            WrongType(value, "a string", path, context);
            return;
        }
        if (MinLength is { } min && s.Length < min)
        {
            context.Report(value.Position, path, min == 1 ? "must not be empty" : $"must be at least {min} characters long", ManifestDiagnosticKind.Schema);
            return;
        }
        if (MaxLength is { } max && s.Length > max)
        {
            context.Report(value.Position, path, $"is {s.Length} characters long; at most {max} are allowed", ManifestDiagnosticKind.Schema);
            return;
        }
        if (Enum is not null && !Enum.Contains(s, StringComparer.Ordinal))
        {
            var hint = Suggest.Closest(s, Enum) is { } close ? $" (did you mean \"{close}\"?)" : "";
            context.Report(value.Position, path, $"\"{Shorten(s)}\" is not one of {string.Join(", ", Enum.Select(e => $"\"{e}\""))}{hint}", ManifestDiagnosticKind.Schema);
            return;
        }
        if (Pattern is not null && !Matches(s))
        {
            var message = PatternMessage is null ? $"\"{Shorten(s)}\" does not match {Pattern}" : string.Format(CultureInfo.InvariantCulture, PatternMessage, Shorten(s));
            context.Report(value.Position, path, message, ManifestDiagnosticKind.Schema);
            return;
        }
        if (Rule?.Invoke(s) is { } error)
        {
            context.Report(value.Position, path, error, ManifestDiagnosticKind.Rule);
        }
    }

    /// <summary>Whether the whole string matches <see cref="Pattern"/>.</summary>
    public bool Matches(string s)
    {
        _regex ??= new Regex(Pattern!, RegexOptions.ECMAScript | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        // .NET's '$' also matches before a final "\n"; requiring the whole length closes that gap.
        var match = _regex.Match(s);
        return match.Success && match.Index == 0 && match.Length == s.Length;
    }

    /// <inheritdoc />
    public override void WriteSchema(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteDescription(writer);
        writer.WriteString("type", "string");
        if (Enum is not null)
        {
            writer.WriteStartArray("enum");
            foreach (var e in Enum)
            {
                writer.WriteStringValue(e);
            }
            writer.WriteEndArray();
        }
        if (MinLength is { } min)
        {
            writer.WriteNumber("minLength", min);
        }
        if (MaxLength is { } max)
        {
            writer.WriteNumber("maxLength", max);
        }
        if (Pattern is not null)
        {
            writer.WriteString("pattern", Pattern);
        }
        writer.WriteEndObject();
    }

    /// <summary>A value for a message: shortened, with control characters escaped (no terminal escapes from a manifest).</summary>
    internal static string Shorten(string s) => TomlKeys.Printable(s, 64);
}

/// <summary>A TOML integer within bounds. Floats are rejected, even integral ones.</summary>
public sealed class IntegerNode : SchemaNode
{
    /// <summary>Smallest allowed value.</summary>
    public long? Minimum { get; init; }

    /// <summary>Largest allowed value.</summary>
    public long? Maximum { get; init; }

    /// <inheritdoc />
    public override void Validate(TomlValue value, string path, ValidationContext context)
    {
        if (value is not TomlInteger { Value: var n })
        {
            WrongType(value, "an integer", path, context);
            return;
        }
        if (n < Minimum || n > Maximum)
        {
            context.Report(value.Position, path, $"{n} is out of range: must be {RangeText(Minimum, Maximum, "between {0} and {1}", "at least {0}")}", ManifestDiagnosticKind.Schema);
        }
    }

    /// <inheritdoc />
    public override void WriteSchema(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteDescription(writer);
        writer.WriteString("type", "integer");
        if (Minimum is { } min)
        {
            writer.WriteNumber("minimum", min);
        }
        if (Maximum is { } max)
        {
            writer.WriteNumber("maximum", max);
        }
        writer.WriteEndObject();
    }
}

/// <summary>A number (TOML integer or float) within bounds, plus a trc-only check.</summary>
public sealed class NumberNode : SchemaNode
{
    /// <summary>The value must be greater than this.</summary>
    public decimal? ExclusiveMinimum { get; init; }

    /// <summary>Largest allowed value.</summary>
    public decimal? Maximum { get; init; }

    /// <summary>A further check JSON Schema cannot express; returns an error message or null.</summary>
    public Func<decimal, string?>? Rule { get; init; }

    /// <inheritdoc />
    public override void Validate(TomlValue value, string path, ValidationContext context)
    {
        decimal n;
        switch (value)
        {
            case TomlInteger i:
                n = i.Value;
                break;
            case TomlFloat f when double.IsFinite(f.Value) && Math.Abs(f.Value) < 1e15:
                n = (decimal)f.Value;
                break;
            case TomlFloat f:
                context.Report(value.Position, path, $"{f} is not a usable number", ManifestDiagnosticKind.Schema);
                return;
            default:
                WrongType(value, "a number", path, context);
                return;
        }
        if (n <= ExclusiveMinimum || n > Maximum)
        {
            var range = RangeText(ExclusiveMinimum, Maximum, "greater than {0} and at most {1}", "greater than {0}");
            context.Report(value.Position, path, $"{n.ToString(CultureInfo.InvariantCulture)} is out of range: must be {range}", ManifestDiagnosticKind.Schema);
            return;
        }
        if (Rule?.Invoke(n) is { } error)
        {
            context.Report(value.Position, path, error, ManifestDiagnosticKind.Rule);
        }
    }

    /// <inheritdoc />
    public override void WriteSchema(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteDescription(writer);
        writer.WriteString("type", "number");
        if (ExclusiveMinimum is { } min)
        {
            writer.WriteNumber("exclusiveMinimum", min);
        }
        if (Maximum is { } max)
        {
            writer.WriteNumber("maximum", max);
        }
        writer.WriteEndObject();
    }
}

/// <summary>true or false.</summary>
public sealed class BooleanNode : SchemaNode
{
    /// <inheritdoc />
    public override void Validate(TomlValue value, string path, ValidationContext context)
    {
        if (value is not TomlBoolean)
        {
            WrongType(value, "a boolean (true or false)", path, context);
        }
    }

    /// <inheritdoc />
    public override void WriteSchema(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteDescription(writer);
        writer.WriteString("type", "boolean");
        writer.WriteEndObject();
    }
}

/// <summary>An array (a static array, or an array of tables) whose items all match one node.</summary>
public sealed class ArrayNode : SchemaNode
{
    /// <summary>The schema of every item.</summary>
    public required SchemaNode Items { get; init; }

    /// <summary>Fewest items.</summary>
    public int? MinItems { get; init; }

    /// <summary>Most items.</summary>
    public int? MaxItems { get; init; }

    /// <summary>Whether items must be distinct (scalars only).</summary>
    public bool UniqueItems { get; init; }

    /// <inheritdoc />
    public override void Validate(TomlValue value, string path, ValidationContext context)
    {
        if (value is not TomlArray array)
        {
            WrongType(value, "an array", path, context);
            return;
        }
        if (array.Count < MinItems)
        {
            context.Report(value.Position, path, MinItems == 1 ? "must not be empty" : $"needs at least {MinItems} items, has {array.Count}", ManifestDiagnosticKind.Schema);
        }
        if (array.Count > MaxItems)
        {
            context.Report(value.Position, path, $"has {array.Count} items; at most {MaxItems} are allowed", ManifestDiagnosticKind.Schema);
        }
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < array.Count; i++)
        {
            var item = array[i];
            var itemPath = $"{path}[{i}]";
            Items.Validate(item, itemPath, context);
            if (UniqueItems && item is TomlString or TomlInteger or TomlBoolean)
            {
                var key = item.Kind + ":" + item;
                if (!seen.TryAdd(key, i))
                {
                    context.Report(item.Position, itemPath, $"{item} is listed twice (also at {path}[{seen[key]}])", ManifestDiagnosticKind.Schema);
                }
            }
        }
    }

    /// <inheritdoc />
    public override void WriteSchema(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteDescription(writer);
        writer.WriteString("type", "array");
        writer.WritePropertyName("items");
        Items.WriteSchema(writer);
        if (MinItems is { } min)
        {
            writer.WriteNumber("minItems", min);
        }
        if (MaxItems is { } max)
        {
            writer.WriteNumber("maxItems", max);
        }
        if (UniqueItems)
        {
            writer.WriteBoolean("uniqueItems", true);
        }
        writer.WriteEndObject();
    }
}

/// <summary>A field of an object node.</summary>
/// <param name="Name">The key.</param>
/// <param name="Node">The value's schema.</param>
public sealed record Field(string Name, SchemaNode Node)
{
    /// <summary>Whether the key must be present.</summary>
    public bool Required { get; init; }

    /// <summary>The value used when the key is absent (a string, long, decimal or bool), for docs and normalisation.</summary>
    public object? Default { get; init; }
}

/// <summary>"When <c>IfField</c> equals <c>IfValue</c>, <c>ThenField</c> must equal <c>ThenValue</c>".</summary>
/// <param name="IfField">The field whose value triggers the rule.</param>
/// <param name="IfValue">The triggering value (string or bool).</param>
/// <param name="ThenField">The field the rule constrains.</param>
/// <param name="ThenValue">The value it must then have (string or bool).</param>
/// <param name="Message">The error when it does not.</param>
public sealed record Implication(string IfField, object IfValue, string ThenField, object ThenValue, string Message);

/// <summary>A table with a closed set of known keys.</summary>
public sealed class ObjectNode : SchemaNode
{
    /// <summary>The known keys, in canonical order (the order <c>trc fmt</c> writes them).</summary>
    public required IReadOnlyList<Field> Fields { get; init; }

    /// <summary>When set, exactly one of these keys must be present.</summary>
    public IReadOnlyList<string>? ExactlyOneOf { get; init; }

    /// <summary>Conditional requirements between fields.</summary>
    public IReadOnlyList<Implication> Implications { get; init; } = [];

    /// <summary>The field named <paramref name="name"/>, or null.</summary>
    public Field? FindField(string name) => Fields.FirstOrDefault(f => f.Name == name);

    /// <inheritdoc />
    public override void Validate(TomlValue value, string path, ValidationContext context)
    {
        if (value is not TomlTable table)
        {
            WrongType(value, "a table", path, context);
            return;
        }
        foreach (var (key, item) in table)
        {
            var field = FindField(key);
            var itemPath = Paths.Child(path, key);
            if (field is null)
            {
                var hint = Suggest.Closest(key, Fields.Select(f => f.Name)) is { } close ? $" (did you mean {close}?)" : "";
                var known = string.Join(", ", Fields.Select(f => f.Name));
                context.Report(table.GetKeyPosition(key), itemPath, $"unknown key{hint}; known keys here: {known}", ManifestDiagnosticKind.Schema);
                continue;
            }
            field.Node.Validate(item, itemPath, context);
        }
        foreach (var field in Fields.Where(f => f.Required && !table.ContainsKey(f.Name)))
        {
            context.Report(table.HeaderPosition ?? table.Position, Paths.Child(path, field.Name), "is required", ManifestDiagnosticKind.Schema);
        }
        if (ExactlyOneOf is not null)
        {
            var present = ExactlyOneOf.Where(table.ContainsKey).ToList();
            if (present.Count != 1)
            {
                var names = string.Join(" or ", ExactlyOneOf);
                var message = present.Count == 0 ? $"needs one of {names}" : $"set only one of {names}";
                context.Report(table.HeaderPosition ?? table.Position, path, message, ManifestDiagnosticKind.Schema);
            }
        }
        foreach (var rule in Implications)
        {
            if (table.TryGetValue(rule.IfField, out var trigger) && ScalarEquals(trigger, rule.IfValue)
                && !(table.TryGetValue(rule.ThenField, out var then) && ScalarEquals(then, rule.ThenValue)))
            {
                var at = table.ContainsKey(rule.ThenField) ? table.GetKeyPosition(rule.ThenField) : table.GetKeyPosition(rule.IfField);
                context.Report(at, Paths.Child(path, rule.ThenField), rule.Message, ManifestDiagnosticKind.Schema);
            }
        }
    }

    private static bool ScalarEquals(TomlValue value, object expected) => (value, expected) switch
    {
        (TomlString s, string e) => s.Value == e,
        (TomlBoolean b, bool e) => b.Value == e,
        _ => false,
    };

    /// <inheritdoc />
    public override void WriteSchema(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteDescription(writer);
        writer.WriteString("type", "object");
        writer.WriteStartObject("properties");
        foreach (var field in Fields)
        {
            writer.WritePropertyName(field.Name);
            if (field.Default is null)
            {
                field.Node.WriteSchema(writer);
            }
            else
            {
                // Add "default" to the field's schema object: write it, then splice the keyword in.
                using var buffer = new MemoryStream();
                using (var inner = new Utf8JsonWriter(buffer))
                {
                    field.Node.WriteSchema(inner);
                }
                using var doc = JsonDocument.Parse(buffer.ToArray());
                writer.WriteStartObject();
                foreach (var property in doc.RootElement.EnumerateObject())
                {
                    property.WriteTo(writer);
                }
                writer.WritePropertyName("default");
                WriteScalar(writer, field.Default);
                writer.WriteEndObject();
            }
        }
        writer.WriteEndObject();
        var required = Fields.Where(f => f.Required).ToList();
        if (required.Count > 0)
        {
            writer.WriteStartArray("required");
            foreach (var f in required)
            {
                writer.WriteStringValue(f.Name);
            }
            writer.WriteEndArray();
        }
        writer.WriteBoolean("additionalProperties", false);
        if (ExactlyOneOf is not null)
        {
            writer.WriteStartArray("oneOf");
            foreach (var name in ExactlyOneOf)
            {
                writer.WriteStartObject();
                writer.WriteStartArray("required");
                writer.WriteStringValue(name);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        if (Implications.Count > 0)
        {
            writer.WriteStartArray("allOf");
            foreach (var rule in Implications)
            {
                writer.WriteStartObject();
                writer.WriteStartObject("if");
                WriteConst(writer, rule.IfField, rule.IfValue);
                writer.WriteEndObject();
                writer.WriteStartObject("then");
                WriteConst(writer, rule.ThenField, rule.ThenValue);
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        writer.WriteEndObject();
    }

    private static void WriteConst(Utf8JsonWriter writer, string field, object value)
    {
        writer.WriteStartObject("properties");
        writer.WriteStartObject(field);
        writer.WritePropertyName("const");
        WriteScalar(writer, value);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteStartArray("required");
        writer.WriteStringValue(field);
        writer.WriteEndArray();
    }

    internal static void WriteScalar(Utf8JsonWriter writer, object value)
    {
        switch (value)
        {
            case string s: writer.WriteStringValue(s); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case long l: writer.WriteNumberValue(l); break;
            case int i: writer.WriteNumberValue(i); break;
            case decimal d: writer.WriteNumberValue(d); break;
            default: throw new InvalidOperationException($"unsupported default {value.GetType().Name}");
        }
    }
}

/// <summary>A table whose keys are names (matching a pattern) and whose values share one schema.</summary>
public sealed class MapNode : SchemaNode
{
    private readonly StringNode _names;

    /// <summary>Creates a map whose keys match <paramref name="keyPattern"/>.</summary>
    public MapNode(string keyPattern, string keyPatternMessage, SchemaNode values)
    {
        KeyPattern = keyPattern;
        Values = values;
        _names = new StringNode { Pattern = keyPattern, PatternMessage = keyPatternMessage };
        KeyPatternMessage = keyPatternMessage;
    }

    /// <summary>Pattern every key must match.</summary>
    public string KeyPattern { get; }

    /// <summary>Message when a key does not match; {0} is the key.</summary>
    public string KeyPatternMessage { get; }

    /// <summary>Schema of every value.</summary>
    public SchemaNode Values { get; }

    /// <summary>Fewest entries.</summary>
    public int? MinProperties { get; init; }

    /// <inheritdoc />
    public override void Validate(TomlValue value, string path, ValidationContext context)
    {
        if (value is not TomlTable table)
        {
            WrongType(value, "a table", path, context);
            return;
        }
        if (table.Count < MinProperties)
        {
            context.Report(table.HeaderPosition ?? table.Position, path, $"needs at least {MinProperties} entr{(MinProperties == 1 ? "y" : "ies")}", ManifestDiagnosticKind.Schema);
        }
        foreach (var (key, item) in table)
        {
            var itemPath = Paths.Child(path, key);
            if (!_names.Matches(key))
            {
                context.Report(table.GetKeyPosition(key), itemPath, string.Format(CultureInfo.InvariantCulture, KeyPatternMessage, StringNode.Shorten(key)), ManifestDiagnosticKind.Schema);
            }
            Values.Validate(item, itemPath, context);
        }
    }

    /// <inheritdoc />
    public override void WriteSchema(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteDescription(writer);
        writer.WriteString("type", "object");
        writer.WriteStartObject("propertyNames");
        writer.WriteString("pattern", KeyPattern);
        writer.WriteEndObject();
        writer.WritePropertyName("additionalProperties");
        Values.WriteSchema(writer);
        if (MinProperties is { } min)
        {
            writer.WriteNumber("minProperties", min);
        }
        writer.WriteEndObject();
    }
}

/// <summary>Builds dotted paths for messages: <c>processes.web.ports[0]</c>.</summary>
public static class Paths
{
    /// <summary>The path of a key under <paramref name="parent"/>, quoting the key when it is not bare.</summary>
    public static string Child(string parent, string key)
    {
        var part = TomlKeys.Join([key]);
        return parent.Length == 0 ? part : parent + "." + part;
    }
}

/// <summary>"Did you mean" suggestions by edit distance.</summary>
public static class Suggest
{
    /// <summary>The candidate closest to <paramref name="input"/>, when it is close enough to be a likely typo.</summary>
    public static string? Closest(string input, IEnumerable<string> candidates)
    {
        if (input.Length > 64)
        {
            return null;
        }
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            var d = Distance(input.ToLowerInvariant(), candidate);
            if (d < bestDistance)
            {
                (best, bestDistance) = (candidate, d);
            }
        }
        return best is not null && bestDistance <= Math.Max(1, best.Length / 3) ? best : null;
    }

    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            prev[j] = j;
        }
        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
