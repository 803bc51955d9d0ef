using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Trc.Core.Toml;

/// <summary>
/// The toml-test "tagged JSON" encoding: tables are objects, arrays are arrays, and every scalar is
/// <c>{"type": "...", "value": "..."}</c> with the value as a string. This is the decoder contract
/// of https://github.com/toml-lang/toml-test, so outside harnesses can run <c>trc toml decode</c>.
/// </summary>
public static class TomlTaggedJson
{
    /// <summary>
    /// JSON nesting needed for the deepest document the parser accepts: every TOML level can cost
    /// two JSON levels (an array of tables is an array holding objects).
    /// </summary>
    public const int MaxJsonDepth = (TomlParserOptions.MaxAllowedDepth * 2) + 8;

    /// <summary>Writes a table as tagged JSON.</summary>
    public static void Write(Utf8JsonWriter writer, TomlTable table)
    {
        writer.WriteStartObject();
        foreach (var (key, value) in table)
        {
            writer.WritePropertyName(key);
            WriteValue(writer, value);
        }
        writer.WriteEndObject();
    }

    /// <summary>Encodes a table as indented tagged JSON text.</summary>
    public static string Encode(TomlTable table)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, MaxDepth = MaxJsonDepth }))
        {
            Write(writer, table);
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteValue(Utf8JsonWriter writer, TomlValue value)
    {
        switch (value)
        {
            case TomlTable table:
                Write(writer, table);
                return;
            case TomlArray array:
                writer.WriteStartArray();
                foreach (var item in array)
                {
                    WriteValue(writer, item);
                }
                writer.WriteEndArray();
                return;
        }
        var (type, text) = value switch
        {
            TomlString s => ("string", s.Value),
            TomlInteger i => ("integer", i.Value.ToString(CultureInfo.InvariantCulture)),
            TomlFloat f => ("float", FormatFloat(f.Value)),
            TomlBoolean b => ("bool", b.Value ? "true" : "false"),
            TomlDateTimeValue d => (d.Value.Kind switch
            {
                TomlDateTimeKind.OffsetDateTime => "datetime",
                TomlDateTimeKind.LocalDateTime => "datetime-local",
                TomlDateTimeKind.LocalDate => "date-local",
                _ => "time-local",
            }, d.Value.ToString()),
            _ => throw new InvalidOperationException($"unknown TOML value {value.GetType().Name}"),
        };
        writer.WriteStartObject();
        writer.WriteString("type", type);
        writer.WriteString("value", text);
        writer.WriteEndObject();
    }

    private static string FormatFloat(double value) => value switch
    {
        double.PositiveInfinity => "inf",
        double.NegativeInfinity => "-inf",
        _ when double.IsNaN(value) => "nan",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };
}
