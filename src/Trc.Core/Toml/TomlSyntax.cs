namespace Trc.Core.Toml;

// The concrete syntax tree. Every node records its span [Start, End) in UTF-16 offsets into the
// SourceText, and comments and blank lines are kept as trivia, so a formatter can rewrite a document
// without losing what the author wrote. Semantics (redefinition rules) live in TomlDocumentBuilder.

/// <summary>A node of the syntax tree, spanning <c>[Start, End)</c> of the source text.</summary>
public abstract class TomlSyntaxNode
{
    /// <summary>Offset of the first character.</summary>
    public int Start { get; internal init; }

    /// <summary>Offset just past the last character.</summary>
    public int End { get; internal set; }
}

/// <summary>A <c># comment</c>. <see cref="Text"/> is what follows the <c>#</c>, trailing whitespace removed.</summary>
public sealed class TomlCommentSyntax : TomlSyntaxNode
{
    /// <summary>The comment's text after the <c>#</c>.</summary>
    public required string Text { get; init; }
}

/// <summary>A line that holds only a comment, or nothing (a blank line).</summary>
public sealed class TomlTriviaSyntax : TomlSyntaxNode
{
    /// <summary>The comment, or null for a blank line.</summary>
    public TomlCommentSyntax? Comment { get; init; }

    /// <summary>True for a blank line.</summary>
    public bool IsBlankLine => Comment is null;
}

/// <summary>How a key part was written.</summary>
public enum TomlKeyStyle
{
    /// <summary><c>name</c></summary>
    Bare,

    /// <summary><c>"name"</c></summary>
    Basic,

    /// <summary><c>'name'</c></summary>
    Literal,
}

/// <summary>One part of a dotted key.</summary>
public sealed class TomlKeyPartSyntax : TomlSyntaxNode
{
    /// <summary>The decoded name.</summary>
    public required string Name { get; init; }

    /// <summary>How it was written.</summary>
    public TomlKeyStyle Style { get; init; }
}

/// <summary>A key: one or more parts joined by dots.</summary>
public sealed class TomlKeySyntax : TomlSyntaxNode
{
    /// <summary>The parts, outermost first.</summary>
    public required IReadOnlyList<TomlKeyPartSyntax> Parts { get; init; }

    /// <summary>The key as a dotted path for messages, with parts quoted where needed.</summary>
    public string DottedName => TomlKeys.Join(Parts.Select(p => p.Name));
}

/// <summary>A top-level line: a table header or a key/value pair, with its comments.</summary>
public abstract class TomlItemSyntax : TomlSyntaxNode
{
    /// <summary>Comment lines and blank lines since the previous item.</summary>
    public IReadOnlyList<TomlTriviaSyntax> LeadingTrivia { get; internal set; } = [];

    /// <summary>A comment at the end of the item's (last) line.</summary>
    public TomlCommentSyntax? TrailingComment { get; internal set; }
}

/// <summary><c>[a.b]</c> or <c>[[a.b]]</c>.</summary>
public sealed class TomlTableHeaderSyntax : TomlItemSyntax
{
    /// <summary>The table's key.</summary>
    public required TomlKeySyntax Key { get; init; }

    /// <summary>True for <c>[[...]]</c>.</summary>
    public bool IsArrayOfTables { get; init; }
}

/// <summary><c>key = value</c>, at top level or inside an inline table.</summary>
public sealed class TomlKeyValueSyntax : TomlItemSyntax
{
    /// <summary>The key.</summary>
    public required TomlKeySyntax Key { get; init; }

    /// <summary>The value.</summary>
    public required TomlValueSyntax Value { get; init; }
}

/// <summary>A value as written.</summary>
public abstract class TomlValueSyntax : TomlSyntaxNode
{
}

/// <summary>How a string was written.</summary>
public enum TomlStringStyle
{
    /// <summary><c>"..."</c></summary>
    Basic,

    /// <summary><c>"""..."""</c></summary>
    MultilineBasic,

    /// <summary><c>'...'</c></summary>
    Literal,

    /// <summary><c>'''...'''</c></summary>
    MultilineLiteral,
}

/// <summary>A string, number, boolean or date-time. The parsed value is shared with the document model.</summary>
public sealed class TomlScalarSyntax : TomlValueSyntax
{
    /// <summary>The parsed value.</summary>
    public required TomlValue Value { get; init; }

    /// <summary>For strings: how the string was written.</summary>
    public TomlStringStyle StringStyle { get; init; }
}

/// <summary>One element of an array with the comments around it.</summary>
public sealed class TomlArrayElementSyntax : TomlSyntaxNode
{
    /// <summary>Comment lines before the element.</summary>
    public required IReadOnlyList<TomlCommentSyntax> LeadingComments { get; init; }

    /// <summary>The element.</summary>
    public required TomlValueSyntax Value { get; init; }

    /// <summary>A comment on the element's line, after it (and after its comma).</summary>
    public TomlCommentSyntax? TrailingComment { get; internal set; }
}

/// <summary><c>[ ... ]</c>: an array value (which may span lines and hold comments).</summary>
public sealed class TomlArraySyntax : TomlValueSyntax
{
    /// <summary>The elements.</summary>
    public required IReadOnlyList<TomlArrayElementSyntax> Elements { get; init; }

    /// <summary>Comments after the last element, before the <c>]</c>.</summary>
    public required IReadOnlyList<TomlCommentSyntax> ClosingComments { get; init; }
}

/// <summary><c>{ k = v, ... }</c>: an inline table.</summary>
public sealed class TomlInlineTableSyntax : TomlValueSyntax
{
    /// <summary>The key/value pairs, in order.</summary>
    public required IReadOnlyList<TomlKeyValueSyntax> Entries { get; init; }
}

/// <summary>A whole document: items in order, and the trivia after the last one.</summary>
public sealed class TomlDocumentSyntax
{
    /// <summary>The source the tree spans.</summary>
    public required SourceText Source { get; init; }

    /// <summary>Headers and key/values in document order.</summary>
    public required IReadOnlyList<TomlItemSyntax> Items { get; init; }

    /// <summary>Comment and blank lines after the last item.</summary>
    public required IReadOnlyList<TomlTriviaSyntax> EndTrivia { get; init; }

    /// <summary>True when the text started with a UTF-8 byte order mark (which TOML allows and ignores).</summary>
    public bool HadByteOrderMark { get; init; }
}
