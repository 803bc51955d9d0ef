using Trc.Core.Toml;

namespace Trc.Core.Manifest;

/// <summary>Which layer found a problem.</summary>
public enum ManifestDiagnosticKind
{
    /// <summary>The file is not valid TOML 1.0.</summary>
    Syntax,

    /// <summary>A rule that docs/manifest.schema.json also expresses (types, keys, patterns, ranges).</summary>
    Schema,

    /// <summary>A rule only trc checks (references between fields, sizes, uniqueness across tables).</summary>
    Rule,
}

/// <summary>One problem in a manifest, at a position and a dotted path.</summary>
/// <param name="Position">Line and column.</param>
/// <param name="Path">Dotted path of the offending key, like <c>processes.web.memory</c> or <c>routes[0].hostname</c>; empty for the whole file.</param>
/// <param name="Message">What is wrong and, where it helps, how to fix it.</param>
/// <param name="Kind">Which layer found it.</param>
public sealed record ManifestDiagnostic(TomlPosition Position, string Path, string Message, ManifestDiagnosticKind Kind)
{
    /// <summary><c>file:line:col: path: message</c>.</summary>
    public string Format(string file) =>
        Path.Length == 0
            ? $"{file}:{Position.Line}:{Position.Column}: {Message}"
            : $"{file}:{Position.Line}:{Position.Column}: {Path}: {Message}";

    /// <inheritdoc />
    public override string ToString() => Format("trc.toml");
}
