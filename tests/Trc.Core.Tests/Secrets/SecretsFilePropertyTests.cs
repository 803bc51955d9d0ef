using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Trc.Core.Secrets;

namespace Trc.Core.Tests.Secrets;

public sealed class SecretsFilePropertyTests
{
    private static readonly Config Thorough = Config.QuickThrowOnFailure.WithMaxTest(2000);

    private const string KeyChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";

    private static readonly Gen<string> Keys = Gen.Frequency(
        (10, Gen.Choose(1, 12).SelectMany(n => Gen.ArrayOf(Gen.Elements(KeyChars.ToCharArray()), n)).Select(c => new string(c))),
        (1, Gen.Choose(200, SecretsFile.MaxKeyBytes).SelectMany(n => Gen.ArrayOf(Gen.Elements(KeyChars.ToCharArray()), n)).Select(c => new string(c))));

    /// <summary>Byte strings biased towards the cases the encoder must get right.</summary>
    private static readonly Gen<byte[]> Values = Gen.Frequency(
        (4, Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b))),
        (3, Gen.ArrayOf(Gen.Elements<byte>(0x00, 0x0A, 0x0D, 0x20, 0x09, 0x3D, 0x23, 0x61, 0xC3, 0xA9, 0xFF, 0x80, 0xF0, 0x9F, 0x94, 0x91))),
        (3, ArbMap.Default.GeneratorFor<string>().Select(s => Encoding.UTF8.GetBytes(s ?? ""))),
        (2, Gen.Elements(
            ""u8.ToArray(),
            " "u8.ToArray(),
            " \t \t"u8.ToArray(),
            "base64:"u8.ToArray(),
            "base64:aGk="u8.ToArray(),
            "base64:not base64"u8.ToArray(),
            "\r"u8.ToArray(),
            "\r\n"u8.ToArray(),
            "\n"u8.ToArray(),
            "\0"u8.ToArray(),
            "="u8.ToArray(),
            "#"u8.ToArray(),
            "pässwörd 🔑 日本"u8.ToArray(),
            new byte[] { 0xED, 0xA0, 0x80 },
            new byte[] { 0xC0, 0x80 },
            new byte[] { 0xEF, 0xBB, 0xBF })),
        (2, Gen.Elements("base64:"u8.ToArray(), " "u8.ToArray(), "\r"u8.ToArray())
            .SelectMany(prefix => Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b)).Select(rest => (byte[])[.. prefix, .. rest]))));

    private static readonly Gen<Dictionary<string, byte[]>> Dictionaries =
        Gen.ListOf(Gen.Zip(Keys, Values)).Select(pairs =>
        {
            var dictionary = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var (key, value) in pairs)
            {
                dictionary[key] = value;
            }
            return dictionary;
        });

    [Fact]
    public void Parsing_an_encoded_file_gives_back_exactly_the_same_secrets()
    {
        var property = Prop.ForAll(Dictionaries.ToArbitrary(), secrets =>
        {
            var result = SecretsFile.Parse(SecretsFile.Encode(secrets));
            if (!result.IsSuccess)
            {
                return false.ToProperty().Label(result.Error!.ToString());
            }
            var expected = secrets.OrderBy(s => s.Key, StringComparer.Ordinal).ToList();
            var actual = result.Secrets!;
            return (actual.Count == expected.Count
                && actual.Zip(expected).All(p => p.First.Key == p.Second.Key && p.First.Value.AsSpan().SequenceEqual(p.Second.Value))).ToProperty();
        });
        Check.One(Thorough, property);
    }

    [Fact]
    public void Encoding_is_canonical_so_parse_then_encode_reproduces_the_bytes()
    {
        var property = Prop.ForAll(Dictionaries.ToArbitrary(), secrets =>
        {
            var file = SecretsFile.Encode(secrets);
            return SecretsFile.Encode(SecretsFile.Parse(file).Secrets!).AsSpan().SequenceEqual(file);
        });
        Check.One(Thorough, property);
    }

    [Fact]
    public void Parse_never_throws_on_an_encoded_file_with_one_byte_changed_or_dropped()
    {
        var mutations = Gen.Zip(Dictionaries.Where(d => d.Count > 0), Gen.Zip(Gen.Choose(0, int.MaxValue), Gen.Choose(0, 255)));
        var property = Prop.ForAll(mutations.ToArbitrary(), input =>
        {
            var (secrets, (position, replacement)) = input;
            var file = SecretsFile.Encode(secrets).ToList();
            var at = position % file.Count;
            if (replacement % 2 == 0)
            {
                file.RemoveAt(at);
            }
            else
            {
                file[at] = (byte)replacement;
            }
            return ParsesCleanly(file.ToArray());
        });
        Check.One(Thorough, property);
    }

    [Fact]
    public void Parse_never_throws_on_arbitrary_bytes_after_the_header()
    {
        var property = Prop.ForAll(Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b)).ToArbitrary(), bytes =>
            ParsesCleanly([.. "# TRC_SECRETS_V1\n"u8, .. bytes]) && ParsesCleanly(bytes));
        Check.One(Thorough, property);
    }

    /// <summary>Either an error with a sane position, or secrets that survive a round trip.</summary>
    private static bool ParsesCleanly(byte[] file)
    {
        var result = SecretsFile.Parse(file);
        if (!result.IsSuccess)
        {
            var e = result.Error!;
            return e.Line >= 1 && e.Column >= 1 && e.ByteOffset >= 0 && e.ByteOffset <= file.Length && e.Message.Length > 0;
        }
        var again = SecretsFile.Parse(SecretsFile.Encode(result.Secrets!));
        return again.IsSuccess && again.Secrets!.Count == result.Secrets!.Count;
    }
}
