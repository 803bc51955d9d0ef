using System.Text.Json;
using Trc.Core.Crypto;

namespace Trc.Core.Tests.Crypto;

/// <summary>
/// Wycheproof's AES-GCM vectors with the one parameter set the envelope uses (256-bit key, 96-bit
/// IV, 128-bit tag), run through <see cref="Aes256Gcm"/>, the helper behind Seal and Open.
/// </summary>
public sealed class Aes256GcmWycheproofTests
{
    private sealed record Vector(int TcId, string Comment, byte[] Key, byte[] Iv, byte[] Aad, byte[] Msg, byte[] Ct, byte[] Tag, string Result);

    private static readonly Lazy<IReadOnlyDictionary<int, Vector>> Vectors = new(Load);

    public static TheoryData<int> ValidIds() => Ids("valid");

    public static TheoryData<int> InvalidIds() => Ids("invalid");

    [SharedTestDataTheory]
    [MemberData(nameof(ValidIds))]
    public void A_valid_vector_encrypts_to_the_expected_ciphertext_and_decrypts_back(int tcId)
    {
        var v = Vectors.Value[tcId];

        var sealedBytes = new byte[v.Msg.Length + Aes256Gcm.TagBytes];
        Aes256Gcm.Encrypt(v.Key, v.Iv, v.Msg, v.Aad, sealedBytes);
        Assert.Equal([.. v.Ct, .. v.Tag], sealedBytes);

        var plaintext = new byte[v.Ct.Length];
        Assert.True(Aes256Gcm.TryDecrypt(v.Key, v.Iv, [.. v.Ct, .. v.Tag], v.Aad, plaintext), $"tcId {tcId} ({v.Comment}) was rejected");
        Assert.Equal(v.Msg, plaintext);
    }

    [SharedTestDataTheory]
    [MemberData(nameof(InvalidIds))]
    public void An_invalid_vector_is_rejected(int tcId)
    {
        var v = Vectors.Value[tcId];

        var plaintext = new byte[v.Ct.Length];
        Assert.False(Aes256Gcm.TryDecrypt(v.Key, v.Iv, [.. v.Ct, .. v.Tag], v.Aad, plaintext), $"tcId {tcId} ({v.Comment}) was accepted");
        Assert.All(plaintext, b => Assert.Equal(0, b));
    }

    [SharedTestDataFact]
    public void The_suite_has_both_valid_and_invalid_vectors_for_our_parameters()
    {
        var vectors = Vectors.Value.Values.ToList();
        // 66 in the Wycheproof release in ../shared/testdata (39 valid, 27 invalid).
        Assert.True(vectors.Count >= 60, $"only {vectors.Count} vectors with 256-bit keys, 96-bit IVs and 128-bit tags");
        Assert.Contains(vectors, v => v.Result == "valid");
        Assert.Contains(vectors, v => v.Result == "invalid");
        Assert.All(vectors, v => Assert.Contains(v.Result, new[] { "valid", "invalid" }));
    }

    private static TheoryData<int> Ids(string result)
    {
        var data = new TheoryData<int>();
        if (SharedTestData.Directory is null)
        {
            data.Add(-1);
            return data;
        }
        foreach (var v in Vectors.Value.Values.Where(v => v.Result == result))
        {
            data.Add(v.TcId);
        }
        return data;
    }

    private static IReadOnlyDictionary<int, Vector> Load()
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(SharedTestData.PathOf("wycheproof", "aes_gcm_test.json")));
        var vectors = new Dictionary<int, Vector>();
        foreach (var group in json.RootElement.GetProperty("testGroups").EnumerateArray())
        {
            if (group.GetProperty("keySize").GetInt32() != 256 || group.GetProperty("ivSize").GetInt32() != 96 || group.GetProperty("tagSize").GetInt32() != 128)
            {
                continue;
            }
            foreach (var t in group.GetProperty("tests").EnumerateArray())
            {
                var v = new Vector(
                    t.GetProperty("tcId").GetInt32(),
                    t.GetProperty("comment").GetString()!,
                    Hex(t, "key"), Hex(t, "iv"), Hex(t, "aad"), Hex(t, "msg"), Hex(t, "ct"), Hex(t, "tag"),
                    t.GetProperty("result").GetString()!);
                vectors.Add(v.TcId, v);
            }
        }
        return vectors;
    }

    private static byte[] Hex(JsonElement test, string name) => Convert.FromHexString(test.GetProperty(name).GetString()!);
}
