using System.Buffers;
using System.Globalization;
using System.Text;

namespace Trc.Client.Events;

/// <summary>One Server-Sent Event as dispatched by <see cref="ServerSentEventParser"/>.</summary>
/// <param name="Type">The <c>event:</c> field, or <c>message</c> when the event had none.</param>
/// <param name="Data">The <c>data:</c> lines joined with LF.</param>
/// <param name="Id">The last event id seen so far on the stream (ids persist across events), or null.</param>
public readonly record struct ServerSentEvent(string Type, string Data, string? Id);

/// <summary>What feeding bytes to a <see cref="ServerSentEventParser"/> found.</summary>
public enum ServerSentEventStatus
{
    /// <summary>The bytes were consumed; complete events, if any, were added.</summary>
    Ok,

    /// <summary>A line or an event's data grew past the size cap; the stream cannot be trusted further.</summary>
    TooLarge,
}

/// <summary>
/// A push parser for the <c>text/event-stream</c> format (the WHATWG HTML "server-sent events"
/// rules): lines end with LF, CR or CRLF (also when the CR and LF arrive in different reads);
/// <c>field: value</c> with one optional space after the colon; lines starting with ':' are
/// comments; a blank line dispatches the event; an event without data lines is dropped; an id
/// containing NUL is ignored; an unfinished event at the end of the stream is never dispatched.
/// Bytes are fed as they arrive, in pieces of any size. A line or an event's data longer than
/// <see cref="MaxEventBytes"/> stops the parser instead of growing without bound.
/// </summary>
public sealed class ServerSentEventParser
{
    /// <summary>The default cap on one line and on one event's data: 16 MiB.</summary>
    public const int DefaultMaxEventBytes = 16 * 1024 * 1024;

    private readonly ArrayBufferWriter<byte> _line = new(256);
    private readonly ArrayBufferWriter<byte> _data = new(256);
    private bool _hasData;
    private string _type = "";
    private bool _afterCr;
    private bool _firstLine = true;
    private bool _failed;

    /// <summary>Creates a parser with a size cap.</summary>
    public ServerSentEventParser(int maxEventBytes = DefaultMaxEventBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEventBytes, 16);
        MaxEventBytes = maxEventBytes;
    }

    /// <summary>The cap on one line and on one event's data, in bytes.</summary>
    public int MaxEventBytes { get; }

    /// <summary>The last <c>id:</c> seen (the stream's "last event ID"), or null.</summary>
    public string? LastEventId { get; private set; }

    /// <summary>The last valid <c>retry:</c> the server sent, or null.</summary>
    public TimeSpan? Retry { get; private set; }

    /// <summary>Consumes <paramref name="bytes"/> and adds every event they complete to <paramref name="events"/>.</summary>
    public ServerSentEventStatus Feed(ReadOnlySpan<byte> bytes, ICollection<ServerSentEvent> events)
    {
        if (_failed)
        {
            return ServerSentEventStatus.TooLarge;
        }
        while (!bytes.IsEmpty)
        {
            if (_afterCr)
            {
                _afterCr = false;
                if (bytes[0] == (byte)'\n')
                {
                    bytes = bytes[1..];
                    continue;
                }
            }
            var end = bytes.IndexOfAny((byte)'\r', (byte)'\n');
            var piece = end < 0 ? bytes : bytes[..end];
            if (_line.WrittenCount + piece.Length > MaxEventBytes)
            {
                _failed = true;
                return ServerSentEventStatus.TooLarge;
            }
            _line.Write(piece);
            if (end < 0)
            {
                break;
            }
            _afterCr = bytes[end] == (byte)'\r';
            bytes = bytes[(end + 1)..];
            if (!ProcessLine(_line.WrittenSpan, events))
            {
                _failed = true;
                return ServerSentEventStatus.TooLarge;
            }
            _line.ResetWrittenCount();
        }
        return ServerSentEventStatus.Ok;
    }

    private bool ProcessLine(ReadOnlySpan<byte> line, ICollection<ServerSentEvent> events)
    {
        if (_firstLine)
        {
            _firstLine = false;
            if (line.StartsWith("\uFEFF"u8))
            {
                line = line[3..];
            }
        }
        if (line.IsEmpty)
        {
            Dispatch(events);
            return true;
        }
        if (line[0] == (byte)':')
        {
            return true;
        }
        var colon = line.IndexOf((byte)':');
        var field = colon < 0 ? line : line[..colon];
        var value = colon < 0 ? [] : line[(colon + 1)..];
        if (!value.IsEmpty && value[0] == (byte)' ')
        {
            value = value[1..];
        }
        if (field.SequenceEqual("data"u8))
        {
            if (_data.WrittenCount + value.Length + 1 > MaxEventBytes)
            {
                return false;
            }
            _data.Write(value);
            _data.Write("\n"u8);
            _hasData = true;
        }
        else if (field.SequenceEqual("event"u8))
        {
            _type = Encoding.UTF8.GetString(value);
        }
        else if (field.SequenceEqual("id"u8))
        {
            if (value.IndexOf((byte)0) < 0)
            {
                LastEventId = Encoding.UTF8.GetString(value);
            }
        }
        else if (field.SequenceEqual("retry"u8))
        {
            if (!value.IsEmpty && value.IndexOfAnyExceptInRange((byte)'0', (byte)'9') < 0
                && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
            {
                Retry = TimeSpan.FromMilliseconds(ms);
            }
        }
        // Any other field is ignored, as the format requires.
        return true;
    }

    private void Dispatch(ICollection<ServerSentEvent> events)
    {
        if (_hasData)
        {
            var data = _data.WrittenSpan[..^1]; // the last LF is not part of the data
            events.Add(new ServerSentEvent(_type.Length == 0 ? "message" : _type, Encoding.UTF8.GetString(data), LastEventId));
        }
        _data.ResetWrittenCount();
        _hasData = false;
        _type = "";
    }
}
