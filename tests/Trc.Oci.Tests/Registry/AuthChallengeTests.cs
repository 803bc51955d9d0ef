using Trc.Oci.Registry;

namespace Trc.Oci.Tests.Registry;

public sealed class AuthChallengeTests
{
    [Fact]
    public void A_distribution_bearer_challenge_parses_with_quoted_parameters()
    {
        Assert.True(AuthChallenge.TryParse(
            "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/alpine:pull\"",
            out var challenges, out var error), error);
        var challenge = Assert.Single(challenges);
        Assert.True(challenge.IsBearer);
        Assert.Equal("https://auth.docker.io/token", challenge.Realm);
        Assert.Equal("registry.docker.io", challenge.Service);
        Assert.Equal("repository:library/alpine:pull", challenge.Scope);
    }

    [Fact]
    public void Several_challenges_in_one_header_are_split_at_the_next_scheme()
    {
        Assert.True(AuthChallenge.TryParse("Basic realm=\"Registry Realm\", Bearer realm=\"https://h/t\" , scope=a:b:c", out var challenges, out var error), error);
        Assert.Equal(2, challenges.Count);
        Assert.True(challenges[0].IsBasic);
        Assert.Equal("Registry Realm", challenges[0].Realm);
        Assert.True(challenges[1].IsBearer);
        Assert.Equal("a:b:c", challenges[1].Scope);
    }

    [Fact]
    public void Escapes_in_quoted_values_and_case_of_names_are_handled()
    {
        Assert.True(AuthChallenge.TryParse("bearer REALM=\"a\\\"b\\\\c\"", out var challenges, out var error), error);
        Assert.True(challenges[0].IsBearer);
        Assert.Equal("a\"b\\c", challenges[0].Realm);
    }

    [Fact]
    public void A_bare_scheme_is_a_challenge_without_parameters()
    {
        Assert.True(AuthChallenge.TryParse("Basic", out var challenges, out var error), error);
        Assert.Empty(challenges[0].Parameters);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("   ", "empty")]
    [InlineData("Bearer realm=\"open", "not closed")]
    [InlineData("Bearer realm=", "has no value")]
    [InlineData("Bearer realm=\"a\",realm=\"b\"", "appears twice")]
    [InlineData("\"quoted\"", "expected an auth scheme at character 0")]
    [InlineData("Bearer realm=\"a\u0001b\"", "control character")]
    [InlineData("Bearer =x", "expected a parameter name")]
    public void Malformed_headers_are_refused_with_the_reason(string header, string expected)
    {
        Assert.False(AuthChallenge.TryParse(header, out _, out var error));
        Assert.Contains(expected, error);
    }

    [Fact]
    public void An_oversized_header_is_refused_without_parsing()
    {
        var header = "Bearer realm=\"" + new string('a', AuthChallenge.MaxHeaderLength) + "\"";
        Assert.False(AuthChallenge.TryParse(header, out _, out var error));
        Assert.Contains("more than the 8192 allowed", error);
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        const string alphabet = "Bb=\", \\\tar\u0000\u00e9";
        var random = new Random(42);
        for (var i = 0; i < 5000; i++)
        {
            var chars = new char[random.Next(0, 60)];
            for (var j = 0; j < chars.Length; j++)
            {
                chars[j] = alphabet[random.Next(0, alphabet.Length)];
            }
            var ok = AuthChallenge.TryParse(new string(chars), out var challenges, out var error);
            Assert.True(ok ? challenges is { Count: > 0 } : error is { Length: > 0 });
        }
    }
}
