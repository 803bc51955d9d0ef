using System.Buffers;
using System.Text;
using Trc.Edge.Tls;

namespace Trc.Edge.Tests.Tls;

/// <summary>Replays a sample every way the network could deliver it, and checks the reader agrees with itself.</summary>
public static class HelloReplay
{
    /// <summary>
    /// Parses <paramref name="sample"/> whole, as a span and as a sequence; split in two at every
    /// boundary; and grown one byte at a time, where every prefix must give NeedMoreData until the
    /// first that decides, and every longer one the same result. Returns the result.
    /// </summary>
    public static ClientHelloResult EveryWay(byte[] sample)
    {
        var whole = ClientHelloReader.TryParse(sample);
        CheckShape(whole, sample.Length);
        Assert.Equal(whole, ClientHelloReader.TryParse(new ReadOnlySequence<byte>(sample)));

        for (var split = 0; split <= sample.Length; split++)
        {
            var result = ClientHelloReader.TryParse(Sequence(sample[..split], sample[split..]));
            if (result != whole)
            {
                Assert.Fail($"split at {split} of {sample.Length}: {result}, whole: {whole}");
            }
        }

        var decidedAt = -1;
        for (var length = 0; length <= sample.Length; length++)
        {
            var result = ClientHelloReader.TryParse(sample.AsSpan(0, length));
            if (decidedAt < 0 && result.Status == HelloStatus.NeedMoreData)
            {
                continue;
            }
            decidedAt = decidedAt < 0 ? length : decidedAt;
            if (result != whole)
            {
                Assert.Fail($"prefix of {length} bytes (decided at {decidedAt}): {result}, whole: {whole}");
            }
        }
        if (whole.Status == HelloStatus.Ok)
        {
            // Every byte of an accepted hello is needed: no prefix of it decides.
            Assert.Equal(whole.Consumed, decidedAt);
        }

        // One byte per segment.
        Assert.Equal(whole, ClientHelloReader.TryParse(Sequence(sample.Select(b => new[] { b }).ToArray())));
        return whole;
    }

    /// <summary>What every result must look like, whatever the input.</summary>
    public static void CheckShape(ClientHelloResult result, int inputLength)
    {
        switch (result.Status)
        {
            case HelloStatus.Ok:
                Assert.Equal(HelloError.None, result.Error);
                Assert.Null(result.Detail);
                Assert.InRange(result.Consumed, 1, Math.Min(inputLength, ClientHelloReader.MaxHelloBytes));
                if (result.ServerName is not null)
                {
                    Assert.True(HostNames.IsRoutable(result.ServerName), $"accepted name '{result.ServerName}'");
                    Assert.Equal(result.ServerName.ToLowerInvariant().TrimEnd('.'), result.ServerName);
                }
                break;
            case HelloStatus.Invalid:
                Assert.NotEqual(HelloError.None, result.Error);
                Assert.Null(result.ServerName);
                Assert.Equal(0, result.Consumed);
                Assert.False(string.IsNullOrEmpty(result.Detail));
                Assert.True(result.Detail.All(c => c is >= ' ' and <= '~'), $"detail has a raw byte: {result.Detail}");
                break;
            case HelloStatus.NeedMoreData:
                Assert.Equal(new ClientHelloResult(HelloStatus.NeedMoreData, null, HelloError.None, null, 0), result);
                Assert.True(inputLength < ClientHelloReader.MaxHelloBytes, $"NeedMoreData with {inputLength} bytes");
                break;
            default:
                Assert.Fail($"status {(int)result.Status}");
                break;
        }
    }

    /// <summary>A sequence of the given segments, in order (empty ones kept).</summary>
    public static ReadOnlySequence<byte> Sequence(params byte[][] segments)
    {
        if (segments.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }
        var first = new Segment(segments[0], 0);
        var last = first;
        foreach (var bytes in segments.Skip(1))
        {
            last = last.Append(bytes);
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    public static byte[] FromHex(string hex)
    {
        var digits = new StringBuilder(hex.Length);
        foreach (var c in hex)
        {
            if (Uri.IsHexDigit(c))
            {
                digits.Append(c);
            }
        }
        return Convert.FromHexString(digits.ToString());
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}

/// <summary>The routing rules for a host name, written plainly as a second opinion on the reader's.</summary>
public static class HostNames
{
    /// <summary>Whether a name as the reader returns it (lower case, no trailing dot) is routable.</summary>
    public static bool IsRoutable(string name)
    {
        if (name.Length is 0 or > 253 || name.StartsWith("*.", StringComparison.Ordinal))
        {
            return false;
        }
        return name.Split('.').All(label =>
            label.Length is >= 1 and <= 63
            && label.All(c => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '-' or '_'));
    }

    /// <summary>What the reader should return for host_name bytes: the routed name, or null when refused.</summary>
    public static string? Expected(byte[] hostName)
    {
        if (hostName.Any(b => b >= 0x80))
        {
            return null;
        }
        var name = Encoding.ASCII.GetString(hostName);
        if (name.EndsWith('.'))
        {
            name = name[..^1];
        }
        return IsRoutable(name) ? name.ToLowerInvariant() : null;
    }
}
