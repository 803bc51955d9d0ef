using System.Text;
using Trc.Oci.Registry;

namespace Trc.Oci.Tests.Registry;

/// <summary>The token service's JSON answer, as <see cref="RegistryClient"/> reads it.</summary>
public sealed class TokenAnswerTests
{
    private static (string Token, int? ExpiresIn) Parse(string json) => RegistryClient.ParseToken(Encoding.UTF8.GetBytes(json), "token");

    [Fact]
    public void Token_or_access_token_is_read_with_its_lifetime()
    {
        Assert.Equal(("abc.def", 300), Parse("{\"token\": \"abc.def\", \"expires_in\": 300}"));
        Assert.Equal(("xyz", null), Parse("{\"access_token\": \"xyz\"}"));
        Assert.Equal(("first", null), Parse("{\"token\": \"first\", \"access_token\": \"second\"}"));
    }

    [Theory]
    [InlineData("", "not valid JSON")]
    [InlineData("{\"token\": \"abc\"", "not valid JSON")]
    [InlineData("[\"token\"]", "not a JSON object")]
    [InlineData("{}", "no \"token\" or \"access_token\"")]
    [InlineData("{\"token\": \"\"}", "no \"token\" or \"access_token\"")]
    [InlineData("{\"token\": 5}", "no \"token\" or \"access_token\"")]
    [InlineData("{\"token\": \"a b\"}", "not a printable ASCII string")]
    [InlineData("{\"token\": \"a\\r\\nX-Injected: 1\"}", "not a printable ASCII string")]
    [InlineData("{\"token\": \"a\", \"expires_in\": -1}", "expires_in is not a number of seconds")]
    [InlineData("{\"token\": \"a\", \"expires_in\": \"60\"}", "expires_in is not a number of seconds")]
    [InlineData("{\"token\": \"a\", \"expires_in\": 1e99}", "expires_in is not a number of seconds")]
    [InlineData("[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]", "not valid JSON")]
    public void A_malformed_answer_is_a_bad_response_naming_the_problem(string json, string expected)
    {
        var e = Assert.Throws<RegistryException>(() => Parse(json));
        Assert.Equal(RegistryErrorKind.BadResponse, e.Kind);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void An_oversized_token_is_refused()
    {
        var e = Assert.Throws<RegistryException>(() => Parse("{\"token\": \"" + new string('a', 64 * 1024 + 1) + "\"}"));
        Assert.Contains("at most 64 KiB", e.Message);
    }
}
