using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
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
    private readonly string _dir;
    private readonly TestSchema? _schema;

    private TestServer(ServerHost host, string dir, TestSchema? schema, ServerOptions options)
    {
        Host = host;
        _dir = dir;
        _schema = schema;
        Options = options;
        Admin = Client(host.AdminToken ?? File.ReadAllText(host.AdminTokenFile).Trim());
    }

    public ServerHost Host { get; }

    public ServerOptions Options { get; }

    /// <summary>A client with the admin token.</summary>
    public HttpClient Admin { get; }

    public static async Task<TestServer> StartAsync(Backend backend, Func<ServerOptions, ServerOptions>? configure = null)
    {
        var dir = Directory.CreateTempSubdirectory("trc-server-").FullName;
        var schema = backend == Backend.Postgres ? await TestPostgres.CreateSchemaAsync() : null;
        var options = new ServerOptions
        {
            Database = schema?.ConnectionString ?? "sqlite:" + Path.Combine(dir, "trc.db"),
            Listen = "http://127.0.0.1:0",
            DataDirectory = Path.Combine(dir, "data"),
            LogLevel = LogLevel.Warning,
            Policy = ClusterPolicy.Default with
            {
                AllowedPorts = new HashSet<int> { 5432, 8443, 2222 },
                Ipv4Pool = [IPAddress.Parse("203.0.113.10"), IPAddress.Parse("203.0.113.11")],
            },
        };
        options = configure?.Invoke(options) ?? options;
        try
        {
            var host = await ServerHost.StartAsync(options, default);
            return new TestServer(host, dir, schema, options);
        }
        catch
        {
            if (schema is not null)
            {
                await schema.DisposeAsync();
            }
            Directory.Delete(dir, recursive: true);
            throw;
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

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        if (_schema is not null)
        {
            await _schema.DisposeAsync();
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
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
