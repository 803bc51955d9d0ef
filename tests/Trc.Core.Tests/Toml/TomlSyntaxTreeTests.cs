using System.Text;
using Trc.Core.Toml;
using TomlReader = Trc.Core.Toml.Toml;

namespace Trc.Core.Tests.Toml;

/// <summary>
/// The syntax tree keeps what the author wrote: comments and blank lines as trivia, and spans that
/// cover exactly the text of each node. The document model exposes the same comments per value.
/// </summary>
public sealed class TomlSyntaxTreeTests
{
    // ---- spans ----------------------------------------------------------------------------------

    [Fact]
    public void A_key_value_spans_from_its_key_to_the_end_of_its_value()
    {
        var (syntax, text) = Tree("  a . \"b\" =   'x y'   # note\n");
        var kv = Assert.IsType<TomlKeyValueSyntax>(Assert.Single(syntax.Items));
        Assert.Equal("a . \"b\" =   'x y'", Span(text, kv));
        Assert.Equal("a . \"b\"", Span(text, kv.Key));
        Assert.Equal(["a", "\"b\""], kv.Key.Parts.Select(p => Span(text, p)));
        Assert.Equal([TomlKeyStyle.Bare, TomlKeyStyle.Basic], kv.Key.Parts.Select(p => p.Style));
        Assert.Equal("'x y'", Span(text, kv.Value));
        Assert.Equal("# note", Span(text, kv.TrailingComment!));
        Assert.Equal(" note", kv.TrailingComment!.Text);
    }

    [Theory]
    [InlineData("a = \"x\"", "\"x\"", TomlStringStyle.Basic)]
    [InlineData("a = 'x'", "'x'", TomlStringStyle.Literal)]
    [InlineData("a = \"\"\"\nx\ny\"\"\"", "\"\"\"\nx\ny\"\"\"", TomlStringStyle.MultilineBasic)]
    [InlineData("a = '''x''''' ", "'''x'''''", TomlStringStyle.MultilineLiteral)]
    [InlineData("a = \"\"\"x\\\n  y\"\"\"", "\"\"\"x\\\n  y\"\"\"", TomlStringStyle.MultilineBasic)]
    public void A_string_value_spans_its_delimiters_and_records_its_style(string document, string span, TomlStringStyle style)
    {
        var (syntax, text) = Tree(document);
        var scalar = Assert.IsType<TomlScalarSyntax>(((TomlKeyValueSyntax)syntax.Items[0]).Value);
        Assert.Equal(span, Span(text, scalar));
        Assert.Equal(style, scalar.StringStyle);
    }

    [Theory]
    [InlineData("a = 1_000 ", "1_000")]
    [InlineData("a = -inf#c", "-inf")]
    [InlineData("a = 1979-05-27 07:32:00Z # c", "1979-05-27 07:32:00Z")]
    [InlineData("a = 1979-05-27 # c", "1979-05-27")]
    [InlineData("a = 07:32:00.5\t", "07:32:00.5")]
    [InlineData("a = true\r\n", "true")]
    [InlineData("a = 0xdead_beef", "0xdead_beef")]
    public void A_scalar_value_spans_exactly_its_literal(string document, string span)
    {
        var (syntax, text) = Tree(document);
        Assert.Equal(span, Span(text, ((TomlKeyValueSyntax)syntax.Items[0]).Value));
    }

    [Fact]
    public void Headers_span_their_brackets()
    {
        var (syntax, text) = Tree("[ a . 'b' ]  # one\n[[ c ]]\n");
        var table = Assert.IsType<TomlTableHeaderSyntax>(syntax.Items[0]);
        Assert.Equal("[ a . 'b' ]", Span(text, table));
        Assert.Equal("a . 'b'", Span(text, table.Key));
        Assert.False(table.IsArrayOfTables);
        Assert.Equal(" one", table.TrailingComment!.Text);
        var array = Assert.IsType<TomlTableHeaderSyntax>(syntax.Items[1]);
        Assert.Equal("[[ c ]]", Span(text, array));
        Assert.Equal("c", Span(text, array.Key));
        Assert.True(array.IsArrayOfTables);
        Assert.Null(array.TrailingComment);
    }

    [Fact]
    public void Arrays_and_their_elements_span_their_text()
    {
        var (syntax, text) = Tree("a = [ 1 , [2,3] ,{ b = 'c' } , ]");
        var array = Assert.IsType<TomlArraySyntax>(((TomlKeyValueSyntax)syntax.Items[0]).Value);
        Assert.Equal("[ 1 , [2,3] ,{ b = 'c' } , ]", Span(text, array));
        Assert.Equal(["1", "[2,3]", "{ b = 'c' }"], array.Elements.Select(e => Span(text, e)));
        Assert.Equal(["1", "[2,3]", "{ b = 'c' }"], array.Elements.Select(e => Span(text, e.Value)));
        var inline = Assert.IsType<TomlInlineTableSyntax>(array.Elements[2].Value);
        Assert.Equal("b = 'c'", Span(text, Assert.Single(inline.Entries)));
    }

    [Fact]
    public void A_multi_line_key_value_spans_all_its_lines()
    {
        var (syntax, text) = Tree("a = [\r\n  1,\r\n  2,\r\n] # end\r\nb = 2\r\n");
        Assert.Equal("a = [\r\n  1,\r\n  2,\r\n]", Span(text, syntax.Items[0]));
        Assert.Equal(" end", syntax.Items[0].TrailingComment!.Text);
        Assert.Equal("b = 2", Span(text, syntax.Items[1]));
    }

    [Fact]
    public void Spans_are_offsets_into_the_text_without_its_byte_order_mark()
    {
        var result = TomlReader.Parse(Encoding.UTF8.GetPreamble().Concat("a = 1 # c\n"u8.ToArray()).ToArray());
        var syntax = result.Document!.Syntax;
        Assert.True(syntax.HadByteOrderMark);
        Assert.Equal("a = 1 # c\n", syntax.Source.Text);
        Assert.Equal(0, syntax.Items[0].Start);
        Assert.Equal(new TomlPosition(1, 5), result.Document.Root["a"].Position);
        Assert.False(TomlReader.Parse("a = 1").Document!.Syntax.HadByteOrderMark);
    }

    [Fact]
    public void Every_node_span_lies_inside_its_parent_in_a_busy_document()
    {
        var (syntax, text) = Tree(BusyDocument);
        var previousEnd = 0;
        foreach (var item in syntax.Items)
        {
            Assert.True(item.Start >= previousEnd, $"item at {item.Start} overlaps the previous one ending at {previousEnd}");
            Assert.True(item.End <= text.Length && item.Start < item.End);
            foreach (var trivia in item.LeadingTrivia)
            {
                Assert.True(trivia.End <= item.Start);
            }
            if (item is TomlKeyValueSyntax kv)
            {
                AssertInside(kv, kv.Key);
                AssertInside(kv, kv.Value);
                AssertValueSpans(kv.Value);
            }
            else if (item is TomlTableHeaderSyntax header)
            {
                AssertInside(header, header.Key);
            }
            if (item.TrailingComment is { } comment)
            {
                Assert.True(comment.Start >= item.End);
                Assert.Equal('#', text[comment.Start]);
            }
            previousEnd = item.TrailingComment?.End ?? item.End;
        }
    }

    // ---- trivia ---------------------------------------------------------------------------------

    [Fact]
    public void Comments_and_blank_lines_before_an_item_are_its_leading_trivia()
    {
        var (syntax, text) = Tree("a = 1\n\n# about b\n   # indented\n\t\nb = 2\n");
        var b = syntax.Items[1];
        Assert.Equal(
            [(true, (string?)null), (false, " about b"), (false, " indented"), (true, null)],
            b.LeadingTrivia.Select(t => (t.IsBlankLine, t.Comment?.Text)));
        Assert.Equal("# indented", Span(text, b.LeadingTrivia[2]));
        Assert.Empty(syntax.Items[0].LeadingTrivia);
    }

    [Fact]
    public void Trivia_after_the_last_item_is_end_trivia()
    {
        var (syntax, _) = Tree("a = 1\n\n# bye\n#\n");
        Assert.Equal(
            [(true, (string?)null), (false, " bye"), (false, "")],
            syntax.EndTrivia.Select(t => (t.IsBlankLine, t.Comment?.Text)));
    }

    [Fact]
    public void Comment_text_drops_trailing_whitespace_and_the_cr_of_crlf()
    {
        var (syntax, text) = Tree("#  lead \t\r\na = 1 #trail  \r\n");
        var comment = syntax.Items[0].LeadingTrivia[0].Comment!;
        Assert.Equal("  lead", comment.Text);
        Assert.Equal("#  lead \t", Span(text, comment));
        Assert.Equal("trail", syntax.Items[0].TrailingComment!.Text);
    }

    [Fact]
    public void Comments_keep_any_unicode_and_tabs()
    {
        var (syntax, _) = Tree("# 😀\tcafé ʎǝʞ # not a second comment\n");
        Assert.Equal(" 😀\tcafé ʎǝʞ # not a second comment", syntax.EndTrivia[0].Comment!.Text);
    }

    [Fact]
    public void Array_elements_keep_leading_trailing_and_closing_comments()
    {
        var (syntax, _) = Tree("""
            a = [ # opening
              # before one
              1, # after one
              2 # after two
              ,
              # before three
              # also before three
              3,
              # closing
              # closing too
            ]
            """);
        var array = (TomlArraySyntax)((TomlKeyValueSyntax)syntax.Items[0]).Value;
        Assert.Equal(3, array.Elements.Count);
        Assert.Equal([" opening", " before one"], array.Elements[0].LeadingComments.Select(c => c.Text));
        Assert.Equal(" after one", array.Elements[0].TrailingComment!.Text);
        Assert.Empty(array.Elements[1].LeadingComments);
        Assert.Equal(" after two", array.Elements[1].TrailingComment!.Text);
        Assert.Equal([" before three", " also before three"], array.Elements[2].LeadingComments.Select(c => c.Text));
        Assert.Null(array.Elements[2].TrailingComment);
        Assert.Equal([" closing", " closing too"], array.ClosingComments.Select(c => c.Text));
    }

    [Fact]
    public void A_comment_after_the_last_element_without_a_comma_is_that_elements_trailing_comment()
    {
        var (syntax, _) = Tree("a = [\n  1 # last\n]");
        var array = (TomlArraySyntax)((TomlKeyValueSyntax)syntax.Items[0]).Value;
        Assert.Equal(" last", Assert.Single(array.Elements).TrailingComment!.Text);
        Assert.Empty(array.ClosingComments);
    }

    [Fact]
    public void Nested_arrays_keep_their_own_comments()
    {
        var (syntax, _) = Tree("a = [\n  [ # inner open\n    1, # inner one\n    # inner closing\n  ], # outer one\n]");
        var outer = (TomlArraySyntax)((TomlKeyValueSyntax)syntax.Items[0]).Value;
        var inner = (TomlArraySyntax)outer.Elements[0].Value;
        Assert.Equal(" outer one", outer.Elements[0].TrailingComment!.Text);
        Assert.Equal(" inner open", Assert.Single(inner.Elements[0].LeadingComments).Text);
        Assert.Equal(" inner one", inner.Elements[0].TrailingComment!.Text);
        Assert.Equal(" inner closing", Assert.Single(inner.ClosingComments).Text);
    }

    [Fact]
    public void Crlf_documents_keep_the_same_trivia_as_lf_documents()
    {
        var lf = Tree(BusyDocument).Syntax;
        var crlf = Tree(BusyDocument.Replace("\n", "\r\n", StringComparison.Ordinal)).Syntax;
        Assert.Equal(Describe(lf), Describe(crlf));

        static string Describe(TomlDocumentSyntax s) => string.Join("|", s.Items.Select(i =>
            $"{i.GetType().Name}:{string.Join(",", i.LeadingTrivia.Select(t => t.Comment?.Text ?? "<blank>"))}:{i.TrailingComment?.Text}"))
            + "|end:" + string.Join(",", s.EndTrivia.Select(t => t.Comment?.Text ?? "<blank>"));
    }

    // ---- comments in the document model -------------------------------------------------------------

    [Fact]
    public void Header_comments_are_those_separated_from_the_first_item_by_a_blank_line()
    {
        var document = Document("# file header\n# second line\n\n# about a\na = 1 # a's trailing\n\n# footer\n");
        Assert.Equal([" file header", " second line"], document.HeaderComments);
        Assert.Equal([" footer"], document.FooterComments);
        var comments = document.GetComments(document.Root["a"])!;
        Assert.Equal([" about a"], comments.Leading);
        Assert.Equal(" a's trailing", comments.Trailing);
    }

    [Fact]
    public void Without_a_blank_line_the_top_comments_belong_to_the_first_item()
    {
        var document = Document("# about a\na = 1\n");
        Assert.Empty(document.HeaderComments);
        Assert.Equal([" about a"], document.GetComments(document.Root["a"])!.Leading);
    }

    [Fact]
    public void Everything_up_to_the_last_blank_line_before_the_first_item_is_header()
    {
        var document = Document("# one\n\n# two\n\n# about a\na = 1\n");
        Assert.Equal([" one", " two"], document.HeaderComments);
        Assert.Equal([" about a"], document.GetComments(document.Root["a"])!.Leading);
    }

    [Fact]
    public void A_document_of_only_comments_has_them_as_footer()
    {
        var document = Document("# one\n\n# two\n");
        Assert.Empty(document.HeaderComments);
        Assert.Equal([" one", " two"], document.FooterComments);
    }

    [Fact]
    public void Table_headers_carry_their_comments_on_the_table()
    {
        var document = Document("a = 1\n\n# the server\n[server] # main\nport = 1\n\n# each peer\n[[peer]] # first\n[[peer]]\n");
        var server = (TomlTable)document.Root["server"];
        Assert.Equal([" the server"], document.GetComments(server)!.Leading);
        Assert.Equal(" main", document.GetComments(server)!.Trailing);
        var peers = (TomlArray)document.Root["peer"];
        Assert.Equal([" each peer"], document.GetComments(peers[0])!.Leading);
        Assert.Equal(" first", document.GetComments(peers[0])!.Trailing);
        Assert.Null(document.GetComments(peers[1]));
        Assert.Null(document.GetComments(peers));
    }

    [Fact]
    public void An_implicit_table_defined_later_gets_the_comments_of_its_header()
    {
        var document = Document("[a.b]\n# about a\n[a] # a\n");
        var a = (TomlTable)document.Root["a"];
        Assert.Equal([" about a"], document.GetComments(a)!.Leading);
        Assert.Equal(" a", document.GetComments(a)!.Trailing);
    }

    [Fact]
    public void Array_element_comments_and_closing_comments_reach_the_model()
    {
        var document = Document("# about list\nlist = [ # opening\n  1, # one\n  # before two\n  2,\n  # closing\n] # after\n");
        var list = (TomlArray)document.Root["list"];
        var comments = document.GetComments(list)!;
        Assert.Equal([" about list"], comments.Leading);
        Assert.Equal(" after", comments.Trailing);
        Assert.Equal([" closing"], comments.ClosingLines);
        Assert.Equal([" opening"], document.GetComments(list[0])!.Leading);
        Assert.Equal(" one", document.GetComments(list[0])!.Trailing);
        Assert.Equal([" before two"], document.GetComments(list[1])!.Leading);
        Assert.Null(document.GetComments(list[1])!.Trailing);
    }

    [Fact]
    public void Values_without_comments_have_none()
    {
        var document = Document("a = 1\nb = [1]\nc = {d = 1}\n");
        Assert.Null(document.GetComments(document.Root["a"]));
        Assert.Null(document.GetComments(document.Root["b"]));
        Assert.Null(document.GetComments(((TomlArray)document.Root["b"])[0]));
        Assert.Null(document.GetComments(((TomlTable)document.Root["c"])["d"]));
        Assert.Null(document.GetComments(document.Root));
    }

    [Fact]
    public void A_dotted_key_attaches_its_comments_to_the_value_not_the_tables_it_makes()
    {
        var document = Document("# about c\na.b.c = 1 # c\n");
        var a = (TomlTable)document.Root["a"];
        Assert.Null(document.GetComments(a));
        var c = ((TomlTable)a["b"])["c"];
        Assert.Equal([" about c"], document.GetComments(c)!.Leading);
        Assert.Equal(" c", document.GetComments(c)!.Trailing);
    }

    [Fact]
    public void Comments_of_another_document_are_not_found()
    {
        var one = Document("# one\na = 1");
        var two = Document("# two\na = 1");
        Assert.Null(two.GetComments(one.Root["a"]));
    }

    // ---- helpers --------------------------------------------------------------------------------

    private const string BusyDocument = """"
        # header

        # about title
        title = "x" # t
        [owner] # o
        name = 'n'
        dob = 1979-05-27 07:32:00-08:00 # d

        [[products]]
        sku = 738594937
        colors = [ # open
          "red", # r
          # before green
          "green",
          [ 1, 2 ], # nested
          { a.b = 1, c = "}" },
          # closing
        ]
        # between
        [a.b.c]
        'quoted key' = """
        multi # not a comment
        line"""
        # end
        """";

    private static (TomlDocumentSyntax Syntax, string Text) Tree(string document)
    {
        var result = TomlReader.Parse(document);
        Assert.True(result.IsSuccess, $"rejected: {result.Error}");
        return (result.Document!.Syntax, result.Document.Syntax.Source.Text);
    }

    private static TomlDocument Document(string document)
    {
        var result = TomlReader.Parse(Encoding.UTF8.GetBytes(document));
        Assert.True(result.IsSuccess, $"rejected: {result.Error}");
        return result.Document!;
    }

    private static string Span(string text, TomlSyntaxNode node) => text[node.Start..node.End];

    private static void AssertInside(TomlSyntaxNode parent, TomlSyntaxNode child) =>
        Assert.True(
            parent.Start <= child.Start && child.End <= parent.End && child.Start <= child.End,
            $"{child.GetType().Name} [{child.Start},{child.End}) is not inside {parent.GetType().Name} [{parent.Start},{parent.End})");

    private static void AssertValueSpans(TomlValueSyntax value)
    {
        switch (value)
        {
            case TomlArraySyntax array:
                foreach (var element in array.Elements)
                {
                    AssertInside(array, element);
                    AssertInside(element, element.Value);
                    foreach (var comment in element.LeadingComments)
                    {
                        Assert.True(comment.End <= element.Start);
                    }
                    AssertValueSpans(element.Value);
                }
                break;
            case TomlInlineTableSyntax inline:
                foreach (var entry in inline.Entries)
                {
                    AssertInside(inline, entry);
                    AssertInside(entry, entry.Key);
                    AssertInside(entry, entry.Value);
                    AssertValueSpans(entry.Value);
                }
                break;
        }
    }
}
