namespace Trc.Edge.Tests.Tls;

/// <summary>Where the fuzzer can aim: offsets in the handshake message (handshake header included).</summary>
public sealed class HelloFields
{
    public List<(int Offset, int Size)> Lengths { get; } = [];

    public List<int> ExtensionTypes { get; } = [];

    public List<(int Offset, int Length)> HostNames { get; } = [];

    /// <summary>The extensions block's length field, or -1 when the hello has none.</summary>
    public int ExtensionsLengthAt { get; set; } = -1;
}

/// <summary>
/// A second, plain implementation of the acceptance rules, for differential fuzzing: reassembles
/// the records, then walks the hello with a poisoning cursor. It only answers "accepted, with this
/// name and size" or "not accepted"; it knows nothing about NeedMoreData or error kinds.
/// </summary>
public static class ReferenceHelloReader
{
    public sealed record Verdict(bool Accepted, string? Name, int End);

    private static readonly Verdict Refused = new(false, null, 0);

    public static Verdict Read(byte[] input, HelloFields? fields = null)
    {
        var handshake = new byte[input.Length];
        var count = 0;
        var total = -1;
        var end = 0;
        for (var at = 0; ;)
        {
            if (at + 5 > input.Length || input[at] != 0x16 || input[at + 1] != 3 || input[at + 2] > 4)
            {
                return Refused;
            }
            var length = (input[at + 3] << 8) | input[at + 4];
            if (length is 0 or > 16384)
            {
                return Refused;
            }
            var before = count;
            var available = Math.Min(length, input.Length - at - 5);
            input.AsSpan(at + 5, available).CopyTo(handshake.AsSpan(count));
            count += available;
            if (total < 0 && count >= 4)
            {
                if (handshake[0] != 1)
                {
                    return Refused;
                }
                total = 4 + ((handshake[1] << 16) | (handshake[2] << 8) | handshake[3]);
            }
            if (total >= 0 && count >= total)
            {
                end = at + 5 + (total - before);
                break;
            }
            if (available < length)
            {
                return Refused;
            }
            at += 5 + length;
        }
        if (end > 16384)
        {
            return Refused;
        }
        fields?.Lengths.Add((1, 3));
        var cursor = new Cursor(handshake[..total], fields);
        var (ok, name) = cursor.Hello();
        return ok ? new Verdict(true, name, end) : Refused;
    }

    private sealed class Cursor(byte[] bytes, HelloFields? fields)
    {
        private int _p = 4;
        private bool _bad;

        public (bool Ok, string? Name) Hello()
        {
            var end = bytes.Length;
            Check(U16(end) >> 8 == 3);
            Skip(32, end);
            var sessionId = U8(end, isLength: true);
            Check(sessionId <= 32);
            Skip(sessionId, end);
            var suites = U16(end, isLength: true);
            Check(suites >= 2 && suites % 2 == 0);
            Skip(suites, end);
            var compression = U8(end, isLength: true);
            Check(compression >= 1);
            Skip(compression, end);
            if (_bad || _p == end)
            {
                return (!_bad, null);
            }
            if (fields is not null)
            {
                fields.ExtensionsLengthAt = _p;
            }
            Check(U16(end, isLength: true) == end - _p);
            var seen = new HashSet<int>();
            string? name = null;
            while (!_bad && _p < end)
            {
                Check(end - _p >= 4);
                fields?.ExtensionTypes.Add(_p);
                var type = U16(end);
                var length = U16(end, isLength: true);
                Check(seen.Add(type) && length <= end - _p);
                if (_bad)
                {
                    break;
                }
                if (type != 0)
                {
                    Skip(length, end);
                    continue;
                }
                var dataEnd = _p + length;
                Check(length >= 2);
                var list = U16(dataEnd, isLength: true);
                Check(list == length - 2 && list > 0);
                var hostNames = 0;
                while (!_bad && _p < dataEnd)
                {
                    var nameType = U8(dataEnd);
                    var nameLength = U16(dataEnd, isLength: true);
                    Check(nameLength <= dataEnd - _p);
                    if (_bad)
                    {
                        break;
                    }
                    if (nameType == 0)
                    {
                        fields?.HostNames.Add((_p, nameLength));
                        name = HostNames.Expected(bytes[_p..(_p + nameLength)]);
                        Check(++hostNames == 1 && name is not null);
                    }
                    _p += nameLength;
                }
            }
            return (!_bad, _bad ? null : name);
        }

        private void Check(bool condition) => _bad |= !condition;

        private int U8(int limit, bool isLength = false)
        {
            if (_bad || limit - _p < 1)
            {
                _bad = true;
                return 0;
            }
            if (isLength)
            {
                fields?.Lengths.Add((_p, 1));
            }
            return bytes[_p++];
        }

        private int U16(int limit, bool isLength = false)
        {
            if (_bad || limit - _p < 2)
            {
                _bad = true;
                return 0;
            }
            if (isLength)
            {
                fields?.Lengths.Add((_p, 2));
            }
            _p += 2;
            return (bytes[_p - 2] << 8) | bytes[_p - 1];
        }

        private void Skip(int count, int limit)
        {
            if (_bad || limit - _p < count)
            {
                _bad = true;
                return;
            }
            _p += count;
        }
    }
}
