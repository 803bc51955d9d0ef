using System.Globalization;
using System.Reflection;

namespace Trc.EventStore;

/// <summary>A numbered schema migration, embedded in the assembly as <c>NNN_name.sql</c>.</summary>
/// <param name="Version">The number; migrations run in ascending order, each once.</param>
/// <param name="Name">The file name.</param>
/// <param name="Sql">The SQL.</param>
public sealed record Migration(int Version, string Name, string Sql)
{
    /// <summary>The embedded migrations under a resource prefix, in version order.</summary>
    public static IReadOnlyList<Migration> Load(string prefix)
    {
        var assembly = typeof(Migration).Assembly;
        var migrations = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(r => r.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var name = resource[prefix.Length..];
            var underscore = name.IndexOf('_', StringComparison.Ordinal);
            if (underscore <= 0 || !int.TryParse(name.AsSpan(0, underscore), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
            {
                throw new InvalidOperationException($"migration {name} is not named NNN_name.sql");
            }
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            migrations.Add(new Migration(version, name, reader.ReadToEnd()));
        }
        migrations.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1)
            {
                throw new InvalidOperationException($"migrations under {prefix} must be numbered 1, 2, 3, ... without gaps; found {migrations[i].Name}");
            }
        }
        return migrations;
    }
}

/// <summary>Stable 64-bit hashes for advisory lock keys and channel names (FNV-1a over UTF-8).</summary>
internal static class StableHash
{
    public static long Of(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(text))
        {
            hash ^= b;
            hash *= 1099511628211UL;
        }
        return unchecked((long)hash);
    }
}
