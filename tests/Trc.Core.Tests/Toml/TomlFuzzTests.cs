using System.Diagnostics;
using System.Text;
using Trc.Core.Toml;
using TomlReader = Trc.Core.Toml.Toml;

namespace Trc.Core.Tests.Toml;

/// <summary>
/// A deterministic mutation fuzzer: valid documents (toml-test's and a few written here) get random
/// byte flips, insertions of bytes that matter to TOML, deletions and duplicated ranges. Whatever
/// comes out, the reader must return a result (never throw), errors must be well-formed, and a
/// document that parses must encode to tagged JSON, the same way every time.
/// </summary>
public sealed class TomlFuzzTests
{
    /// <summary>Case <c>i</c> mutates with <c>new Random(Seed + i)</c>, so any failure replays alone.</summary>
    private const int Seed = 12345;

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>Bytes that mean something to TOML or to UTF-8: NUL, CR, LF, quotes, brackets, braces, backslash, invalid and lead bytes.</summary>
    private static readonly byte[] SpecialBytes =
        [0x00, 0x0D, 0x0A, 0x22, 0x27, 0x5B, 0x5D, 0x7B, 0x7D, 0x5C, 0xFF, 0x2E, 0x3D, 0x23, 0x2C, 0x20, 0x09, 0x7F, 0x80, 0xC3, 0xED, 0xF0, 0x2B, 0x2D, 0x5F, 0x3A, 0x54, 0x5A];

    /// <summary>Fragments that reach deeper than single bytes: delimiters, escapes, edge numbers and dates.</summary>
    private static readonly byte[][] Tokens =
    [
        .. new[]
        {
            "\"\"\"", "'''", "[[", "]]", " = ", ".", "\\u", "\\UD800", "\\U0010FFFF", "\\\n", "1e400", "0x", "-nan", "inf",
            "\r\n", "\r", "# c\n", ",", "{}", "[]", "9223372036854775808", "1979-05-27T", "07:32:60", ".999999999999",
            "+23:59", "_", "😀", "\uFEFF", "\n[a]\n", "\n[[a]]\n", "a.b = 1\n", "\"\" = 1\n",
        }.Select(Encoding.UTF8.GetBytes),
    ];

    private const string HandWrittenDocument = """"
        # A document touching most of the grammar, so mutations reach every branch.
        title = "TOML \"fuzz\" \u00e9 \U0001F600"
        literal = 'C:\path\'
        ml = """
        Roses are red \
            Violets are blue"""
        mll = '''
        it's ''literal'''''
        ints = [ +99, -17, 0, 1_000, 0xDEAD_beef, 0o755, 0b1101 ]
        floats = [ 1.0, -0.01, 5e+22, 6.626e-34, inf, -inf, nan, -0.0, 1e1_0 ]
        dates = [ 1979-05-27T07:32:00Z, 1979-05-27 00:32:00.999999-07:00, 1979-05-27T07:32:00, 1979-05-27, 00:32:00.5 ]
        bools = [true,false,]
        "quoted key" . bare . 'lit' = { x = 1, y.z = [ { w = "}" } ] }
        a.b.c = 1
        a.b.d = 2

        [table.sub] # trailing
        key = "value" # trailing

        [[aot]]
        n = 1
        [aot.child]
        m = 2
        [[aot]]
        [[aot.grand]]
        deep = [ [ [ [ 1 ] ] ], [ "a", [ 'b' ] ] ]
        """";

    private static readonly string[] HandWritten =
    [
        HandWrittenDocument,
        HandWrittenDocument.Replace("\n", "\r\n", StringComparison.Ordinal),
        "\uFEFFa = 1\n",
        "[a.b.c]\n[a]\nx = 1\n[a.b]\ny = 2\n",
        "k = \"\"\"\"\"x\"\"\"\"\"\n",
        "x = [\n  # lead\n  1, # one\n  2\n  # closing\n]\n",
        "\"\u00e9\" = '日本語'\n\"😀\" = \"\\uD7FF\\uE000\"\n",
        "t = 1987-07-05 17:45:00Z # comment after a space date-time\n",
    ];

    [SharedTestDataFact]
    public void Mutated_toml_test_documents_never_make_the_reader_throw()
    {
        var corpus = ToolTestCorpus().Concat(HandWrittenCorpus()).ToList();
        Assert.True(corpus.Count > 200, $"expected the toml-test valid corpus, found {corpus.Count} documents");
        var report = Fuzz(corpus, cases: 200_000, firstCase: 0);
        Assert.True(report.Failures.Count == 0, report.Describe());
        // A fuzzer that only ever produced errors, or never did, would not be exploring much.
        Assert.InRange(report.Accepted, report.Cases / 20, report.Cases - (report.Cases / 20));
    }

    [Fact]
    public void Mutated_hand_written_documents_never_make_the_reader_throw()
    {
        var report = Fuzz(HandWrittenCorpus().ToList(), cases: 20_000, firstCase: 1_000_000);
        Assert.True(report.Failures.Count == 0, report.Describe());
        Assert.True(report.Accepted > 0 && report.Accepted < report.Cases, report.Describe());
    }

    [SharedTestDataFact]
    public void Every_valid_toml_test_document_parses_to_the_same_json_twice_and_from_a_string()
    {
        foreach (var (name, bytes) in ToolTestCorpus())
        {
            var first = TomlReader.Parse(bytes);
            Assert.True(first.IsSuccess, $"{name}: {first.Error}");
            var json = TomlTaggedJson.Encode(first.Document!.Root);
            Assert.Equal(json, TomlTaggedJson.Encode(TomlReader.Parse(bytes).Document!.Root));
            Assert.Equal(json, TomlTaggedJson.Encode(TomlReader.Parse(Encoding.UTF8.GetString(bytes)).Document!.Root));
        }
    }

    [Fact]
    public void Mutation_is_deterministic_for_a_seed()
    {
        var input = Encoding.UTF8.GetBytes(HandWrittenDocument);
        Assert.Equal(Mutate(new Random(Seed), input), Mutate(new Random(Seed), input));
        Assert.NotEqual(Mutate(new Random(Seed), input), Mutate(new Random(Seed + 1), input));
    }

    // ---- the fuzzer -----------------------------------------------------------------------------

    private sealed record Failure(int Case, string Document, byte[] Input, string Problem);

    private sealed class Report
    {
        public int Cases { get; set; }

        public int Accepted { get; set; }

        public List<Failure> Failures { get; } = [];

        public TimeSpan Elapsed { get; set; }

        public string Describe()
        {
            var sb = new StringBuilder($"{Cases} cases in {Elapsed.TotalSeconds:F1} s, {Accepted} accepted, {Failures.Count} failures");
            foreach (var f in Failures.Take(5))
            {
                sb.Append($"\n--- case {f.Case} (new Random({Seed} + {f.Case}) on {f.Document}): {f.Problem}\n    input (base64): {Convert.ToBase64String(f.Input)}");
            }
            return sb.ToString();
        }
    }

    private static Report Fuzz(IReadOnlyList<(string Name, byte[] Bytes)> corpus, int cases, int firstCase)
    {
        var report = new Report();
        var task = Task.Run(() =>
        {
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < cases; i++)
            {
                var index = firstCase + i;
                var (name, original) = corpus[i % corpus.Count];
                var input = Mutate(new Random(Seed + index), original);
                var caseWatch = Stopwatch.StartNew();
                var problem = Check(input, out var accepted);
                if (problem is null && caseWatch.Elapsed > TimeSpan.FromSeconds(2))
                {
                    problem = $"took {caseWatch.Elapsed.TotalSeconds:F1} s";
                }
                if (problem is not null)
                {
                    report.Failures.Add(new Failure(index, name, input, problem));
                }
                report.Accepted += accepted ? 1 : 0;
                report.Cases++;
            }
            report.Elapsed = watch.Elapsed;
        });
        Assert.True(task.Wait(Deadline), $"the fuzzer did not finish within {Deadline.TotalSeconds} s; stopped at case {firstCase + report.Cases}");
        return report;
    }

    /// <summary>Null when the reader behaved; otherwise what went wrong.</summary>
    private static string? Check(byte[] input, out bool accepted)
    {
        accepted = false;
        TomlParseResult result;
        try
        {
            result = TomlReader.Parse(input);
        }
        catch (Exception e)
        {
            return $"Parse threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }

        var validUtf8 = System.Text.Unicode.Utf8.IsValid(input);
        TomlParseResult? fromString = null;
        if (validUtf8)
        {
            try
            {
                fromString = TomlReader.Parse(Encoding.UTF8.GetString(input));
            }
            catch (Exception e)
            {
                return $"Parse(string) threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
            }
        }

        if (!result.IsSuccess)
        {
            var error = result.Error!;
            var lines = 1 + input.Count(b => b == (byte)'\n');
            if (error.Position.Line < 1 || error.Position.Line > lines || error.Position.Column < 1)
            {
                return $"error position {error.Position} is outside the document ({lines} lines): {error.Message}";
            }
            if (string.IsNullOrWhiteSpace(error.Message) || error.Message.Length > 1_000)
            {
                return $"bad error message ({error.Message.Length} characters): {error.Message[..Math.Min(200, error.Message.Length)]}";
            }
            if (!TomlHostileInputTests.IsWellFormedUtf16(error.Message) || error.Message.Any(char.IsControl))
            {
                return $"error message holds a lone surrogate or a control character: {error.Message}";
            }
            if (fromString is not null && fromString.Error != error)
            {
                return $"the string entry point disagrees: {fromString.Error?.ToString() ?? "accepted"} vs {error}";
            }
            var again = TomlReader.Parse(input);
            return again.Error == error ? null : $"a second parse gave a different error: {again.Error} vs {error}";
        }

        accepted = true;
        var document = result.Document!;
        string json;
        try
        {
            json = TomlTaggedJson.Encode(document.Root);
        }
        catch (Exception e)
        {
            return $"TomlTaggedJson.Encode threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }
        var text = document.Syntax.Source.Text;
        foreach (var item in document.Syntax.Items)
        {
            if (item.Start < 0 || item.End > text.Length || item.Start >= item.End)
            {
                return $"item span [{item.Start},{item.End}) is outside the text of {text.Length} characters";
            }
        }
        var reparsed = TomlReader.Parse(input);
        if (!reparsed.IsSuccess || TomlTaggedJson.Encode(reparsed.Document!.Root) != json)
        {
            return "a second parse of the same bytes gave a different document";
        }
        if (fromString is null || !fromString.IsSuccess || TomlTaggedJson.Encode(fromString.Document!.Root) != json)
        {
            return $"the string entry point disagrees: {fromString?.Error?.ToString() ?? "different document"}";
        }
        return null;
    }

    private static byte[] Mutate(Random random, byte[] input)
    {
        var bytes = new List<byte>(input);
        var mutations = 1 + random.Next(4);
        for (var m = 0; m < mutations; m++)
        {
            var at = random.Next(bytes.Count + 1);
            switch (random.Next(8))
            {
                case 0 when at < bytes.Count:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when at < bytes.Count:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 2 when at < bytes.Count:
                    bytes[at] = SpecialBytes[random.Next(SpecialBytes.Length)];
                    break;
                case 3 when at < bytes.Count:
                    bytes.RemoveRange(at, 1 + random.Next(Math.Min(16, bytes.Count - at)));
                    break;
                case 4 when at < bytes.Count:
                    var length = 1 + random.Next(Math.Min(64, bytes.Count - at));
                    var range = bytes.GetRange(at, length);
                    bytes.InsertRange(random.Next(bytes.Count + 1), range);
                    break;
                case 5:
                    bytes.InsertRange(at, Tokens[random.Next(Tokens.Length)]);
                    break;
                default:
                    var run = random.Next(4) == 0 ? 1 + random.Next(8) : 1;
                    var special = SpecialBytes[random.Next(SpecialBytes.Length)];
                    bytes.InsertRange(at, Enumerable.Repeat(special, run));
                    break;
            }
        }
        return bytes.ToArray();
    }

    private static IEnumerable<(string Name, byte[] Bytes)> ToolTestCorpus()
    {
        var root = SharedTestData.PathOf("toml-test", "valid");
        return Directory.EnumerateFiles(root, "*.toml", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .Select(path => (Path.GetRelativePath(root, path), File.ReadAllBytes(path)));
    }

    private static IEnumerable<(string Name, byte[] Bytes)> HandWrittenCorpus() =>
        HandWritten.Select((text, i) => ($"hand-written #{i}", Encoding.UTF8.GetBytes(text)));
}
