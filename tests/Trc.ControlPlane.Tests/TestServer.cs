using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Tests;

/// <summary>Which store a test server runs on.</summary>
public enum Backend
{
    Sqlite,
    Postgres,
}

/// <summary>
/// A real <c>trc server</c> on 127.0.0.1 with a free port, on SQLite (a temp file) or PostgreSQL (a
/// schema of its own), and HTTP helpers that speak its JSON.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly TestControlPlane _server;

    private TestServer(TestControlPlane server)
    {
        _server = server;
        Admin = Client(server.AdminToken);
        Node = Client(server.NodeToken);
    }

    public ServerHost Host => _server.Host;

    public ServerOptions Options => _server.Options;

    /// <summary>A client with the admin token.</summary>
    public HttpClient Admin { get; }

    /// <summary>A client with the shared node token (what agents present).</summary>
    public HttpClient Node { get; }

    /// <summary>The shared node token.</summary>
    public string NodeToken => _server.NodeToken;

    public static async Task<TestServer> StartAsync(Backend backend, Func<ServerOptions, ServerOptions>? configure = null) =>
        new(await TestControlPlane.StartAsync(backend == Backend.Postgres, configure));

    /// <summary>
    /// The id of the newest event a request caused: the scheduler's own (a node declared lost, an
    /// instance placed) come in the background and are left out. Tests compare it before and after
    /// calls that must record nothing.
    /// </summary>
    public static async Task<long> RequestHeadAsync(HttpClient admin)
    {
        var scheduler = Core.Domain.DomainIds.V5(Core.Domain.DomainIds.Org("trc-platform"), "scheduler");
        long cursor = 0, head = 0;
        while (true)
        {
            var page = await Send(admin, HttpMethod.Get, ApiPaths.Events + $"?after={cursor}&limit=1000").Json<EventPageView>();
            if (page.Events.Count == 0)
            {
                return head;
            }
            head = page.Events.LastOrDefault(e => e.ActorId != scheduler)?.Id ?? head;
            cursor = page.Events[^1].Id;
        }
    }

    /// <summary>A client presenting <paramref name="token"/> (or none).</summary>
    public HttpClient Client(string? token)
    {
        var client = new HttpClient { BaseAddress = Host.Address, Timeout = TimeSpan.FromSeconds(60) };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return client;
    }

    /// <summary>Creates an org and an owner token for it; returns a client with that token.</summary>
    public async Task<HttpClient> NewOrgAsync(string org, string role = Roles.Owner)
    {
        await Send(Admin, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest(org)).Expect(HttpStatusCode.Created);
        return await TokenAsync(org, role);
    }

    /// <summary>A client with a new token of <paramref name="role"/> in the org (made with the admin token).</summary>
    public async Task<HttpClient> TokenAsync(string org, string role)
    {
        var token = await Send(Admin, HttpMethod.Post, ApiPaths.Tokens(org), new CreateTokenRequest(role + "-token", role)).Json<TokenCreatedView>(HttpStatusCode.Created);
        return Client(token.Token);
    }

    public static ApiCall Send(HttpClient client, HttpMethod method, string path, object? body = null, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body is string s ? s : JsonSerializer.Serialize(body, body.GetType(), ApiJson.ClientOptions), Encoding.UTF8, "application/json");
        }
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return new ApiCall(client.SendAsync(request));
    }

    public ValueTask DisposeAsync()
    {
        Admin.Dispose();
        Node.Dispose();
        return _server.DisposeAsync();
    }
}

/// <summary>An HTTP call in flight, with assertions on its outcome.</summary>
public sealed class ApiCall(Task<HttpResponseMessage> response)
{
    /// <summary>The response, whatever its status.</summary>
    public Task<HttpResponseMessage> Response => response;

    public async Task<HttpResponseMessage> Expect(HttpStatusCode status)
    {
        var r = await response;
        if (r.StatusCode != status)
        {
            Assert.Fail($"expected {(int)status} {status}, got {(int)r.StatusCode} {r.StatusCode}: {await r.Content.ReadAsStringAsync()}");
        }
        return r;
    }

    public async Task<T> Json<T>(HttpStatusCode status = HttpStatusCode.OK)
    {
        var r = await Expect(status);
        return (await r.Content.ReadFromJsonAsync<T>(ApiJson.ClientOptions))!;
    }

    /// <summary>Expects a problem with this status (and code, when given).</summary>
    public async Task<ProblemView> Problem(HttpStatusCode status, string? code = null)
    {
        var r = await Expect(status);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var problem = (await r.Content.ReadFromJsonAsync<ProblemView>(ApiJson.ClientOptions))!;
        if (code is not null)
        {
            Assert.True(problem.Code == code, $"expected code {code}, got {problem.Code}: {problem.Detail}");
        }
        return problem;
    }
}
