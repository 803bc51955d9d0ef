using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Trc.Agent.Guest;

namespace Trc.Agent.Tests.Guest;

public sealed class ConsoleDecoderTests
{
    private const byte RS = 0x1e;

    private static byte[] Bytes(params object[] parts)
    {
        var bytes = new List<byte>();
        foreach (var part in parts)
        {
            switch (part)
            {
                case string s:
                    bytes.AddRange(Encoding.UTF8.GetBytes(s));
                    break;
                case byte b:
                    bytes.Add(b);
                    break;
                case byte[] a:
                    bytes.AddRange(a);
                    break;
                default:
                    throw new ArgumentException(part.GetType().Name);
            }
        }
        return [.. bytes];
    }

    // One boot's worth of console, annotated; the frames it must decode to.
    private static readonly byte[] Sample = Bytes(
        "[    0.220859] PCI: Fatal: No config space access function found\r\n", // the kernel's own line, CR LF
        RS, "I init started\n",
        RS, "R 86\n",
        RS, "O hello, world\n",
        RS, "O \n",                                                    // an empty stdout line
        RS, "E warning: caf\u00e9 \u2603\n",                          // UTF-8 passes through
        RS, "O ", new byte[] { 0xff, 0xfe, (byte)'x', 0x00, (byte)'y' }, "\n", // invalid UTF-8 and a NUL
        RS, "X 137 1\n",
        "[    4.513872] reboot: Power down\r\n");

    private static readonly ConsoleFrame[] SampleFrames =
    [
        new(ConsoleFrameKind.Kernel, "[    0.220859] PCI: Fatal: No config space access function found"),
        new(ConsoleFrameKind.Info, "init started"),
        new(ConsoleFrameKind.Ready, "86", Pid: 86),
        new(ConsoleFrameKind.Stdout, "hello, world"),
        new(ConsoleFrameKind.Stdout, ""),
        new(ConsoleFrameKind.Stderr, "warning: caf\u00e9 \u2603"),
        new(ConsoleFrameKind.Stdout, "\ufffd\ufffdx\0y"),
        new(ConsoleFrameKind.Exit, "137 1", ExitCode: 137, Oom: true),
        new(ConsoleFrameKind.Kernel, "[    4.513872] reboot: Power down"),
    ];

    private static List<ConsoleFrame> DecodeInPieces(byte[] bytes, IEnumerable<int> cuts)
    {
        var decoder = new ConsoleDecoder();
        var frames = new List<ConsoleFrame>();
        var start = 0;
        foreach (var cut in cuts.Append(bytes.Length))
        {
            decoder.Decode(bytes.AsSpan(start, cut - start), frames);
            start = cut;
        }
        frames.AddRange(decoder.Flush());
        return frames;
    }

    [Fact]
    public void A_boot_transcript_decodes_to_its_frames()
    {
        Assert.Equal(SampleFrames, DecodeInPieces(Sample, []));
    }

    [Fact]
    public void The_transcript_decodes_the_same_split_at_every_boundary_and_one_byte_at_a_time()
    {
        for (var cut = 0; cut <= Sample.Length; cut++)
        {
            Assert.Equal(SampleFrames, DecodeInPieces(Sample, [cut]));
        }
        Assert.Equal(SampleFrames, DecodeInPieces(Sample, Enumerable.Range(1, Sample.Length - 1)));
    }

    [Fact]
    public void A_last_line_without_a_newline_comes_out_at_flush_and_only_once()
    {
        var decoder = new ConsoleDecoder();
        Assert.Empty(decoder.Decode(Bytes(RS, "O partial")));
        Assert.Equal([new ConsoleFrame(ConsoleFrameKind.Stdout, "partial")], decoder.Flush());
        Assert.Empty(decoder.Flush());
    }

    [Theory]
    [InlineData("R", "R")]                 // no pid
    [InlineData("R abc", "R abc")]
    [InlineData("R 0", "R 0")]             // pid 0 is not an app
    [InlineData("R -1", "R -1")]
    [InlineData("R 012", "R 012")]
    [InlineData("R 99999999999", "R 99999999999")]
    [InlineData("R 12 ", "R 12 ")]
    [InlineData("X", "X")]
    [InlineData("X 1", "X 1")]             // no oom field
    [InlineData("X 256 0", "X 256 0")]     // exit codes end at 255
    [InlineData("X 0 2", "X 0 2")]
    [InlineData("X 0 0 0", "X 0 0 0")]
    [InlineData("X  0 0", "X  0 0")]
    [InlineData("Q something", "Q something")] // unknown letter
    [InlineData("Ohello", "Ohello")]           // no space after the letter
    [InlineData("", "")]                       // RS alone
    public void A_frame_that_does_not_parse_becomes_info_with_its_raw_text(string body, string text)
    {
        var frames = new ConsoleDecoder().Decode(Bytes(RS, body, "\n"));
        Assert.Equal([new ConsoleFrame(ConsoleFrameKind.Info, text)], frames);
    }

    public sealed record HostileLine(string Name, byte[] Bytes, ConsoleFrame Frame)
    {
        public override string ToString() => Name; // the theory's display name
    }

    public static TheoryData<HostileLine> HostileLines =>
    [
        new("RS then NUL", Bytes(RS, (byte)0, " x\n"), new(ConsoleFrameKind.Info, "\0 x")),
        new("two RS", Bytes(RS, RS, "O x\n"), new(ConsoleFrameKind.Info, "\u001eO x")),
        new("RS inside a payload", Bytes(RS, "O a", RS, "X 0 0\n"), new(ConsoleFrameKind.Stdout, "a\u001eX 0 0")),
        new("NUL after a pid", Bytes(RS, "R 12", (byte)0, "\n"), new(ConsoleFrameKind.Info, "R 12\0")),
        new("invalid UTF-8 in a pid", Bytes(RS, "R 1", (byte)0xff, "\n"), new(ConsoleFrameKind.Info, "R 1\ufffd")),
        new("NUL in an exit frame", Bytes(RS, "X 0", (byte)0, "0\n"), new(ConsoleFrameKind.Info, "X 0\u00000")),
        new("exit code with a sign", Bytes(RS, "X +1 0\n"), new(ConsoleFrameKind.Info, "X +1 0")),
        new("exit code over int", Bytes(RS, "X 99999999999999999999 0\n"), new(ConsoleFrameKind.Info, "X 99999999999999999999 0")),
        new("exit with CR LF", Bytes(RS, "X 3 0\r\n"), new(ConsoleFrameKind.Exit, "3 0", ExitCode: 3)),
        new("carriage returns only", Bytes("\r\r\r\n"), new(ConsoleFrameKind.Kernel, "\r\r")),
        new("a lone high byte", Bytes((byte)0x80, "\n"), new(ConsoleFrameKind.Kernel, "\ufffd")),
    ];

    [Theory]
    [MemberData(nameof(HostileLines))]
    public void A_hostile_line_decodes_to_one_plain_frame_however_it_is_split(HostileLine line)
    {
        Assert.Equal([line.Frame], DecodeInPieces(line.Bytes, []));
        Assert.Equal([line.Frame], DecodeInPieces(line.Bytes, Enumerable.Range(1, line.Bytes.Length - 1)));
    }

    [Fact]
    public void A_line_cut_at_the_cap_inside_a_utf8_character_ends_in_a_replacement_character()
    {
        var line = Bytes(RS, "F ", new string('a', ConsoleDecoder.MaxLineBytes - 4), "\u00e9 and more\n"); // é straddles the cap
        var frame = Assert.Single(new ConsoleDecoder().Decode(line));
        Assert.Equal(ConsoleFrameKind.Fatal, frame.Kind);
        Assert.True(frame.Truncated);
        Assert.Equal(new string('a', ConsoleDecoder.MaxLineBytes - 4) + "\ufffd", frame.Text);
    }

    [Theory]
    [InlineData("X 0 0", 0, false)]
    [InlineData("X 255 0", 255, false)]
    [InlineData("X 143 1", 143, true)]
    public void Exit_frames_carry_code_and_oom(string body, int code, bool oom)
    {
        var frame = Assert.Single(new ConsoleDecoder().Decode(Bytes(RS, body, "\n")));
        Assert.Equal(ConsoleFrameKind.Exit, frame.Kind);
        Assert.Equal(code, frame.ExitCode);
        Assert.Equal(oom, frame.Oom);
    }

    [Fact]
    public void A_line_past_the_cap_gives_one_truncated_frame_and_the_next_line_is_intact()
    {
        var decoder = new ConsoleDecoder();
        var frames = new List<ConsoleFrame>();
        decoder.Decode(Bytes(RS, "O "), frames);
        var chunk = Enumerable.Repeat((byte)'a', 4096).ToArray();
        for (var i = 0; i < 1024; i++) // 4 MiB without a newline
        {
            decoder.Decode(chunk, frames);
        }
        decoder.Decode(Bytes("\n", RS, "O next\n"), frames);

        Assert.Equal(2, frames.Count);
        Assert.Equal(ConsoleFrameKind.Stdout, frames[0].Kind);
        Assert.True(frames[0].Truncated);
        Assert.Equal(ConsoleDecoder.MaxLineBytes - 3, frames[0].Text.Length); // RS, 'O', ' ' count against the cap
        Assert.Equal(new ConsoleFrame(ConsoleFrameKind.Stdout, "next"), frames[1]);
    }

    [Fact]
    public void A_line_of_exactly_the_cap_is_not_truncated()
    {
        var line = Bytes(RS, "O ", new string('b', ConsoleDecoder.MaxLineBytes - 3));
        var frame = Assert.Single(new ConsoleDecoder().Decode(Bytes(line, "\n")));
        Assert.False(frame.Truncated);
        Assert.Equal(ConsoleDecoder.MaxLineBytes - 3, frame.Text.Length);
    }

    [Fact]
    public void A_truncated_ready_or_exit_frame_is_not_trusted()
    {
        var frame = new ConsoleDecoder().Decode(Bytes(RS, "X 0 0", new string(' ', ConsoleDecoder.MaxLineBytes), "\n"))[0];
        Assert.Equal(ConsoleFrameKind.Info, frame.Kind);
        Assert.True(frame.Truncated);
    }

    [Fact]
    public void Only_one_carriage_return_before_the_newline_is_dropped()
    {
        var frames = new ConsoleDecoder().Decode(Bytes(RS, "O a\r\r\n", "b\rc\n"));
        Assert.Equal([new ConsoleFrame(ConsoleFrameKind.Stdout, "a\r"), new ConsoleFrame(ConsoleFrameKind.Kernel, "b\rc")], frames);
    }

    private static readonly Gen<byte[]> ConsoleNoise = Gen.Frequency(
        (3, Gen.ArrayOf(Gen.Elements<byte>(RS, (byte)'\n', (byte)'\r', (byte)' ', (byte)'R', (byte)'X', (byte)'O', (byte)'0', (byte)'1', (byte)'9', 0x00, 0xc3, 0xff))),
        (1, Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b))),
        (1, Gen.Choose(0, 40000).Select(n => Bytes(RS, "O ", new string('z', n), "\n"))));

    [Fact]
    public void Garbage_decodes_the_same_however_it_is_split_and_never_throws()
    {
        var property = Prop.ForAll(ConsoleNoise.ToArbitrary(), Gen.ArrayOf(Gen.Choose(0, 1000)).ToArbitrary(), (bytes, cutSeeds) =>
        {
            var whole = DecodeInPieces(bytes, []);
            var cuts = cutSeeds.Select(c => bytes.Length == 0 ? 0 : c % (bytes.Length + 1)).Order().ToList();
            var pieces = DecodeInPieces(bytes, cuts);
            var bounded = whole.All(f => Encoding.UTF8.GetByteCount(f.Text) <= ConsoleDecoder.MaxLineBytes * 3); // U+FFFD is 3 bytes
            return (whole.SequenceEqual(pieces) && bounded).ToProperty();
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(500), property);
    }
}
