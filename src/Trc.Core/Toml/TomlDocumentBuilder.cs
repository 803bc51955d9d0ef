namespace Trc.Core.Toml;

/// <summary>
/// Turns a syntax tree into a <see cref="TomlTable"/>, enforcing TOML 1.0's rules about defining
/// keys and tables once:
/// <list type="bullet">
/// <item>a key is defined once; a <c>[table]</c> is defined once;</item>
/// <item>a header may define a table that so far exists only as the parent of another header;</item>
/// <item>a table made by dotted keys cannot be defined again by a header, and dotted keys may extend
/// only tables that dotted keys made (never one defined by a header or made as a header's parent);</item>
/// <item>inline tables and static arrays are complete: nothing can be added to them afterwards.</item>
/// </list>
/// It also records the comments written around each value, for the formatter.
/// </summary>
public sealed class TomlDocumentBuilder
{
    private readonly SourceText _source;
    private readonly Dictionary<TomlValue, TomlComments> _comments = new(ReferenceEqualityComparer.Instance);

    private TomlDocumentBuilder(SourceText source) => _source = source;

    /// <summary>Builds the document; throws <see cref="TomlException"/> on a redefinition.</summary>
    public static TomlDocument Build(TomlDocumentSyntax syntax)
    {
        var builder = new TomlDocumentBuilder(syntax.Source);
        var root = new TomlTable(new TomlPosition(1, 1), TomlTableOrigin.Root);
        var current = root;
        IReadOnlyList<string> currentPath = [];
        var header = new List<TomlTriviaSyntax>();
        var firstItem = true;
        foreach (var item in syntax.Items)
        {
            var leading = item.LeadingTrivia;
            if (firstItem)
            {
                // Comments separated from the first item by a blank line belong to the file, not the item.
                var lastBlank = -1;
                for (var i = 0; i < leading.Count; i++)
                {
                    if (leading[i].IsBlankLine)
                    {
                        lastBlank = i;
                    }
                }
                header.AddRange(leading.Take(lastBlank + 1));
                leading = leading.Skip(lastBlank + 1).ToList();
                firstItem = false;
            }
            var comments = new TomlComments(
                leading.Where(t => !t.IsBlankLine).Select(t => t.Comment!.Text).ToList(),
                item.TrailingComment?.Text);
            switch (item)
            {
                case TomlTableHeaderSyntax h:
                    current = builder.DefineTable(root, h);
                    currentPath = h.Key.Parts.Select(p => p.Name).ToList();
                    builder.AttachComments(current, comments);
                    break;
                case TomlKeyValueSyntax kv:
                    var value = builder.DefineKeyValue(current, currentPath, kv);
                    builder.AttachComments(value, comments);
                    break;
            }
        }
        return new TomlDocument(
            root,
            syntax,
            builder._comments,
            header.Where(t => !t.IsBlankLine).Select(t => t.Comment!.Text).ToList(),
            syntax.EndTrivia.Where(t => !t.IsBlankLine).Select(t => t.Comment!.Text).ToList());
    }

    private void AttachComments(TomlValue value, TomlComments comments)
    {
        if (comments.IsEmpty)
        {
            return;
        }
        _comments[value] = _comments.TryGetValue(value, out var existing) ? existing.Merge(comments) : comments;
    }

    private TomlTable DefineTable(TomlTable root, TomlTableHeaderSyntax header)
    {
        var parts = header.Key.Parts;
        var table = root;
        for (var i = 0; i < parts.Count - 1; i++)
        {
            var part = parts[i];
            if (!table.TryGetValue(part.Name, out var existing))
            {
                var created = new TomlTable(Pos(part.Start), TomlTableOrigin.Implicit);
                table.Add(part.Name, created, Pos(part.Start));
                table = created;
                continue;
            }
            table = existing switch
            {
                TomlTable { Origin: TomlTableOrigin.Inline } => throw Error(part.Start, $"cannot add the table [{Path(parts, parts.Count)}] to the inline table {Path(parts, i + 1)} (defined at {existing.Position}): inline tables are complete"),
                TomlTable t => t,
                TomlArray { IsArrayOfTables: true } aot => (TomlTable)aot[^1],
                TomlArray => throw Error(part.Start, $"cannot add the table [{Path(parts, parts.Count)}] to {Path(parts, i + 1)}, which is a static array (defined at {existing.Position})"),
                _ => throw Error(part.Start, $"cannot define the table [{Path(parts, parts.Count)}]: {Path(parts, i + 1)} is already {existing.TypeNameWithArticle} (defined at {existing.Position})"),
            };
        }

        var last = parts[^1];
        var name = Path(parts, parts.Count);
        table.TryGetValue(last.Name, out var target);
        if (header.IsArrayOfTables)
        {
            TomlArray array;
            if (target is null)
            {
                array = new TomlArray(Pos(header.Start), isArrayOfTables: true);
                table.Add(last.Name, array, Pos(last.Start));
            }
            else if (target is TomlArray { IsArrayOfTables: true } existingArray)
            {
                array = existingArray;
            }
            else
            {
                throw Error(header.Start, $"cannot define the array of tables [[{name}]]: {name} is already {target.TypeNameWithArticle} (defined at {target.Position})");
            }
            var element = new TomlTable(Pos(header.Start), TomlTableOrigin.Header) { HeaderPosition = Pos(header.Start) };
            array.Add(element);
            return element;
        }

        switch (target)
        {
            case null:
                var created = new TomlTable(Pos(header.Start), TomlTableOrigin.Header) { HeaderPosition = Pos(header.Start) };
                table.Add(last.Name, created, Pos(last.Start));
                return created;
            case TomlTable { Origin: TomlTableOrigin.Implicit } implicitTable:
                implicitTable.Origin = TomlTableOrigin.Header;
                implicitTable.HeaderPosition = Pos(header.Start);
                return implicitTable;
            case TomlTable { Origin: TomlTableOrigin.Header } defined:
                throw Error(header.Start, $"the table [{name}] is defined twice (first at {defined.HeaderPosition ?? defined.Position})");
            case TomlTable { Origin: TomlTableOrigin.Dotted } dotted:
                throw Error(header.Start, $"the table [{name}] was already defined by dotted keys at {dotted.Position}");
            case TomlTable inline:
                throw Error(header.Start, $"the table [{name}] was already defined as an inline table at {inline.Position}");
            default:
                throw Error(header.Start, $"cannot define the table [{name}]: it is already {target.TypeNameWithArticle} (defined at {target.Position})");
        }
    }

    private TomlValue DefineKeyValue(TomlTable table, IReadOnlyList<string> basePath, TomlKeyValueSyntax kv)
    {
        var parts = kv.Key.Parts;
        string Path(IReadOnlyList<TomlKeyPartSyntax> keyParts, int count) =>
            TomlKeys.Join(basePath.Concat(keyParts.Take(count).Select(p => p.Name)));
        for (var i = 0; i < parts.Count - 1; i++)
        {
            var part = parts[i];
            if (!table.TryGetValue(part.Name, out var existing))
            {
                var created = new TomlTable(Pos(part.Start), TomlTableOrigin.Dotted);
                table.Add(part.Name, created, Pos(part.Start));
                table = created;
                continue;
            }
            table = existing switch
            {
                TomlTable { Origin: TomlTableOrigin.Dotted } t => t,
                TomlTable { Origin: TomlTableOrigin.Inline } => throw Error(part.Start, $"cannot add {Path(parts, parts.Count)} to the inline table {Path(parts, i + 1)} (defined at {existing.Position}): inline tables are complete"),
                TomlTable { Origin: TomlTableOrigin.Implicit } t => throw Error(part.Start, $"cannot add {Path(parts, parts.Count)} with a dotted key: the table {Path(parts, i + 1)} was created by the table header at {t.Position}; define keys of {Path(parts, i + 1)} under its own [{Path(parts, i + 1)}] header instead"),
                TomlTable t => throw Error(part.Start, $"cannot add {Path(parts, parts.Count)} with a dotted key: the table {Path(parts, i + 1)} was defined by a header at {t.HeaderPosition ?? t.Position}; add the key under that header instead"),
                _ => throw Error(part.Start, $"cannot use {Path(parts, i + 1)} as a table: it is already {existing.TypeNameWithArticle} (defined at {existing.Position})"),
            };
        }

        var last = parts[^1];
        if (table.TryGetValue(last.Name, out var previous))
        {
            throw Error(last.Start, $"the key {Path(parts, parts.Count)} is defined twice (first at {table.GetKeyPosition(last.Name)})");
        }
        var value = Materialize(kv.Value, basePath.Concat(parts.Select(p => p.Name)).ToList());
        table.Add(last.Name, value, Pos(last.Start));
        return value;
    }

    /// <summary>Builds the model of a value; inline tables and arrays come out closed (<see cref="TomlTableOrigin.Inline"/>).</summary>
    private TomlValue Materialize(TomlValueSyntax syntax, IReadOnlyList<string> path)
    {
        switch (syntax)
        {
            case TomlScalarSyntax scalar:
                return scalar.Value;
            case TomlArraySyntax arraySyntax:
                var array = new TomlArray(Pos(arraySyntax.Start), isArrayOfTables: false);
                foreach (var element in arraySyntax.Elements)
                {
                    var value = Materialize(element.Value, path);
                    array.Add(value);
                    AttachComments(value, new TomlComments(element.LeadingComments.Select(c => c.Text).ToList(), element.TrailingComment?.Text));
                }
                if (arraySyntax.ClosingComments.Count > 0)
                {
                    AttachComments(array, TomlComments.Closing(arraySyntax.ClosingComments.Select(c => c.Text).ToList()));
                }
                return array;
            case TomlInlineTableSyntax inlineSyntax:
                // Built with dotted-key rules (so { a.b = 1, a.c = 2 } works), then closed.
                var table = new TomlTable(Pos(inlineSyntax.Start), TomlTableOrigin.Dotted);
                foreach (var entry in inlineSyntax.Entries)
                {
                    DefineKeyValue(table, path, entry);
                }
                Close(table);
                return table;
            default:
                throw new InvalidOperationException($"unknown syntax node {syntax.GetType().Name}");
        }
    }

    private static void Close(TomlTable table)
    {
        table.Origin = TomlTableOrigin.Inline;
        foreach (var (_, value) in table)
        {
            if (value is TomlTable { Origin: not TomlTableOrigin.Inline } child)
            {
                Close(child);
            }
        }
    }

    private static string Path(IReadOnlyList<TomlKeyPartSyntax> parts, int count) => TomlKeys.Join(parts.Take(count).Select(p => p.Name));

    private TomlPosition Pos(int offset) => _source.GetPosition(offset);

    private TomlException Error(int offset, string message) => new(new TomlError(Pos(offset), message));
}

/// <summary>Comments written around a value: whole lines before it, one at the end of its line, and (arrays) before the closing bracket.</summary>
/// <param name="Leading">Comment lines above the value's key, header or array element.</param>
/// <param name="Trailing">The comment at the end of its line.</param>
public sealed record TomlComments(IReadOnlyList<string> Leading, string? Trailing)
{
    /// <summary>For arrays: comments after the last element.</summary>
    public IReadOnlyList<string> ClosingLines { get; init; } = [];

    /// <summary>No comment at all.</summary>
    public bool IsEmpty => Leading.Count == 0 && Trailing is null && ClosingLines.Count == 0;

    /// <summary>Only closing comments.</summary>
    public static TomlComments Closing(IReadOnlyList<string> lines) => new([], null) { ClosingLines = lines };

    /// <summary>Combines two sets (a value may collect comments from its key line and, for arrays, inside).</summary>
    public TomlComments Merge(TomlComments other) => new(
        Leading.Concat(other.Leading).ToList(),
        Trailing ?? other.Trailing)
    {
        ClosingLines = ClosingLines.Concat(other.ClosingLines).ToList(),
    };
}

/// <summary>A parsed TOML document: the root table, the syntax tree, and the comments around each value.</summary>
public sealed class TomlDocument
{
    private readonly IReadOnlyDictionary<TomlValue, TomlComments> _comments;

    internal TomlDocument(
        TomlTable root,
        TomlDocumentSyntax syntax,
        IReadOnlyDictionary<TomlValue, TomlComments> comments,
        IReadOnlyList<string> headerComments,
        IReadOnlyList<string> footerComments)
    {
        Root = root;
        Syntax = syntax;
        _comments = comments;
        HeaderComments = headerComments;
        FooterComments = footerComments;
    }

    /// <summary>The root table.</summary>
    public TomlTable Root { get; }

    /// <summary>The syntax tree the document was built from.</summary>
    public TomlDocumentSyntax Syntax { get; }

    /// <summary>Comment lines at the top of the file, separated from the first item by a blank line.</summary>
    public IReadOnlyList<string> HeaderComments { get; }

    /// <summary>Comment lines after the last item.</summary>
    public IReadOnlyList<string> FooterComments { get; }

    /// <summary>The comments written around a value of this document, if any.</summary>
    public TomlComments? GetComments(TomlValue value) => _comments.TryGetValue(value, out var c) ? c : null;
}
