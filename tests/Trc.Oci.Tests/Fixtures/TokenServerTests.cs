using System.Net;
using System.Net.Http.Headers;
using Trc.Testing;
using Trc.Testing.Registry;

namespace Trc.Oci.Tests.Fixtures;

public sealed class TokenServerTests
{
    private static readonly Dictionary<string, byte[]> Files = new() { ["hello.txt"] = "token auth\n"u8.ToArray() };

    [Theory]
    [InlineData(TokenKeyReference.X5c)]
    [InlineData(TokenKeyReference.LibtrustKid)]
    public async Task Skopeo_pushes_with_credentials_and_a_plain_client_pulls_after_the_token_dance(TokenKeyReference keyReference)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Token(new() { KeyReference = keyReference }), cts.Token);
        var tokens = registry.Tokens!;

        var image = await registry.PushAsync("trc/app", "v1", Files, cts.Token);

        var push = tokens.Requests.Where(r => r.Scopes.Any(s => s.Actions.Contains("push"))).ToList();
        Assert.NotEmpty(push);
        Assert.All(push, r => Assert.Equal((200, "trc-user", "trc-test-registry"), (r.Status, r.User, r.Service)));

        using var http = RegistryHttp.CreateClient();
        var manifestUri = new Uri(registry.BaseUri, "v2/trc/app/manifests/v1");
        using (var challenged = await RegistryHttp.GetAsync(http, manifestUri, cts.Token, ImageTools.OciManifestMediaType))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, challenged.StatusCode);
            var challenge = RegistryHttp.ParseChallenge(challenged.Headers.WwwAuthenticate.Single().ToString());
            Assert.Equal(("Bearer", tokens.Realm.ToString(), "trc-test-registry", "repository:trc/app:pull"),
                (challenge["scheme"], challenge["realm"], challenge["service"], challenge["scope"]));
        }
        tokens.ClearRequests();
        var token = await RegistryHttp.GetBearerTokenAsync(http, new Uri(registry.BaseUri, "v2/"), "repository:trc/app:pull", registry.Credentials, cts.Token);
        var request = Assert.Single(tokens.Requests);
        Assert.True(request.HadAuthorization);
        Assert.Equal("repository:trc/app:pull", request.Scopes.Single().ToString());

        using var pulled = await RegistryHttp.GetAsync(http, manifestUri, cts.Token, ImageTools.OciManifestMediaType, new AuthenticationHeaderValue("Bearer", token));
        Assert.Equal(HttpStatusCode.OK, pulled.StatusCode);
        Assert.Equal(image.ManifestDigest, pulled.Headers.GetValues("Docker-Content-Digest").Single());
    }

    [Fact]
    public async Task The_registry_refuses_tokens_for_another_repository_audience_or_issuer_and_bad_credentials_get_no_token()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Token(), cts.Token);
        var tokens = registry.Tokens!;
        await registry.PushAsync("trc/app", "v1", Files, cts.Token);
        using var http = RegistryHttp.CreateClient();
        var manifestUri = new Uri(registry.BaseUri, "v2/trc/app/manifests/v1");
        async Task<HttpStatusCode> PullWith(string token)
        {
            using var r = await RegistryHttp.GetAsync(http, manifestUri, cts.Token, ImageTools.OciManifestMediaType, new AuthenticationHeaderValue("Bearer", token));
            return r.StatusCode;
        }
        var pull = TokenScope.Repository("trc/app", "pull");

        Assert.Equal(HttpStatusCode.OK, await PullWith(tokens.IssueToken("u", [pull])));
        Assert.Equal(HttpStatusCode.Unauthorized, await PullWith(tokens.IssueToken("u", [TokenScope.Repository("trc/other", "pull")])));
        Assert.Equal(HttpStatusCode.Unauthorized, await PullWith(tokens.IssueToken("u", [pull], audience: "another-registry")));
        Assert.Equal(HttpStatusCode.Unauthorized, await PullWith(tokens.IssueToken("u", [pull], issuer: "someone-else")));
        Assert.Equal(HttpStatusCode.Unauthorized, await PullWith(tokens.IssueToken("u", [pull], now: DateTimeOffset.UtcNow.AddHours(-1))));

        var wrong = await Assert.ThrowsAsync<HttpRequestException>(() =>
            RegistryHttp.GetBearerTokenAsync(http, manifestUri, "repository:trc/app:pull", new("trc-user", "wrong"), cts.Token));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        var anonymous = await Assert.ThrowsAsync<HttpRequestException>(() =>
            RegistryHttp.GetBearerTokenAsync(http, manifestUri, "repository:trc/app:pull", null, cts.Token));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.False(tokens.Requests[^1].HadAuthorization);
    }

    [Fact]
    public async Task Anonymous_pull_when_allowed_gets_a_pull_only_token_so_an_anonymous_push_fails()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Token(new() { AllowAnonymousPull = true }), cts.Token);
        var image = await registry.PushAsync("trc/public", "v1", Files, cts.Token);
        using var http = RegistryHttp.CreateClient();

        var token = await RegistryHttp.GetBearerTokenAsync(http, new Uri(registry.BaseUri, "v2/"), "repository:trc/public:pull,push", null, cts.Token);
        using var pulled = await RegistryHttp.GetAsync(http, new Uri(registry.BaseUri, "v2/trc/public/manifests/v1"), cts.Token,
            ImageTools.OciManifestMediaType, new AuthenticationHeaderValue("Bearer", token));
        Assert.Equal(HttpStatusCode.OK, pulled.StatusCode);

        var push = ImageTools.SkopeoCopyAsync(image.OciReference, registry.Reference("trc/public", "v2"), null, null, all: false, cts.Token);
        await Assert.ThrowsAsync<ExternalToolException>(() => push);
        Assert.Contains(registry.Tokens!.Requests, r => !r.HadAuthorization && r.Status == 200);
    }
}
