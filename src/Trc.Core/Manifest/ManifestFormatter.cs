using System.Globalization;
using System.Text;
using Trc.Core.Manifest.Schema;
using Trc.Core.Toml;

namespace Trc.Core.Manifest;

/// <summary>
/// <c>trc fmt</c>: rewrites a manifest in its canonical layout. Keys come in the schema's order
/// (processes: <c>web</c> first, then by name), every table is written under its own header (except
/// the small inline <c>http</c> health check), scalars are written canonically, and every comment is
/// kept next to the value it was written with. Formatting is idempotent and never changes meaning:
/// the formatted file loads to the same manifest.
/// </summary>
public static class ManifestFormatter
{
    /// <summary>Arrays longer than this are written one element per line.</summary>
    public const int MaxInlineWidth = 100;

    /// <summary>Formats a loaded manifest; it must have a valid shape (<see cref="ManifestLoadResult.HasValidShape"/>).</summary>
    public static string Format(ManifestLoadResult loaded)
    {
        if (!loaded.HasValidShape)
        {
            throw new InvalidOperationException("only a manifest with a valid shape can be formatted");
        }
        return new Writer(loaded.Document!).Write();
    }

    private sealed class Writer(TomlDocument document)
    {
        private readonly StringBuilder _out = new();

        public string Write()
        {
            var root = document.Root;
            foreach (var line in document.HeaderComments)
            {
                Comment(line, "");
            }
            if (document.HeaderComments.Count > 0)
            {
                _out.Append('\n');
            }

            // Root key/values: app, then containers that cannot be written as sections (an empty
            // array of routes or volumes, kept so its comments survive).
            KeyValue("app", root["app"], "");
            foreach (var name in new[] { "routes", "volumes" })
            {
                if (root.TryGetValue(name, out var array) && array is TomlArray { Count: 0 })
                {
                    KeyValue(name, array, "");
                }
            }

            var processes = (TomlTable)root["processes"];
            var pending = ContainerComments(processes);
            foreach (var name in processes.Keys.OrderBy(n => n == ManifestSchema.DefaultProcess ? 0 : 1).ThenBy(n => n, StringComparer.Ordinal))
            {
                Section(["processes", name], (TomlTable)processes[name], ManifestSchema.Process, isArrayElement: false, pending);
                pending = [];
            }
            foreach (var (name, node) in new[] { ("routes", ManifestSchema.Route), ("volumes", ManifestSchema.Volume) })
            {
                if (!root.TryGetValue(name, out var value) || value is not TomlArray { Count: > 0 } array)
                {
                    continue;
                }
                pending = ContainerComments(array);
                foreach (var element in array)
                {
                    Section([name], (TomlTable)element, node, isArrayElement: true, pending);
                    pending = [];
                }
            }

            if (document.FooterComments.Count > 0)
            {
                _out.Append('\n');
                foreach (var line in document.FooterComments)
                {
                    Comment(line, "");
                }
            }
            return _out.ToString();
        }

        /// <summary>Comments written on a container that is not printed itself; they go above its first child.</summary>
        private List<string> ContainerComments(TomlValue container)
        {
            var comments = document.GetComments(container);
            if (comments is null)
            {
                return [];
            }
            var lines = comments.Leading.ToList();
            if (comments.Trailing is not null)
            {
                lines.Add(comments.Trailing);
            }
            lines.AddRange(comments.ClosingLines);
            return lines;
        }

        private void Section(IReadOnlyList<string> path, TomlTable table, ObjectNode schema, bool isArrayElement, IReadOnlyList<string> extraLeading)
        {
            var comments = document.GetComments(table);
            _out.Append('\n');
            foreach (var line in extraLeading)
            {
                Comment(line, "");
            }
            foreach (var line in comments?.Leading ?? [])
            {
                Comment(line, "");
            }
            // Source text, not a message: quote each part, never shorten it.
            var name = string.Join('.', path.Select(TomlKeys.Quote));
            _out.Append(isArrayElement ? $"[[{name}]]" : $"[{name}]");
            Trailing(comments?.Trailing);
            foreach (var line in comments?.ClosingLines ?? [])
            {
                Comment(line, "");
            }

            var subsections = new List<(Field Field, TomlTable Table)>();
            foreach (var field in schema.Fields)
            {
                if (!table.TryGetValue(field.Name, out var value))
                {
                    continue;
                }
                if (field.Node is ObjectNode && value is TomlTable sub && !(IsInline(field) && CanBeInline(sub)))
                {
                    subsections.Add((field, sub));
                    continue;
                }
                KeyValue(field.Name, value, "");
            }
            foreach (var (field, sub) in subsections)
            {
                if (sub.Count == 0 && document.GetComments(sub) is null)
                {
                    continue;
                }
                Section([.. path, field.Name], sub, (ObjectNode)field.Node, isArrayElement: false, []);
            }
        }

        private static bool IsInline(Field field) => field.Name == "http";

        /// <summary>A table can be written inline only when no comment would be lost.</summary>
        private bool CanBeInline(TomlTable table) =>
            document.GetComments(table) is null && table.All(kv => document.GetComments(kv.Value) is null && kv.Value is not (TomlTable or TomlArray));

        private void KeyValue(string key, TomlValue value, string indent)
        {
            var comments = document.GetComments(value);
            foreach (var line in comments?.Leading ?? [])
            {
                Comment(line, indent);
            }
            _out.Append(indent).Append(TomlKeys.Quote(key)).Append(" = ");
            Value(value, indent);
            Trailing(comments?.Trailing);
        }

        private void Value(TomlValue value, string indent)
        {
            switch (value)
            {
                case TomlArray array:
                    Array(array, indent);
                    break;
                case TomlTable table:
                    _out.Append("{ ");
                    var schema = ManifestSchema.Healthcheck.FindField("http")!.Node as ObjectNode;
                    var keys = schema is null ? table.Keys : schema.Fields.Select(f => f.Name).Where(table.ContainsKey);
                    var first = true;
                    foreach (var key in keys)
                    {
                        _out.Append(first ? "" : ", ").Append(TomlKeys.Quote(key)).Append(" = ");
                        Value(table[key], indent);
                        first = false;
                    }
                    _out.Append(" }");
                    break;
                default:
                    _out.Append(Scalar(value));
                    break;
            }
        }

        private void Array(TomlArray array, string indent)
        {
            var anyComment = document.GetComments(array)?.ClosingLines.Count > 0
                || array.Any(item => document.GetComments(item) is not null);
            var allScalar = array.All(item => item is not (TomlArray or TomlTable));
            if (!anyComment && allScalar)
            {
                var inline = "[" + string.Join(", ", array.Select(Scalar)) + "]";
                if (inline.Length + indent.Length <= MaxInlineWidth)
                {
                    _out.Append(inline);
                    return;
                }
            }
            var inner = indent + "    ";
            _out.Append('[');
            foreach (var item in array)
            {
                var comments = document.GetComments(item);
                _out.Append('\n');
                foreach (var line in comments?.Leading ?? [])
                {
                    Comment(line, inner);
                }
                _out.Append(inner);
                Value(item, inner);
                _out.Append(',');
                if (comments?.Trailing is { } trailing)
                {
                    _out.Append(" #").Append(trailing);
                }
            }
            _out.Append('\n');
            foreach (var line in document.GetComments(array)?.ClosingLines ?? [])
            {
                Comment(line, inner);
            }
            _out.Append(indent).Append(']');
        }

        private static string Scalar(TomlValue value) => value switch
        {
            TomlString s => TomlStrings.QuoteCanonical(s.Value),
            TomlInteger i => i.Value.ToString(CultureInfo.InvariantCulture),
            TomlFloat f => FormatFloat(f.Value),
            TomlBoolean b => b.Value ? "true" : "false",
            TomlDateTimeValue d => d.Value.ToString(),
            _ => throw new InvalidOperationException($"not a scalar: {value.TypeName}"),
        };

        private static string FormatFloat(double value)
        {
            if (double.IsNaN(value))
            {
                return "nan";
            }
            if (double.IsInfinity(value))
            {
                return value > 0 ? "inf" : "-inf";
            }
            var text = value.ToString("R", CultureInfo.InvariantCulture);
            return text.Contains('.', StringComparison.Ordinal) || text.Contains('E', StringComparison.Ordinal) ? text : text + ".0";
        }

        private void Comment(string text, string indent) => _out.Append(indent).Append('#').Append(text).Append('\n');

        private void Trailing(string? comment)
        {
            if (comment is not null)
            {
                _out.Append(" #").Append(comment);
            }
            _out.Append('\n');
        }
    }
}
