using System.Text;
using Trc.Oci.Images;

namespace Trc.Oci.Tests.Images;

public sealed class DigestTests
{
    private const string EmptySha256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    private const string AbcSha256 = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    private const string AbcSha512 = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    [Theory]
    [InlineData(EmptySha256, "sha256")]
    [InlineData(AbcSha256, "sha256")]
    [InlineData(AbcSha512, "sha512")]
    public void A_valid_digest_parses_and_prints_back_unchanged(string text, string algorithm)
    {
        var digest = Digest.Parse(text);
        Assert.Equal(algorithm, digest.Algorithm);
        Assert.Equal(text[(algorithm.Length + 1)..], digest.Hex);
        Assert.Equal(text, digest.ToString());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "missing ':'")]
    [InlineData("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "lowercase")]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", "64 hex digits, got 63")]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", "got 65")]
    [InlineData("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "128 hex digits")]
    [InlineData("sha256:", "hex is empty")]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm \"md5\"")]
    [InlineData("SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "algorithm")]
    [InlineData(":e3b0", "algorithm")]
    [InlineData("sha256+:e3b0", "algorithm")]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g", "'g' is not a hex digit")]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 ", "not a hex digit")]
    public void An_invalid_digest_is_refused_with_a_message_naming_the_problem(string text, string expected)
    {
        Assert.False(Digest.TryParse(text, out var digest, out var error));
        Assert.Null(digest);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        var thrown = Assert.Throws<FormatException>(() => Digest.Parse(text));
        Assert.Equal(error, thrown.Message);
    }

    [Fact]
    public void Null_is_refused_without_throwing() =>
        Assert.False(Digest.TryParse(null, out _, out _));

    [Fact]
    public void Compute_gives_the_known_vectors()
    {
        Assert.Equal(EmptySha256, Digest.Compute(Digest.Sha256, []).ToString());
        Assert.Equal(AbcSha256, Digest.Compute(Digest.Sha256, "abc"u8).ToString());
        Assert.Equal(AbcSha512, Digest.Compute(Digest.Sha512, "abc"u8).ToString());
    }

    [Fact]
    public void Compute_refuses_an_unknown_algorithm() =>
        Assert.Throws<ArgumentException>(() => Digest.Compute("md5", "abc"u8));

    [Fact]
    public void Digests_compare_by_value()
    {
        Assert.Equal(Digest.Parse(AbcSha256), Digest.Compute(Digest.Sha256, "abc"u8));
        Assert.True(Digest.Parse(AbcSha256) == Digest.Parse(AbcSha256));
        Assert.True(Digest.Parse(AbcSha256) != Digest.Parse(EmptySha256));
        Assert.Equal(Digest.Parse(AbcSha256).GetHashCode(), Digest.Parse(AbcSha256).GetHashCode());
    }

    [Theory]
    [InlineData(AbcSha256)]
    [InlineData(AbcSha512)]
    public void The_verifier_accepts_the_right_bytes_fed_at_every_split(string expected)
    {
        var data = "abc"u8.ToArray();
        for (var split = 0; split <= data.Length; split++)
        {
            using var verifier = Digest.Parse(expected).CreateVerifier();
            verifier.Append(data.AsSpan(0, split));
            verifier.Append(data.AsSpan(split));
            Assert.Equal(3, verifier.BytesVerified);
            Assert.True(verifier.Verify(out var actual));
            Assert.Equal(expected, actual.ToString());
        }
    }

    [Fact]
    public void The_verifier_accepts_bytes_fed_one_at_a_time()
    {
        var data = Encoding.UTF8.GetBytes(new string('x', 10_000));
        using var verifier = Digest.Compute(Digest.Sha256, data).CreateVerifier();
        foreach (var b in data)
        {
            verifier.Append([b]);
        }
        Assert.True(verifier.Verify());
    }

    [Fact]
    public void The_verifier_refuses_other_bytes()
    {
        using var verifier = Digest.Parse(AbcSha256).CreateVerifier();
        verifier.Append("abd"u8);
        Assert.False(verifier.Verify(out var actual));
        Assert.NotEqual(Digest.Parse(AbcSha256), actual);
    }

    [Fact]
    public void The_hasher_gives_the_digest_of_what_it_was_fed()
    {
        using var hasher = Digest.CreateHasher();
        hasher.Append("a"u8);
        hasher.Append("bc"u8);
        Assert.Equal(AbcSha256, hasher.GetDigestAndReset().ToString());
        Assert.Equal(EmptySha256, hasher.GetDigestAndReset().ToString());
    }
}
