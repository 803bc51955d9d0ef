using System.Globalization;
using Trc.Core.Manifest;

namespace Trc.Cli.Remote;

/// <summary>
/// An aligned text table: a header row in capitals, columns two spaces apart, the last column
/// not padded. Control characters in cells are shown as '?' so that no server value can move
/// the cursor or forge lines.
/// </summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public int Count => _rows.Count;

    public TextTable Add(params string?[] cells)
    {
        if (cells.Length != headers.Length)
        {
            throw new ArgumentException($"a row of this table has {headers.Length} cells", nameof(cells));
        }
        _rows.Add(cells.Select(c => Clean(c ?? "-")).ToArray());
        return this;
    }

    public void Write(TextWriter writer)
    {
        var widths = headers.Select((h, i) => Math.Max(h.Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[i].Length))).ToArray();
        WriteRow(writer, headers, widths);
        foreach (var row in _rows)
        {
            WriteRow(writer, row, widths);
        }
    }

    private static void WriteRow(TextWriter writer, string[] cells, int[] widths)
    {
        var line = string.Join("  ", cells.Select((c, i) => i == cells.Length - 1 ? c : c.PadRight(widths[i])));
        writer.WriteLine(line.TrimEnd());
    }

    /// <summary>
    /// Shows control characters as '?': every string a server sent goes through this before it
    /// reaches the terminal, so that no server (or proxy) can move the cursor, recolour the
    /// terminal or forge output lines.
    /// </summary>
    public static string Clean(string? s) => s is null ? "" : s.Any(char.IsControl) ? new string(s.Select(c => char.IsControl(c) ? '?' : c).ToArray()) : s;

    /// <summary>Key-value lines, keys aligned: for one object.</summary>
    public static void WriteFields(TextWriter writer, params (string Key, string? Value)[] fields)
    {
        var width = fields.Max(f => f.Key.Length) + 1;
        foreach (var (key, value) in fields)
        {
            writer.WriteLine($"{(key + ":").PadRight(width)} {Clean(value ?? "-")}");
        }
    }

    /// <summary>A time as <c>2025-01-31 12:00:00Z</c>.</summary>
    public static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>A byte count the way manifests write it (<c>512Mi</c>).</summary>
    public static string Bytes(long bytes) => bytes == 0 ? "0" : ByteSize.Format(bytes);

    public static string YesNo(bool value) => value ? "yes" : "no";

    public static string Number(long n) => n.ToString(CultureInfo.InvariantCulture);
}
