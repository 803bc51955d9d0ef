using FsCheck;
using FsCheck.Fluent;
using Trc.Edge.Tls;

namespace Trc.Edge.Tests.Tls;

public sealed class ClientHelloReaderPropertyTests
{
    private static readonly Config Thorough = Config.QuickThrowOnFailure.WithMaxTest(3000);

    private static readonly char[] LabelChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_".ToCharArray();

    private static readonly Gen<string> Labels = Gen.Frequency(
        (8, Gen.Choose(1, 12).SelectMany(n => Gen.ArrayOf(Gen.Elements(LabelChars), n)).Select(c => new string(c))),
        (1, Gen.Choose(60, 66).SelectMany(n => Gen.ArrayOf(Gen.Elements(LabelChars), n)).Select(c => new string(c))),
        (1, Gen.Elements("", "*", "xn--bcher-kva", "_dmarc", "-")));

    /// <summary>Host names biased towards the edges of the rules: label and name lengths, dots, forbidden bytes.</summary>
    private static readonly Gen<byte[]> HostNameBytes = Gen.Frequency(
        (6, Gen.Choose(1, 6).SelectMany(n => Gen.ArrayOf(Labels, n))
            .Select(labels => string.Join('.', labels))
            .SelectMany(name => Gen.Elements(name, name + ".", name + "..", "." + name, "*." + name, name.ToUpperInvariant()))
            .Select(name => System.Text.Encoding.ASCII.GetBytes(name))),
        (2, Gen.Choose(240, 299).Select(LongName)),
        (2, Gen.ArrayOf(Gen.Elements<byte>(0x61, 0x2E, 0x2D, 0x5F, 0x00, 0x1B, 0x20, 0x7F, 0x80, 0xFF, 0x2A, 0x41, 0x39))),
        (1, Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b))));

    /// <summary>Other extensions to put around server_name, each type at most once.</summary>
    private static readonly HelloExtension[] Others =
    [
        HelloExtension.Alpn("h2", "http/1.1"),
        HelloExtension.SupportedVersions(0x0304, 0x0303),
        HelloExtension.KeyShareX25519(),
        HelloExtension.SupportedGroups(0x001d, 0x0017),
        HelloExtension.Padding(300),
        HelloExtension.Empty(0x0017),
        HelloExtension.Empty(0xfafa),
    ];

    private sealed record Shape(byte[] HostName, int Before, int After, int RecordSize, int SegmentSeed);

    private static readonly Gen<Shape> Shapes =
        from host in HostNameBytes
        from before in Gen.Choose(0, Others.Length)
        from after in Gen.Choose(0, Others.Length)
        from recordSize in Gen.Frequency((1, Gen.Choose(1, 8)), (2, Gen.Choose(9, 700)), (2, Gen.Constant(16384)))
        from segmentSeed in Gen.Choose(0, int.MaxValue)
        select new Shape(host, before, after, recordSize, segmentSeed);

    [Fact]
    public void A_host_name_is_routed_exactly_when_it_follows_the_rules_however_the_hello_is_framed()
    {
        var property = Prop.ForAll(Shapes.ToArbitrary(), shape =>
        {
            // Extensions before and after server_name, without repeating a type.
            var others = Others.Take(shape.Before).ToList();
            var after = Others.Skip(shape.Before).Take(shape.After);
            var builder = new ClientHelloBuilder().With([.. others, HelloExtension.ServerName(shape.HostName), .. after]);
            var records = Records.Split(builder.Handshake(), shape.RecordSize);

            // Arbitrary segmentation of the stream.
            var random = new Random(shape.SegmentSeed);
            var cuts = Enumerable.Range(0, random.Next(4)).Select(_ => random.Next(records.Length + 1)).Order().ToArray();
            var segments = new List<byte[]>();
            var previous = 0;
            foreach (var cut in cuts.Append(records.Length))
            {
                segments.Add(records[previous..cut]);
                previous = cut;
            }
            var result = ClientHelloReader.TryParse(HelloReplay.Sequence([.. segments]));

            var expected = HostNames.Expected(shape.HostName);
            var label = $"{Convert.ToHexString(shape.HostName)} -> {result}";
            if (shape.HostName.Length == 0)
            {
                return (result.Error == HelloError.EmptyServerName).Label(label);
            }
            return (expected is null
                ? result.Status == HelloStatus.Invalid && result.Error == HelloError.InvalidServerName
                : result == new ClientHelloResult(HelloStatus.Ok, expected, HelloError.None, null, records.Length)).Label(label);
        });
        Check.One(Thorough, property);
    }

    /// <summary>The first <paramref name="length"/> bytes of 49-byte labels joined by dots: cuts land on dots now and then.</summary>
    private static byte[] LongName(int length) =>
        System.Text.Encoding.ASCII.GetBytes(string.Join('.', Enumerable.Repeat(new string('q', 49), 6))[..length]);

    [Fact]
    public void Any_bytes_give_a_well_formed_answer_the_same_way_twice()
    {
        var inputs = Gen.Frequency(
            (1, Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b))),
            (3, Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b)).Select(rest => (byte[])[0x16, 0x03, 0x01, .. rest])),
            (3, Gen.ArrayOf(Gen.Elements<byte>(0x00, 0x01, 0x02, 0x03, 0x16, 0xFF, 0x20)).Select(rest => (byte[])[0x16, 0x03, 0x03, 0x00, 0x30, 0x01, 0x00, 0x00, .. rest])));
        var property = Prop.ForAll(inputs.ToArbitrary(), input =>
        {
            var result = ClientHelloReader.TryParse(input);
            HelloReplay.CheckShape(result, input.Length);
            return result == ClientHelloReader.TryParse(HelloReplay.Sequence(input[..(input.Length / 2)], input[(input.Length / 2)..]));
        });
        Check.One(Thorough, property);
    }
}
