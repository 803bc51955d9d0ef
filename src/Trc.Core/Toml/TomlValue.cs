using System.Collections;
using System.Globalization;

namespace Trc.Core.Toml;

/// <summary>The type of a TOML value, as TOML names them.</summary>
public enum TomlValueKind
{
    /// <summary>A string.</summary>
    String,

    /// <summary>A 64-bit signed integer.</summary>
    Integer,

    /// <summary>A 64-bit IEEE 754 float.</summary>
    Float,

    /// <summary>true or false.</summary>
    Boolean,

    /// <summary>A date, time or date-time; see <see cref="TomlDateTimeKind"/>.</summary>
    DateTime,

    /// <summary>An array (static or array of tables).</summary>
    Array,

    /// <summary>A table (header, dotted, implicit or inline).</summary>
    Table,
}

/// <summary>A value in a parsed TOML document, with the position where it was written.</summary>
public abstract class TomlValue
{
    private protected TomlValue(TomlPosition position) => Position = position;

    /// <summary>The value's type.</summary>
    public abstract TomlValueKind Kind { get; }

    /// <summary>Where the value starts in the source (for a table: its header or first key).</summary>
    public TomlPosition Position { get; }

    /// <summary>The type's name in messages: "string", "integer", "table", "local date", ...</summary>
    public virtual string TypeName => Describe(Kind);

    /// <summary>The type's name with its article: "an integer", "a table".</summary>
    public string TypeNameWithArticle => (TypeName[0] is 'a' or 'e' or 'i' or 'o' or 'u' ? "an " : "a ") + TypeName;

    /// <summary>The name of a kind in messages.</summary>
    public static string Describe(TomlValueKind kind) => kind switch
    {
        TomlValueKind.String => "string",
        TomlValueKind.Integer => "integer",
        TomlValueKind.Float => "float",
        TomlValueKind.Boolean => "boolean",
        TomlValueKind.DateTime => "date-time",
        TomlValueKind.Array => "array",
        TomlValueKind.Table => "table",
        _ => kind.ToString(),
    };
}

/// <summary>A TOML string.</summary>
public sealed class TomlString(string value, TomlPosition position) : TomlValue(position)
{
    /// <summary>The decoded string (escapes applied, line endings normalised to LF).</summary>
    public string Value { get; } = value;

    /// <inheritdoc />
    public override TomlValueKind Kind => TomlValueKind.String;

    /// <inheritdoc />
    public override string ToString() => Value;
}

/// <summary>A TOML integer.</summary>
public sealed class TomlInteger(long value, TomlPosition position) : TomlValue(position)
{
    /// <summary>The value.</summary>
    public long Value { get; } = value;

    /// <inheritdoc />
    public override TomlValueKind Kind => TomlValueKind.Integer;

    /// <inheritdoc />
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A TOML float.</summary>
public sealed class TomlFloat(double value, TomlPosition position) : TomlValue(position)
{
    /// <summary>The value (may be infinite or NaN).</summary>
    public double Value { get; } = value;

    /// <inheritdoc />
    public override TomlValueKind Kind => TomlValueKind.Float;

    /// <inheritdoc />
    public override string ToString() => Value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>A TOML boolean.</summary>
public sealed class TomlBoolean(bool value, TomlPosition position) : TomlValue(position)
{
    /// <summary>The value.</summary>
    public bool Value { get; } = value;

    /// <inheritdoc />
    public override TomlValueKind Kind => TomlValueKind.Boolean;

    /// <inheritdoc />
    public override string ToString() => Value ? "true" : "false";
}

/// <summary>A TOML offset date-time, local date-time, local date or local time.</summary>
public sealed class TomlDateTimeValue(TomlDateTime value, TomlPosition position) : TomlValue(position)
{
    /// <summary>The value.</summary>
    public TomlDateTime Value { get; } = value;

    /// <inheritdoc />
    public override TomlValueKind Kind => TomlValueKind.DateTime;

    /// <inheritdoc />
    public override string TypeName => Value.Kind switch
    {
        TomlDateTimeKind.OffsetDateTime => "offset date-time",
        TomlDateTimeKind.LocalDateTime => "local date-time",
        TomlDateTimeKind.LocalDate => "local date",
        _ => "local time",
    };

    /// <inheritdoc />
    public override string ToString() => Value.ToString();
}

/// <summary>A TOML array: a static array value, or an array of tables built by <c>[[name]]</c> headers.</summary>
public sealed class TomlArray : TomlValue, IReadOnlyList<TomlValue>
{
    private readonly List<TomlValue> _items = [];

    internal TomlArray(TomlPosition position, bool isArrayOfTables)
        : base(position)
    {
        IsArrayOfTables = isArrayOfTables;
    }

    /// <summary>True when built by <c>[[name]]</c> headers; such an array holds only tables.</summary>
    public bool IsArrayOfTables { get; }

    /// <inheritdoc />
    public override TomlValueKind Kind => TomlValueKind.Array;

    /// <inheritdoc />
    public override string TypeName => IsArrayOfTables ? "array of tables" : "array";

    /// <inheritdoc />
    public int Count => _items.Count;

    /// <inheritdoc />
    public TomlValue this[int index] => _items[index];

    internal void Add(TomlValue value) => _items.Add(value);

    /// <inheritdoc />
    public IEnumerator<TomlValue> GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>How a table came to exist; it decides what may still be added to it (TOML 1.0 section "Table").</summary>
public enum TomlTableOrigin
{
    /// <summary>The document root.</summary>
    Root,

    /// <summary>Created as a parent of a <c>[a.b.c]</c> header; may later be defined by its own header.</summary>
    Implicit,

    /// <summary>Defined by a <c>[name]</c> header, or an element of an array of tables.</summary>
    Header,

    /// <summary>Created by a dotted key (<c>a.b = 1</c>); closed to headers of the same name.</summary>
    Dotted,

    /// <summary>An inline table (<c>{ ... }</c>) or a table inside a static array: complete and closed.</summary>
    Inline,
}

/// <summary>A TOML table: keys in the order they were defined.</summary>
public sealed class TomlTable : TomlValue, IEnumerable<KeyValuePair<string, TomlValue>>
{
    private readonly Dictionary<string, Entry> _map = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    internal TomlTable(TomlPosition position, TomlTableOrigin origin)
        : base(position)
    {
        Origin = origin;
    }

    /// <summary>How the table was created; see <see cref="TomlTableOrigin"/>.</summary>
    public TomlTableOrigin Origin { get; internal set; }

    /// <summary>Where the header that defined this table is, once one has (tables made implicitly have none).</summary>
    public TomlPosition? HeaderPosition { get; internal set; }

    /// <inheritdoc />
    public override TomlValueKind Kind => TomlValueKind.Table;

    /// <summary>Number of keys.</summary>
    public int Count => _order.Count;

    /// <summary>Keys in definition order.</summary>
    public IReadOnlyList<string> Keys => _order;

    /// <summary>The value of a key; throws when absent.</summary>
    public TomlValue this[string key] => _map[key].Value;

    /// <summary>Looks a key up.</summary>
    public bool TryGetValue(string key, out TomlValue value)
    {
        if (_map.TryGetValue(key, out var entry))
        {
            value = entry.Value;
            return true;
        }
        value = null!;
        return false;
    }

    /// <summary>Whether the key is defined.</summary>
    public bool ContainsKey(string key) => _map.ContainsKey(key);

    /// <summary>Where a key was written (for messages about the key rather than its value).</summary>
    public TomlPosition GetKeyPosition(string key) => _map[key].KeyPosition;

    internal void Add(string key, TomlValue value, TomlPosition keyPosition)
    {
        _map.Add(key, new Entry(value, keyPosition));
        _order.Add(key);
    }

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, TomlValue>> GetEnumerator()
    {
        foreach (var key in _order)
        {
            yield return new KeyValuePair<string, TomlValue>(key, _map[key].Value);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private readonly record struct Entry(TomlValue Value, TomlPosition KeyPosition);
}
