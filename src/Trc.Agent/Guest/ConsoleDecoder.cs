using System.Text;

namespace Trc.Agent.Guest;

/// <summary>
/// Turns the guest console's bytes into <see cref="ConsoleFrame"/>s (docs/guest.md, "Console
/// protocol"), incrementally: bytes arrive in any split, lines end with <c>\n</c> (a <c>\r</c>
/// before it is dropped, as the kernel's own lines have one). The console carries whatever the
/// guest writes, so nothing here trusts it: a line is held to <see cref="MaxLineBytes"/> (the rest
/// is dropped and the frame marked <see cref="ConsoleFrame.Truncated"/>), invalid UTF-8 becomes
/// U+FFFD, and a frame that does not parse becomes an <see cref="ConsoleFrameKind.Info"/> frame with
/// the line's text instead of an error. Not thread-safe: one decoder per console reader.
/// </summary>
public sealed class ConsoleDecoder
{
    /// <summary>The longest line kept, in bytes (init splits app output at 8 KiB, so only a misbehaving guest reaches it).</summary>
    public const int MaxLineBytes = 16 * 1024;

    private readonly byte[] _line = new byte[MaxLineBytes];
    private int _length;
    private bool _overflowed; // the current line passed MaxLineBytes: its frame is out, skip to the next \n

    /// <summary>Decodes <paramref name="bytes"/>, appending every line they complete to <paramref name="frames"/>.</summary>
    public void Decode(ReadOnlySpan<byte> bytes, ICollection<ConsoleFrame> frames)
    {
        while (!bytes.IsEmpty)
        {
            var newline = bytes.IndexOf((byte)'\n');
            var chunk = newline < 0 ? bytes : bytes[..newline];
            if (!_overflowed)
            {
                var room = MaxLineBytes - _length;
                if (chunk.Length <= room)
                {
                    chunk.CopyTo(_line.AsSpan(_length));
                    _length += chunk.Length;
                }
                else
                {
                    chunk[..room].CopyTo(_line.AsSpan(_length));
                    frames.Add(Parse(_line, truncated: true));
                    _overflowed = true;
                    _length = 0;
                }
            }
            if (newline < 0)
            {
                return;
            }
            if (!_overflowed)
            {
                frames.Add(Parse(_line.AsSpan(0, _length), truncated: false));
            }
            _overflowed = false;
            _length = 0;
            bytes = bytes[(newline + 1)..];
        }
    }

    /// <summary>Decodes <paramref name="bytes"/> and returns the frames they complete.</summary>
    public IReadOnlyList<ConsoleFrame> Decode(ReadOnlySpan<byte> bytes)
    {
        var frames = new List<ConsoleFrame>();
        Decode(bytes, frames);
        return frames;
    }

    /// <summary>
    /// At the end of the stream: the last line when it had no <c>\n</c> (a guest cut off mid-line),
    /// else nothing. The decoder is empty afterwards.
    /// </summary>
    public IReadOnlyList<ConsoleFrame> Flush()
    {
        IReadOnlyList<ConsoleFrame> pending = _length > 0 ? [Parse(_line.AsSpan(0, _length), truncated: false)] : [];
        _length = 0;
        _overflowed = false;
        return pending;
    }

    /// <summary>Parses one line, without its <c>\n</c>.</summary>
    public static ConsoleFrame Parse(ReadOnlySpan<byte> line, bool truncated = false)
    {
        if (!truncated && !line.IsEmpty && line[^1] == (byte)'\r')
        {
            line = line[..^1];
        }
        if (line.IsEmpty || line[0] != GuestCommand.FrameMarker)
        {
            return new ConsoleFrame(ConsoleFrameKind.Kernel, Text(line), Truncated: truncated);
        }

        var body = line[1..];
        // "RS letter" alone, or "RS letter SP payload".
        if (body.Length == 0 || (body.Length > 1 && body[1] != (byte)' '))
        {
            return Unparsed(body, truncated);
        }
        var payload = body.Length > 1 ? body[2..] : [];
        switch ((char)body[0])
        {
            case 'I':
                return new ConsoleFrame(ConsoleFrameKind.Info, Text(payload), Truncated: truncated);
            case 'O':
                return new ConsoleFrame(ConsoleFrameKind.Stdout, Text(payload), Truncated: truncated);
            case 'E':
                return new ConsoleFrame(ConsoleFrameKind.Stderr, Text(payload), Truncated: truncated);
            case 'F':
                return new ConsoleFrame(ConsoleFrameKind.Fatal, Text(payload), Truncated: truncated);
            case 'R' when !truncated && TryParseNumber(payload, int.MaxValue, out var pid) && pid > 0:
                return new ConsoleFrame(ConsoleFrameKind.Ready, Text(payload), Pid: pid);
            case 'X' when !truncated && TryParseExit(payload, out var code, out var oom):
                return new ConsoleFrame(ConsoleFrameKind.Exit, Text(payload), ExitCode: code, Oom: oom);
            default:
                return Unparsed(body, truncated);
        }
    }

    private static ConsoleFrame Unparsed(ReadOnlySpan<byte> body, bool truncated) =>
        new(ConsoleFrameKind.Info, Text(body), Truncated: truncated);

    private static string Text(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);

    // "code oom": code 0..255, oom 0 or 1.
    private static bool TryParseExit(ReadOnlySpan<byte> payload, out int code, out bool oom)
    {
        code = 0;
        oom = false;
        var space = payload.IndexOf((byte)' ');
        if (space < 0 || payload.Length != space + 2 || !TryParseNumber(payload[..space], 255, out code))
        {
            return false;
        }
        switch (payload[^1])
        {
            case (byte)'0':
                return true;
            case (byte)'1':
                oom = true;
                return true;
            default:
                return false;
        }
    }

    // Decimal digits only, no sign, no leading zero (except "0"), at most max.
    private static bool TryParseNumber(ReadOnlySpan<byte> digits, int max, out int value)
    {
        value = 0;
        if (digits.IsEmpty || digits.Length > 10 || (digits.Length > 1 && digits[0] == (byte)'0'))
        {
            return false;
        }
        long v = 0;
        foreach (var b in digits)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                return false;
            }
            v = v * 10 + (b - '0');
        }
        if (v > max)
        {
            return false;
        }
        value = (int)v;
        return true;
    }
}
