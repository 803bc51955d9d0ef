using System.Net;
using System.Net.Sockets;
using Trc.Core.Api;
using Trc.Testing;

namespace Trc.Client.Tests;

/// <summary>How failures reach the caller: problems, bodies that are not problems, and unreachable servers.</summary>
public sealed class TrcClientErrorTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Token = "trc_0123456789abcdef0123456789abcdef_SECRETSECRETSECRETSECRETSECRETSECRETSECRETS";

    private ClientTestServer Server => fixture.Server;

    [Fact]
    public async Task A_problem_carries_its_status_code_field_and_detail()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => owner.CreateAppAsync(org, "Not A Name"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.StatusCode);
        Assert.Equal("invalid_name", e.Code);
        Assert.Equal("name", e.Field);
        Assert.NotNull(e.Problem);
        Assert.Equal(422, e.Problem.Status);
        Assert.Equal(e.Problem.Detail, e.Message);
        Assert.Contains("not a valid name", e.Message);
        Assert.Equal(Server.Address, e.Server);
    }

    [Fact]
    public async Task A_missing_app_is_a_404_problem()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => owner.ListEnvsAsync(org, "nope"));
        Assert.Equal(HttpStatusCode.NotFound, e.StatusCode);
        Assert.Equal("not_found", e.Code);
        Assert.False(e.IsTransient);
    }

    [Fact]
    public async Task An_unknown_token_is_a_401_and_its_value_is_in_no_message()
    {
        var client = Server.Client(Token);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => client.WhoAmIAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        Assert.Equal("unauthenticated", e.Code);
        Assert.DoesNotContain("SECRET", e.ToString());
    }

    [Fact]
    public async Task A_proxys_HTML_error_page_is_reported_as_such_with_its_title_and_without_the_token()
    {
        // The page quotes the request's headers, the way some debugging proxies do.
        await using var proxy = new CannedHttpServer(request => CannedHttpServer.Response("502 Bad Gateway", "text/html",
            $"<html><head><title>502 Bad Gateway {request.Replace("\r\n", " ")}</title></head><body>nginx</body></html>"));
        using var client = new TrcClient(proxy.Address, Token);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => client.ListOrgsAsync());
        Assert.Equal(HttpStatusCode.BadGateway, e.StatusCode);
        Assert.Null(e.Problem);
        Assert.Null(e.Code);
        Assert.True(e.IsTransient);
        Assert.Contains("HTTP 502", e.Message);
        Assert.Contains("text/html", e.Message);
        Assert.Contains("proxy", e.Message);
        Assert.Contains("502 Bad Gateway", e.Message);
        Assert.Contains(proxy.Address.ToString().TrimEnd('/'), e.Message);
        Assert.DoesNotContain("SECRET", e.ToString());
    }

    [Fact]
    public async Task A_success_that_is_not_JSON_is_reported_instead_of_half_read()
    {
        await using var other = new CannedHttpServer(_ => CannedHttpServer.Response("200 OK", "text/html", "<html>welcome to nginx</html>"));
        using var client = new TrcClient(other.Address, Token);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => client.ListOrgsAsync());
        Assert.Equal(HttpStatusCode.OK, e.StatusCode);
        Assert.Contains("instead of JSON", e.Message);
    }

    [Fact]
    public async Task A_reason_phrase_that_echoes_the_token_is_redacted()
    {
        await using var proxy = new CannedHttpServer(_ => CannedHttpServer.Response($"502 Bad Gateway for Bearer {Token}", "text/plain", "upstream down"));
        using var client = new TrcClient(proxy.Address, Token);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => client.ListOrgsAsync());
        Assert.Contains("HTTP 502 Bad Gateway for Bearer [token]", e.Message);
        Assert.DoesNotContain("SECRET", e.ToString());
    }

    [Fact]
    public async Task A_problem_detail_that_echoes_the_token_is_redacted()
    {
        await using var proxy = new CannedHttpServer(_ => CannedHttpServer.Response("400 Bad Request", "application/problem+json",
            $$"""{"type":"x","title":"Bad","status":400,"detail":"bad header Bearer {{Token}}","code":"invalid_json","field":null}"""));
        using var client = new TrcClient(proxy.Address, Token);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => client.ListOrgsAsync());
        Assert.Equal("bad header Bearer [token]", e.Message);
    }

    [Theory]
    [InlineData("text/html", "<html><title>Welcome to the hotel wifi</title></html>")]
    [InlineData("text/plain", "not a secrets file\n")]
    public async Task Rendering_secrets_refuses_a_200_that_is_not_a_secrets_file(string contentType, string body)
    {
        await using var portal = new CannedHttpServer(_ => CannedHttpServer.Response("200 OK", contentType, body));
        using var client = new TrcClient(portal.Address, Token);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => client.RenderSecretsAsync("acme", "shop", "prod"));
        Assert.Contains("not a secrets file", e.Message);
        Assert.Contains(contentType, e.Message);
    }

    [Fact]
    public async Task Rendering_secrets_returns_a_secrets_file_byte_for_byte()
    {
        const string file = "# TRC_SECRETS_V1\nA=1\n";
        await using var server = new CannedHttpServer(_ => CannedHttpServer.Response("200 OK", "text/plain; charset=utf-8", file));
        using var client = new TrcClient(server.Address, Token);
        Assert.Equal(System.Text.Encoding.UTF8.GetBytes(file), await client.RenderSecretsAsync("acme", "shop", "prod"));
    }

    [Fact]
    public async Task A_redirect_is_not_followed_and_names_the_new_address()
    {
        await using var old = new CannedHttpServer(_ => CannedHttpServer.Response("301 Moved Permanently", "text/plain", "moved",
            "Location: https://trc.example.com/v1/orgs\r\n"));
        using var client = new TrcClient(old.Address, Token);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => client.ListOrgsAsync());
        Assert.Equal(HttpStatusCode.MovedPermanently, e.StatusCode);
        Assert.Contains("https://trc.example.com/v1/orgs", e.Message);
    }

    [Fact]
    public async Task A_503_carries_retry_after()
    {
        await using var busy = new CannedHttpServer(_ => CannedHttpServer.Response("503 Service Unavailable", "application/problem+json",
            """{"type":"urn:trc:problem:not_ready","title":"Service unavailable","status":503,"detail":"try again","code":"not_ready","field":null}""",
            "Retry-After: 3\r\n"));
        using var client = new TrcClient(busy.Address, Token);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => client.ListOrgsAsync());
        Assert.Equal("not_ready", e.Code);
        Assert.Equal(TimeSpan.FromSeconds(3), e.RetryAfter);
        Assert.True(e.IsTransient);
    }

    [Fact]
    public async Task An_unreachable_server_is_a_connection_exception_naming_the_url()
    {
        var url = new Uri($"http://127.0.0.1:{ClosedPort()}/");
        using var client = new TrcClient(url, Token);
        var e = await Assert.ThrowsAsync<TrcConnectionException>(() => client.WhoAmIAsync());
        Assert.Contains($"cannot reach the trc server at {url}", e.Message);
        Assert.DoesNotContain("SECRET", e.ToString());
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out_as_a_connection_exception()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var url = new Uri($"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/");
        using var client = new TrcClient(url, Token, options: new TrcClientOptions { RequestTimeout = TimeSpan.FromMilliseconds(300) });
        var e = await Assert.ThrowsAsync<TrcConnectionException>(() => client.WhoAmIAsync());
        Assert.Contains("did not answer", e.Message);
    }

    [Fact]
    public async Task Cancellation_is_not_disguised_as_a_connection_failure()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        using var client = new TrcClient(new Uri($"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/"), Token);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.WhoAmIAsync(cts.Token));
    }

    [Fact]
    public async Task A_path_prefix_in_the_base_url_is_kept()
    {
        await using var prefixed = new CannedHttpServer(request => CannedHttpServer.Response("200 OK", "application/json",
            request.StartsWith("GET /trc/v1/whoami ", StringComparison.Ordinal)
                ? """{"token_id":"00000000-0000-0000-0000-000000000001","token_name":"t","role":"viewer","org":"acme"}"""
                : "{}"));
        using var client = new TrcClient(new Uri(prefixed.Address, "trc/"), Token);
        Assert.Equal("acme", (await client.WhoAmIAsync()).Org);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("line\nbreak")]
    public void A_token_that_cannot_travel_in_a_header_is_refused_without_quoting_it(string token)
    {
        var e = Assert.Throws<ArgumentException>(() => new TrcClient(new Uri("http://127.0.0.1:1/"), token));
        Assert.Equal("token", e.ParamName);
        if (token.Length > 0)
        {
            Assert.DoesNotContain(token, e.Message);
        }
    }

    [Theory]
    [InlineData("127.0.0.1:7080")]
    [InlineData("ftp://example.com")]
    [InlineData("not a url")]
    public void A_server_url_that_is_not_http_is_refused(string url)
    {
        Assert.Throws<ArgumentException>(() => new TrcClient(url, Token));
    }

    [Fact]
    public async Task An_invalid_idempotency_key_is_refused_before_sending()
    {
        using var client = new TrcClient(new Uri($"http://127.0.0.1:{ClosedPort()}/"), Token);
        await Assert.ThrowsAsync<ArgumentException>(() => client.CreateAppAsync("acme", "shop", idempotencyKey: "has space"));
    }

    /// <summary>A port nothing listens on: bound, then released.</summary>
    internal static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
