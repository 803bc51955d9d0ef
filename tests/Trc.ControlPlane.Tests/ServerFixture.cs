using System.Net;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Tests;

/// <summary>One real server per test class and backend; each test makes its own org.</summary>
public abstract class ServerFixture : IAsyncLifetime
{
    protected abstract Backend Backend { get; }

    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(Backend);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

public sealed class SqliteServer : ServerFixture
{
    protected override Backend Backend => Backend.Sqlite;
}

public sealed class PostgresServer : ServerFixture
{
    protected override Backend Backend => Backend.Postgres;
}

/// <summary>Helpers to build an org with an app, an env and a deployed release.</summary>
public static class Setup
{
    public const string Image = "registry.example.com/shop@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    public const string Manifest = """
        app = "shop"

        [processes.web]
        memory = "256Mi"
        ports = [8443, 5432]
        """;

    private static int _counter;

    /// <summary>A fresh org name.</summary>
    public static string OrgName(string prefix = "org") => $"{prefix}-{Interlocked.Increment(ref _counter)}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>An org with app "shop" and env "prod" (release 1 deployed when asked); returns the owner's client.</summary>
    public static async Task<HttpClient> ShopAsync(TestServer server, string org, bool deploy = true, params string[] envs)
    {
        var owner = await server.NewOrgAsync(org);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Apps(org), new CreateAppRequest("shop")).Expect(HttpStatusCode.Created);
        foreach (var env in envs.Length == 0 ? ["prod"] : envs)
        {
            await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Envs(org, "shop"), new CreateEnvRequest(env)).Expect(HttpStatusCode.Created);
            if (deploy)
            {
                await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", env), new DeployRequest(Image, Manifest)).Expect(HttpStatusCode.Created);
            }
        }
        return owner;
    }

    public static CreateRouteRequest Route(string hostname, int port = 443, string protocol = "tls_passthrough", int backend = 8443) =>
        new(hostname, backend, port, protocol);
}
