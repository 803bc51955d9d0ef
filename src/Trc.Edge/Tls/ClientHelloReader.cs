using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Trc.Edge.Tls;

/// <summary>
/// Reads the TLS ClientHello at the start of a connection, without terminating TLS, to route it by SNI.
/// </summary>
/// <remarks>
/// <para>
/// Call <see cref="TryParse(ReadOnlySequence{byte})"/> with everything read so far after every read.
/// The answer is a pure function of the bytes, and it is prefix-stable: once a buffer gives
/// <see cref="HelloStatus.Ok"/> or <see cref="HelloStatus.Invalid"/>, every longer buffer starting
/// with it gives the same result, and <see cref="HelloStatus.NeedMoreData"/> is never the answer for
/// a buffer of <see cref="MaxHelloBytes"/> or more. Bytes after the hello are ignored.
/// </para>
/// <para>
/// The handshake message is reassembled across any number of handshake records (RFC 8446 5.1), but the
/// hello, record headers included, must fit in <see cref="MaxHelloBytes"/>. The reader checks the
/// whole ClientHello grammar (RFC 8446 4.1.2, RFC 5246 7.4.1.2): version, random, session_id,
/// cipher_suites, compression_methods, an extensions block whose length matches exactly, no
/// extension type twice, and the server_name extension (RFC 6066 3) in full. Errors are found in
/// stream order, as soon as the bytes that decide them have arrived.
/// </para>
/// <para>
/// No allocation but the returned name (and a refusal's detail): scratch space is on the stack, or
/// rented from <see cref="ArrayPool{T}"/> when the buffer spans segments or the hello carries more
/// than 64 extensions. A hello in one segment is read in place; inside a record every read is a
/// bounds check and a direct load, and record boundaries are handled only where they fall.
/// </para>
/// </remarks>
public static class ClientHelloReader
{
    /// <summary>The cap on the bytes the hello may take, over all the records holding it, headers included.</summary>
    public const int MaxHelloBytes = 16 * 1024;

    /// <summary>The longest host name accepted, without its optional trailing dot (RFC 1035 wire limit).</summary>
    public const int MaxServerNameLength = 253;

    private const int MaxRecordPayload = 16 * 1024;
    private const int MaxLabelLength = 63;
    private const int RecordHeaderBytes = 5;
    private const int HandshakeHeaderBytes = 4;
    private const int RandomBytes = 32;
    private const int MaxSessionIdBytes = 32;
    private const byte HandshakeContentType = 0x16;
    private const byte ClientHelloType = 1;
    private const byte HostNameType = 0;
    private const int ServerNameExtension = 0;

    /// <summary>Extension types remembered in a stack array; more than this (never seen from real clients) moves to a pooled bitset.</summary>
    private const int SmallExtensionSet = 64;

    /// <summary>Bytes a routable host name may hold; anything else (NUL, ESC, space, '*', bytes over 0x7F) is refused.</summary>
    private static readonly SearchValues<byte> HostNameBytes =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."u8);

    /// <summary>Reads a ClientHello from the first bytes of a connection, however they are segmented.</summary>
    /// <param name="buffer">Every byte received on the connection so far.</param>
    public static ClientHelloResult TryParse(ReadOnlySequence<byte> buffer)
    {
        if (buffer.IsSingleSegment)
        {
            return TryParse(buffer.FirstSpan);
        }
        // The first segment is a prefix of the stream, and answers are prefix-stable: when it
        // decides, the whole buffer would decide the same way.
        var first = TryParse(buffer.FirstSpan);
        if (first.Status != HelloStatus.NeedMoreData)
        {
            return first;
        }
        // Nothing past MaxHelloBytes is ever read, so that much is all the copy needs.
        var length = (int)Math.Min(buffer.Length, MaxHelloBytes);
        var copy = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            buffer.Slice(0, length).CopyTo(copy);
            return TryParse(copy.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    /// <summary>Reads a ClientHello from the first bytes of a connection.</summary>
    /// <param name="buffer">Every byte received on the connection so far.</param>
    public static ClientHelloResult TryParse(ReadOnlySpan<byte> buffer)
    {
        Span<byte> name = stackalloc byte[MaxServerNameLength + 1];
        Span<ushort> extensionTypes = stackalloc ushort[SmallExtensionSet];
        var parser = new Parser(buffer, name, extensionTypes);
        return parser.Run();
    }

    /// <summary>
    /// One pass over the stream. Every read method returns false to stop: with <c>_error</c> set the
    /// hello is refused, otherwise the buffer ran out. Reads never go past the container being parsed
    /// (each caller checks the length first), so running out always means "need more data".
    /// </summary>
    private ref struct Parser
    {
        private readonly ReadOnlySpan<byte> _data;
        private readonly Span<byte> _name;
        private readonly Span<ushort> _smallTypes;
        private ulong[]? _typeBits;
        private int _typeCount;

        /// <summary>Stream offset of the next unread byte.</summary>
        private int _pos;

        /// <summary>Stream offset where the current record's payload ends.</summary>
        private int _recordEnd;

        /// <summary><c>min(_recordEnd, _data.Length)</c>: bytes up to here are readable without crossing a record or running out.</summary>
        private int _limit;

        /// <summary>Bytes of the handshake message consumed: the offset in the reassembled message.</summary>
        private int _h;

        /// <summary>Handshake offset just past the client_hello (4 + its 24-bit length); -1 until that length is read.</summary>
        private int _helloEnd;

        /// <summary>Stream offset of the client_hello's 24-bit length.</summary>
        private int _helloLengthAt;

        private int _nameLength;
        private HelloError _error;
        private string? _detail;

        public Parser(ReadOnlySpan<byte> data, Span<byte> name, Span<ushort> smallTypes)
        {
            _data = data;
            _name = name;
            _smallTypes = smallTypes;
            _helloEnd = -1;
            _nameLength = -1;
        }

        public ClientHelloResult Run()
        {
            try
            {
                if (ReadHello())
                {
                    return new ClientHelloResult(HelloStatus.Ok, ServerName(), HelloError.None, null, _pos);
                }
                if (_error == HelloError.None && _data.Length >= MaxHelloBytes)
                {
                    // Unreachable while the size checks in EnterRecord and ReadHello hold; kept so that
                    // no future edit can make the proxy buffer a hostile stream without bound.
                    Fail(HelloError.HelloTooLarge, $"no complete client_hello in the first {MaxHelloBytes} bytes");
                }
                return _error == HelloError.None
                    ? new ClientHelloResult(HelloStatus.NeedMoreData, null, HelloError.None, null, 0)
                    : new ClientHelloResult(HelloStatus.Invalid, null, _error, _detail, 0);
            }
            finally
            {
                if (_typeBits is not null)
                {
                    ArrayPool<ulong>.Shared.Return(_typeBits);
                }
            }
        }

        private bool ReadHello()
        {
            if (!EnterRecord(first: true))
            {
                return false;
            }

            // The handshake header may itself be split over records.
            if (!ReadU8(out var messageType, out var at))
            {
                return false;
            }
            if (messageType != ClientHelloType)
            {
                return Fail(HelloError.NotClientHello, $"handshake message type {messageType} at offset {at} is not client_hello (1)");
            }
            if (!ReadU8(out var lengthHigh, out var lengthAt) || !ReadU16(out var lengthLow, out _))
            {
                return false;
            }
            _helloEnd = HandshakeHeaderBytes + ((lengthHigh << 16) | lengthLow);
            _helloLengthAt = lengthAt;
            if (!CheckHelloFits())
            {
                return false;
            }

            if (!Room(2, "legacy_version") || !ReadU16(out var version, out at))
            {
                return false;
            }
            if (version >> 8 != 3)
            {
                return Fail(HelloError.Malformed, $"legacy_version 0x{version:x4} at offset {at} is not 3.x");
            }

            if (!Room(RandomBytes, "random") || !Skip(RandomBytes))
            {
                return false;
            }

            if (!Room(1, "session_id length") || !ReadU8(out var sessionIdLength, out at))
            {
                return false;
            }
            if (sessionIdLength > MaxSessionIdBytes)
            {
                return Fail(HelloError.Malformed, $"session_id length {sessionIdLength} at offset {at} exceeds {MaxSessionIdBytes}");
            }
            if (!Fits(sessionIdLength, at, "session_id") || !Skip(sessionIdLength))
            {
                return false;
            }

            if (!Room(2, "cipher_suites length") || !ReadU16(out var suitesLength, out at))
            {
                return false;
            }
            if (suitesLength < 2 || (suitesLength & 1) != 0)
            {
                return Fail(HelloError.Malformed, $"cipher_suites length {suitesLength} at offset {at} is not an even number of at least 2");
            }
            if (!Fits(suitesLength, at, "cipher_suites") || !Skip(suitesLength))
            {
                return false;
            }

            if (!Room(1, "compression_methods length") || !ReadU8(out var compressionLength, out at))
            {
                return false;
            }
            if (compressionLength < 1)
            {
                return Fail(HelloError.Malformed, $"compression_methods length at offset {at} is 0; at least one method is required");
            }
            if (!Fits(compressionLength, at, "compression_methods") || !Skip(compressionLength))
            {
                return false;
            }

            // Hellos from before extensions existed end here, and are legal.
            return _h == _helloEnd || ReadExtensions();
        }

        private bool ReadExtensions()
        {
            if (!Room(2, "extensions length") || !ReadU16(out var blockLength, out var at))
            {
                return false;
            }
            if (blockLength != _helloEnd - _h)
            {
                return Fail(HelloError.Malformed, $"extensions length {blockLength} at offset {at} does not match the {_helloEnd - _h} bytes left in the client_hello");
            }
            for (var index = 0; _h < _helloEnd; index++)
            {
                if (_helloEnd - _h < 4)
                {
                    return Fail(HelloError.Malformed, $"extension[{index}] at offset {_pos} needs a 4-byte header but the extensions block has {_helloEnd - _h} bytes left");
                }
                if (!ReadU16(out var type, out var typeAt))
                {
                    return false;
                }
                if (!AddExtensionType(type))
                {
                    return type == ServerNameExtension
                        ? Fail(HelloError.DuplicateServerName, $"second server_name extension (extension[{index}]) at offset {typeAt}")
                        : Fail(HelloError.Malformed, $"extension type 0x{type:x4} appears twice; the second is extension[{index}] at offset {typeAt}");
                }
                if (!ReadU16(out var dataLength, out var lengthAt))
                {
                    return false;
                }
                if (dataLength > _helloEnd - _h)
                {
                    return Fail(HelloError.Malformed, $"extension[{index}] (type 0x{type:x4}) data length {dataLength} at offset {lengthAt} overruns the extensions block ({_helloEnd - _h} bytes left)");
                }
                if (type == ServerNameExtension ? !ReadServerName(dataLength) : !Skip(dataLength))
                {
                    return false;
                }
            }
            return true;
        }

        /// <summary>The server_name extension's data: <c>ServerName server_name_list&lt;1..2^16-1&gt;</c> (RFC 6066 3).</summary>
        private bool ReadServerName(int dataLength)
        {
            if (dataLength < 2)
            {
                return Fail(HelloError.Malformed, $"server_name extension data at offset {_pos} is {dataLength} bytes; the server_name list length needs 2");
            }
            if (!ReadU16(out var listLength, out var at))
            {
                return false;
            }
            if (listLength != dataLength - 2)
            {
                return Fail(HelloError.Malformed, $"server_name list length {listLength} at offset {at} does not match the {dataLength - 2} bytes of the extension after it");
            }
            if (listLength == 0)
            {
                return Fail(HelloError.Malformed, $"server_name list at offset {at} is empty");
            }
            var listEnd = _h + listLength;
            while (_h < listEnd)
            {
                if (!ReadU8(out var nameType, out var typeAt))
                {
                    return false;
                }
                if (nameType == HostNameType && _nameLength >= 0)
                {
                    return Fail(HelloError.MultipleServerNames, $"second host_name in the server_name list at offset {typeAt}");
                }
                if (listEnd - _h < 2)
                {
                    return Fail(HelloError.Malformed, $"server_name entry at offset {typeAt} is cut off by the end of the server_name list");
                }
                if (!ReadU16(out var nameLength, out var lengthAt))
                {
                    return false;
                }
                if (nameLength > listEnd - _h)
                {
                    return Fail(HelloError.Malformed, $"server_name entry length {nameLength} at offset {lengthAt} overruns the server_name list ({listEnd - _h} bytes left)");
                }
                if (nameType != HostNameType)
                {
                    // RFC 6066 defines only host_name; later types are assumed to share its length prefix.
                    if (!Skip(nameLength))
                    {
                        return false;
                    }
                    continue;
                }
                if (nameLength == 0)
                {
                    return Fail(HelloError.EmptyServerName, $"host_name at offset {lengthAt} is empty");
                }
                if (nameLength > _name.Length)
                {
                    return Fail(HelloError.InvalidServerName, $"host_name length {nameLength} at offset {lengthAt} exceeds {MaxServerNameLength} bytes");
                }
                var nameAt = _h;
                var name = _name[..nameLength];
                if (!Copy(name) || !CheckHostName(name, nameAt))
                {
                    return false;
                }
                _nameLength = nameLength;
            }
            return true;
        }

        /// <summary>A name the route table can match: LDH labels (plus '_') of 1 to 63 bytes, at most 253 bytes, one optional trailing dot.</summary>
        private bool CheckHostName(ReadOnlySpan<byte> name, int nameAt)
        {
            var host = name[^1] == (byte)'.' ? name[..^1] : name;
            if (host.IsEmpty)
            {
                return FailName(name, nameAt, "has no labels");
            }
            if (host.Length > MaxServerNameLength)
            {
                return FailName(name, nameAt, $"is {host.Length} bytes; at most {MaxServerNameLength}");
            }
            if (host.StartsWith("*."u8))
            {
                return FailName(name, nameAt, "is a wildcard; clients never send one");
            }
            var bad = host.IndexOfAnyExcept(HostNameBytes);
            if (bad >= 0)
            {
                return FailName(name, nameAt, $"has byte {Escape(host.Slice(bad, 1))} at offset {StreamOffset(nameAt + bad)}");
            }
            for (var start = 0; ;)
            {
                var rest = host[start..];
                var dot = rest.IndexOf((byte)'.');
                var label = dot < 0 ? rest.Length : dot;
                if (label == 0)
                {
                    return FailName(name, nameAt, $"has an empty label at offset {StreamOffset(nameAt + start)}");
                }
                if (label > MaxLabelLength)
                {
                    return FailName(name, nameAt, $"has a label of {label} bytes at offset {StreamOffset(nameAt + start)}; at most {MaxLabelLength}");
                }
                if (dot < 0)
                {
                    return true;
                }
                start += dot + 1;
            }
        }

        private readonly string? ServerName()
        {
            if (_nameLength < 0)
            {
                return null;
            }
            ReadOnlySpan<byte> name = _name[.._nameLength];
            if (name[^1] == (byte)'.')
            {
                name = name[..^1];
            }
            // Checked to be ASCII letters, digits, '-', '_' and '.', so lower-casing cannot fail.
            return string.Create(name.Length, name, static (chars, bytes) => Ascii.ToLower(bytes, chars, out _));
        }

        // ---- records --------------------------------------------------------------------------------

        /// <summary>Reads the record header at <c>_pos</c> and makes its payload current.</summary>
        private bool EnterRecord(bool first)
        {
            var at = _pos;
            var available = _data.Length - at;
            if (available < 1)
            {
                return false;
            }
            var type = _data[at];
            if (type != HandshakeContentType)
            {
                if (!first)
                {
                    return Fail(HelloError.NotHandshake, $"record at offset {at} has content type 0x{type:x2}; the rest of the client_hello must come in handshake (0x16) records");
                }
                if (type >= 0x80)
                {
                    // SSL 2.0 framing: a two-byte length with the high bit set, then the message type.
                    if (available < 3)
                    {
                        return false;
                    }
                    if (_data[at + 2] == 1)
                    {
                        return Fail(HelloError.SslV2, $"SSLv2-style client hello (0x{type:x2} 0x{_data[at + 1]:x2} then message type 1 at offset 2)");
                    }
                }
                return Fail(HelloError.NotTls, $"first byte {Escape(_data.Slice(at, 1))} is not a TLS handshake record (\\x16)");
            }
            if (available < 2)
            {
                return false;
            }
            var major = _data[at + 1];
            if (major != 3)
            {
                return Fail(HelloError.UnsupportedRecordVersion, $"record version major {major} at offset {at + 1} is not 3");
            }
            if (available < 3)
            {
                return false;
            }
            var minor = _data[at + 2];
            if (minor > 4)
            {
                return Fail(HelloError.UnsupportedRecordVersion, $"record version 3.{minor} at offset {at + 1} is not 3.0 to 3.4");
            }
            if (available < RecordHeaderBytes)
            {
                return false;
            }
            int length = BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(at + 3, 2));
            if (length == 0)
            {
                return Fail(HelloError.Malformed, $"record at offset {at} is empty; handshake fragments must not be");
            }
            if (length > MaxRecordPayload)
            {
                return Fail(HelloError.RecordTooLarge, $"record length {length} at offset {at + 3} exceeds {MaxRecordPayload}");
            }
            _pos = at + RecordHeaderBytes;
            _recordEnd = _pos + length;
            _limit = Math.Min(_recordEnd, _data.Length);
            return CheckHelloFits();
        }

        /// <summary>
        /// Refuses the hello as soon as its length and the records seen so far show it cannot end
        /// within <see cref="MaxHelloBytes"/>: its rest fits in this record, or needs at least one
        /// more record header.
        /// </summary>
        private bool CheckHelloFits()
        {
            if (_helloEnd < 0)
            {
                return true;
            }
            var left = _helloEnd - _h;
            var inRecord = _recordEnd - _pos;
            var end = left <= inRecord ? _pos + left : _recordEnd + RecordHeaderBytes + (left - inRecord);
            if (end <= MaxHelloBytes)
            {
                return true;
            }
            return Fail(HelloError.HelloTooLarge, $"client_hello of {_helloEnd - HandshakeHeaderBytes} bytes (length at offset {_helloLengthAt}) needs at least {end} bytes of records; the cap is {MaxHelloBytes}");
        }

        /// <summary>The stream offset of handshake byte <paramref name="h"/>, found by walking the records already entered.</summary>
        private readonly int StreamOffset(int h)
        {
            int at = 0, covered = 0;
            while (at < _recordEnd)
            {
                int length = BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(at + 3, 2));
                if (h < covered + length)
                {
                    return at + RecordHeaderBytes + (h - covered);
                }
                covered += length;
                at += RecordHeaderBytes + length;
            }
            return at;
        }

        // ---- reads ----------------------------------------------------------------------------------

        /// <summary>
        /// Called with <c>_pos == _limit</c>: the buffer ran out, or the record did and the next one
        /// starts here. True when at least one byte is readable again (records are never empty).
        /// </summary>
        private bool NextBytes() => _pos == _recordEnd && EnterRecord(first: false) && _pos < _limit;

        private bool ReadU8(out int value, out int at)
        {
            if (_pos == _limit && !NextBytes())
            {
                value = at = 0;
                return false;
            }
            at = _pos;
            value = _data[_pos++];
            _h++;
            return true;
        }

        private bool ReadU16(out int value, out int at)
        {
            if (_limit - _pos >= 2)
            {
                at = _pos;
                value = BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(_pos, 2));
                _pos += 2;
                _h += 2;
                return true;
            }
            if (!ReadU8(out var high, out at) || !ReadU8(out var low, out _))
            {
                value = 0;
                return false;
            }
            value = (high << 8) | low;
            return true;
        }

        private bool Skip(int count)
        {
            while (count > 0)
            {
                if (_pos == _limit && !NextBytes())
                {
                    return false;
                }
                var step = Math.Min(count, _limit - _pos);
                _pos += step;
                _h += step;
                count -= step;
            }
            return true;
        }

        private bool Copy(Span<byte> destination)
        {
            while (!destination.IsEmpty)
            {
                if (_pos == _limit && !NextBytes())
                {
                    return false;
                }
                var step = Math.Min(destination.Length, _limit - _pos);
                _data.Slice(_pos, step).CopyTo(destination);
                destination = destination[step..];
                _pos += step;
                _h += step;
            }
            return true;
        }

        // ---- checks ---------------------------------------------------------------------------------

        /// <summary>Whether the client_hello still holds a fixed-size field of <paramref name="size"/> bytes.</summary>
        private bool Room(int size, string field) =>
            _helloEnd - _h >= size
            || Fail(HelloError.Malformed, $"{field} needs {size} bytes at offset {_pos} but the client_hello has {_helloEnd - _h} left");

        /// <summary>Whether a variable-length field, whose length was read at <paramref name="at"/>, fits in the client_hello.</summary>
        private bool Fits(int length, int at, string field) =>
            length <= _helloEnd - _h
            || Fail(HelloError.Malformed, $"{field} length {length} at offset {at} overruns the client_hello ({_helloEnd - _h} bytes left)");

        /// <summary>Remembers an extension type; false when it was already seen (RFC 8446 4.2: at most one of each).</summary>
        private bool AddExtensionType(int type)
        {
            if (_typeBits is null)
            {
                if (_smallTypes[.._typeCount].Contains((ushort)type))
                {
                    return false;
                }
                if (_typeCount < _smallTypes.Length)
                {
                    _smallTypes[_typeCount++] = (ushort)type;
                    return true;
                }
                _typeBits = ArrayPool<ulong>.Shared.Rent(65536 / 64);
                Array.Clear(_typeBits, 0, 65536 / 64);
                foreach (var seen in _smallTypes)
                {
                    _typeBits[seen >> 6] |= 1UL << (seen & 63);
                }
            }
            ref var word = ref _typeBits[type >> 6];
            var bit = 1UL << (type & 63);
            if ((word & bit) != 0)
            {
                return false;
            }
            word |= bit;
            return true;
        }

        private bool Fail(HelloError error, string detail)
        {
            _error = error;
            _detail = detail;
            return false;
        }

        private bool FailName(ReadOnlySpan<byte> name, int nameAt, string problem) =>
            Fail(HelloError.InvalidServerName, $"host_name '{Escape(name)}' at offset {StreamOffset(nameAt)} {problem}");
    }

    /// <summary>Printable ASCII as is, every other byte (and the backslash and quote) as <c>\xNN</c>; long input is cut with "...".</summary>
    private static string Escape(ReadOnlySpan<byte> bytes)
    {
        const int MaxShown = 64;
        var shown = bytes.Length > MaxShown ? bytes[..MaxShown] : bytes;
        var text = new StringBuilder(shown.Length + 8);
        foreach (var b in shown)
        {
            if (b is >= 0x20 and < 0x7F and not (byte)'\\' and not (byte)'\'')
            {
                text.Append((char)b);
            }
            else
            {
                text.Append("\\x").Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        if (shown.Length < bytes.Length)
        {
            text.Append("...");
        }
        return text.ToString();
    }
}
