using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Trc.Edge.Tls;
using Xunit.Abstractions;

namespace Trc.Edge.Tests.Tls;

/// <summary>
/// A deterministic mutation fuzzer over valid hellos: length fields set to neighbours and extremes,
/// extension types duplicated, name bytes replaced, the handshake re-split into records of random
/// sizes, then bit flips, special bytes, insertions, deletions, duplicated ranges, truncations and
/// record-header edits. Whatever comes out, the reader must answer without throwing, the same way
/// however the bytes are segmented, never change its mind when more bytes arrive, and accept
/// exactly what a plain second implementation of the rules accepts.
/// </summary>
public sealed class ClientHelloReaderFuzzTests(ITestOutputHelper output)
{
    /// <summary>Case <c>i</c> mutates with <c>new Random(Seed + i)</c>, so any failure replays alone.</summary>
    private const int Seed = 20_251_122;

    private const int Cases = 150_000;

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static readonly byte[] SpecialBytes = [0x00, 0xFF, 0x80, 0x7F, 0x01, 0x16, 0x03, 0x2E, 0x1B, 0x20, 0x2A, 0x41];

    private sealed record Sample(string Name, byte[] Handshake, HelloFields Fields);

    private static readonly Lazy<List<Sample>> Corpus = new(() =>
    [
        .. ClientHelloReaderTests.ValidSamples.Select(pair =>
        {
            var fields = new HelloFields();
            var verdict = ReferenceHelloReader.Read(pair.Value.Bytes, fields);
            Assert.True(verdict.Accepted, $"the reference reader refuses sample '{pair.Key}'");
            return new Sample(pair.Key, Records.Unwrap(pair.Value.Bytes), fields);
        }),
    ]);

    [Fact]
    public void Mutated_hellos_never_make_the_reader_throw_disagree_with_itself_or_with_the_reference()
    {
        var report = Fuzz(Cases);
        output.WriteLine(report.Describe());
        Assert.True(report.Failures.Count == 0, report.Describe());
        // A fuzzer that never reached one of the outcomes would not be exploring much.
        foreach (var status in Enum.GetValues<HelloStatus>())
        {
            Assert.True(report.ByStatus.GetValueOrDefault(status) > Cases / 100, $"too few {status}: {report.Describe()}");
        }
        foreach (var error in new[] { HelloError.Malformed, HelloError.NotHandshake, HelloError.HelloTooLarge, HelloError.InvalidServerName, HelloError.DuplicateServerName, HelloError.NotClientHello, HelloError.UnsupportedRecordVersion })
        {
            Assert.True(report.ByError.GetValueOrDefault(error) > 0, $"never produced {error}: {report.Describe()}");
        }
    }

    [Fact]
    public void The_reference_reader_agrees_on_every_sample_and_finds_its_fields()
    {
        foreach (var sample in Corpus.Value)
        {
            var result = ClientHelloReader.TryParse(Records.Wrap(sample.Handshake));
            var reference = ReferenceHelloReader.Read(Records.Wrap(sample.Handshake));
            Assert.Equal((true, result.ServerName, result.Consumed), (reference.Accepted, reference.Name, reference.End));
            Assert.True(sample.Fields.Lengths.Count >= 4, sample.Name);
        }
    }

    [Fact]
    public void Mutation_is_deterministic_for_a_seed()
    {
        var sample = Corpus.Value[0];
        Assert.Equal(Mutate(new Random(Seed), sample), Mutate(new Random(Seed), sample));
        Assert.NotEqual(Mutate(new Random(Seed), sample), Mutate(new Random(Seed + 1), sample));
    }

    // ---- the fuzzer ---------------------------------------------------------------------------------

    private sealed record Failure(int Case, string Sample, byte[] Input, string Problem);

    private sealed class Report
    {
        public int Cases { get; set; }

        public Dictionary<HelloStatus, int> ByStatus { get; } = [];

        public Dictionary<HelloError, int> ByError { get; } = [];

        public List<Failure> Failures { get; } = [];

        public TimeSpan Elapsed { get; set; }

        public string Describe()
        {
            var text = new StringBuilder($"{Cases} cases in {Elapsed.TotalSeconds:F2} s; ");
            text.AppendJoin(", ", ByStatus.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"));
            text.Append("; errors: ").AppendJoin(", ", ByError.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"));
            text.Append($"; {Failures.Count} failures");
            foreach (var failure in Failures.Take(5))
            {
                text.Append($"\n--- case {failure.Case} (new Random({Seed} + {failure.Case}) on '{failure.Sample}'): {failure.Problem}\n    input: {HelloReplay.Hex(failure.Input)}");
            }
            return text.ToString();
        }
    }

    private static Report Fuzz(int cases)
    {
        var corpus = Corpus.Value;
        var report = new Report();
        var run = Task.Run(() =>
        {
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < cases; i++)
            {
                var random = new Random(Seed + i);
                var sample = corpus[random.Next(corpus.Count)];
                var input = Mutate(random, sample);
                string? problem;
                ClientHelloResult result = default;
                try
                {
                    problem = Check(input, random, out result);
                }
                catch (Exception e)
                {
                    problem = $"{e.GetType().Name}: {e.Message}\n{e.StackTrace}";
                }
                if (problem is not null)
                {
                    report.Failures.Add(new Failure(i, sample.Name, input, problem));
                }
                report.ByStatus[result.Status] = report.ByStatus.GetValueOrDefault(result.Status) + 1;
                if (result.Error != HelloError.None)
                {
                    report.ByError[result.Error] = report.ByError.GetValueOrDefault(result.Error) + 1;
                }
                report.Cases++;
            }
            report.Elapsed = watch.Elapsed;
        });
        Assert.True(run.Wait(Deadline), $"the fuzzer did not finish within {Deadline.TotalSeconds} s; stopped at case {report.Cases}");
        return report;
    }

    /// <summary>Null when the reader behaved on <paramref name="input"/>; otherwise what went wrong.</summary>
    private static string? Check(byte[] input, Random random, out ClientHelloResult result)
    {
        result = ClientHelloReader.TryParse(input);
        var whole = result;
        try
        {
            HelloReplay.CheckShape(whole, input.Length);
        }
        catch (Exception e)
        {
            return $"bad shape {whole}: {e.Message}";
        }

        var split = random.Next(input.Length + 1);
        var asSequence = ClientHelloReader.TryParse(HelloReplay.Sequence(input[..split], input[split..]));
        if (asSequence != whole)
        {
            return $"split at {split}: {asSequence}, whole: {whole}";
        }
        var second = random.Next(split, input.Length + 1);
        var threeSegments = ClientHelloReader.TryParse(HelloReplay.Sequence(input[..split], input[split..second], input[second..]));
        if (threeSegments != whole)
        {
            return $"split at {split} and {second}: {threeSegments}, whole: {whole}";
        }

        // Prefix-stability: a shorter buffer waits or says the same; a longer one says the same.
        var prefixLength = random.Next(input.Length + 1);
        var prefix = ClientHelloReader.TryParse(input.AsSpan(0, prefixLength));
        if (prefix.Status != HelloStatus.NeedMoreData && prefix != whole)
        {
            return $"prefix of {prefixLength}: {prefix}, whole: {whole}";
        }
        if (whole.Status != HelloStatus.NeedMoreData)
        {
            var tail = new byte[random.Next(1, 64)];
            random.NextBytes(tail);
            var longer = ClientHelloReader.TryParse([.. input, .. tail]);
            if (longer != whole)
            {
                return $"with {tail.Length} more bytes: {longer}, whole: {whole}";
            }
        }
        if (whole.Status == HelloStatus.Ok)
        {
            if (ClientHelloReader.TryParse(input.AsSpan(0, whole.Consumed)) != whole)
            {
                return $"the first {whole.Consumed} (Consumed) bytes read differently";
            }
            if (ClientHelloReader.TryParse(input.AsSpan(0, whole.Consumed - 1)).Status != HelloStatus.NeedMoreData)
            {
                return $"decided before the last byte of the hello";
            }
        }

        var reference = ReferenceHelloReader.Read(input);
        if (reference.Accepted != (whole.Status == HelloStatus.Ok) || (reference.Accepted && (reference.Name != whole.ServerName || reference.End != whole.Consumed)))
        {
            return $"reference reader: {reference}, reader: {whole}";
        }
        return null;
    }

    // ---- mutation -------------------------------------------------------------------------------------

    private static byte[] Mutate(Random random, Sample sample)
    {
        var handshake = sample.Handshake.ToArray();
        var fields = sample.Fields;
        switch (random.Next(10))
        {
            case < 4:
                TweakLength(random, handshake, fields.Lengths[random.Next(fields.Lengths.Count)]);
                break;
            case 4 when fields.ExtensionTypes.Count >= 2:
                // Make one extension's type another's: a duplicate (of server_name, now and then).
                var from = fields.ExtensionTypes[random.Next(fields.ExtensionTypes.Count)];
                var to = fields.ExtensionTypes[random.Next(fields.ExtensionTypes.Count)];
                handshake[to] = handshake[from];
                handshake[to + 1] = handshake[from + 1];
                break;
            case 5 when fields.HostNames.Count > 0 && fields.HostNames[0].Length > 0:
                var (nameAt, nameLength) = fields.HostNames[0];
                handshake[nameAt + random.Next(nameLength)] = random.Next(2) == 0 ? SpecialBytes[random.Next(SpecialBytes.Length)] : (byte)random.Next(256);
                break;
            case 6 when fields.HostNames.Count > 0:
                handshake = AddServerNameEntry(random, handshake, fields);
                break;
            default:
                break;
        }

        var bytes = random.Next(3) == 0 ? SplitRandomly(random, handshake) : Records.Wrap(handshake, (ushort)(0x0300 + random.Next(5)));

        var operations = random.Next(4);
        for (var i = 0; i < operations && bytes.Length > 0; i++)
        {
            var at = random.Next(bytes.Length);
            switch (random.Next(9))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    bytes[at] = SpecialBytes[random.Next(SpecialBytes.Length)];
                    break;
                case 2:
                    var inserted = new byte[random.Next(1, 9)];
                    random.NextBytes(inserted);
                    bytes = [.. bytes[..at], .. inserted, .. bytes[at..]];
                    break;
                case 3:
                    bytes = [.. bytes[..at], .. bytes[Math.Min(bytes.Length, at + random.Next(1, 9))..]];
                    break;
                case 4:
                    var copied = bytes[at..Math.Min(bytes.Length, at + random.Next(1, 40))];
                    var to = random.Next(bytes.Length + 1);
                    bytes = [.. bytes[..to], .. copied, .. bytes[to..]];
                    break;
                case 5:
                    bytes = bytes[..at];
                    break;
                case 6:
                    var tail = new byte[random.Next(1, 41)];
                    random.NextBytes(tail);
                    bytes = [.. bytes, .. tail];
                    break;
                case 7:
                    TweakRecordLength(random, bytes);
                    break;
                default:
                    bytes[random.Next(Math.Min(bytes.Length, 9))] = SpecialBytes[random.Next(SpecialBytes.Length)];
                    break;
            }
        }
        return bytes;
    }

    /// <summary>
    /// Adds an entry to the server_name list, before or after the host_name, and grows every length
    /// around it: a second host_name (the same or another) or an entry of an unknown type.
    /// </summary>
    private static byte[] AddServerNameEntry(Random random, byte[] handshake, HelloFields fields)
    {
        var (nameAt, nameLength) = fields.HostNames[0];
        byte[] name = random.Next(3) switch
        {
            0 => handshake[nameAt..(nameAt + nameLength)],
            1 => "other.example"u8.ToArray(),
            _ => [.. Enumerable.Range(0, random.Next(0, 20)).Select(_ => (byte)random.Next(256))],
        };
        var type = (byte)(random.Next(2) == 0 ? 0 : random.Next(1, 256));
        byte[] entry = [type, (byte)(name.Length >> 8), (byte)name.Length, .. name];
        var entryAt = random.Next(2) == 0 ? nameAt - 3 : nameAt + nameLength;
        var grown = (byte[])[.. handshake[..entryAt], .. entry, .. handshake[entryAt..]];
        // Lengths before the entry: the handshake's, the extensions block's, the extension's and the list's.
        foreach (var (at, size) in new[] { (1, 3), (fields.ExtensionsLengthAt, 2), (nameAt - 7, 2), (nameAt - 5, 2) })
        {
            var value = 0;
            for (var i = 0; i < size; i++)
            {
                value = (value << 8) | grown[at + i];
            }
            value += entry.Length;
            for (var i = size - 1; i >= 0; i--)
            {
                grown[at + i] = (byte)value;
                value >>= 8;
            }
        }
        return grown;
    }

    private static void TweakLength(Random random, byte[] handshake, (int Offset, int Size) field)
    {
        var span = handshake.AsSpan(field.Offset, field.Size);
        var value = 0;
        foreach (var b in span)
        {
            value = (value << 8) | b;
        }
        var max = (1 << (8 * field.Size)) - 1;
        value = random.Next(8) switch
        {
            0 => value + 1,
            1 => value - 1,
            2 => 0,
            3 => max,
            4 => random.Next(max + 1),
            5 => value + random.Next(-8, 9),
            6 => value + 256,
            _ => value ^ (1 << random.Next(8 * field.Size)),
        };
        value &= max;
        for (var i = field.Size - 1; i >= 0; i--)
        {
            span[i] = (byte)value;
            value >>= 8;
        }
    }

    private static void TweakRecordLength(Random random, byte[] bytes)
    {
        var headers = new List<int>();
        for (var at = 0; at + 5 <= bytes.Length; at += 5 + BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(at + 3)))
        {
            headers.Add(at);
        }
        if (headers.Count == 0)
        {
            return;
        }
        var header = headers[random.Next(headers.Count)];
        var length = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(header + 3));
        int[] choices = [length + 1, length - 1, 0, 0xFFFF, 16384, 16385, random.Next(0x10000)];
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(header + 3), (ushort)choices[random.Next(choices.Length)]);
    }

    private static byte[] SplitRandomly(Random random, byte[] handshake)
    {
        var maxSize = random.Next(4) switch { 0 => 4, 1 => 32, 2 => 600, _ => handshake.Length };
        var sizes = new List<int>();
        for (var covered = 0; covered < handshake.Length;)
        {
            var size = Math.Min(random.Next(1, maxSize + 1), handshake.Length - covered);
            sizes.Add(size);
            covered += size;
        }
        return Records.SplitAt(handshake, [.. sizes]);
    }
}
