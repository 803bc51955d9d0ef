using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trc.Core.Api;

namespace Trc.ControlPlane.Tests;

public sealed class OpenApiTests(SqliteServer fixture) : IClassFixture<SqliteServer>
{
    private static readonly string CheckedIn = Path.Combine(TestPostgres.RepositoryRoot, "docs", "api", "openapi.json");

    /// <summary>The served document, indented, with a final newline: the checked-in form.</summary>
    public static async Task<string> ServedAsync(TestServer server)
    {
        var response = await server.Client(null).GetAsync(ApiPaths.OpenApi);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var node = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    [Fact]
    public async Task The_checked_in_openapi_document_is_the_served_one()
    {
        var served = await ServedAsync(fixture.Server);
        if (Environment.GetEnvironmentVariable("TRC_UPDATE_SNAPSHOTS") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(CheckedIn)!);
            await File.WriteAllTextAsync(CheckedIn, served);
        }
        Assert.True(File.Exists(CheckedIn), $"{CheckedIn} is missing: run TRC_UPDATE_SNAPSHOTS=1 dotnet test tests/Trc.ControlPlane.Tests --filter OpenApi");
        var checkedIn = await File.ReadAllTextAsync(CheckedIn);
        Assert.True(checkedIn == served,
            "docs/api/openapi.json differs from what the server serves: review the API change, then regenerate it with "
            + "TRC_UPDATE_SNAPSHOTS=1 dotnet test tests/Trc.ControlPlane.Tests --filter OpenApi");
    }

    [Fact]
    public async Task Every_operation_is_named_and_documents_its_errors_as_problems()
    {
        var doc = JsonNode.Parse(await ServedAsync(fixture.Server))!;
        var operations = doc["paths"]!.AsObject().SelectMany(p => p.Value!.AsObject().Select(m => (Path: p.Key, Method: m.Key, Op: m.Value!))).ToList();
        Assert.True(operations.Count >= 30, $"only {operations.Count} operations");
        Assert.All(operations, o => Assert.False(string.IsNullOrEmpty((string?)o.Op["operationId"]), $"{o.Method} {o.Path} has no operationId"));
        Assert.Equal(operations.Count, operations.Select(o => (string?)o.Op["operationId"]).Distinct().Count());
        Assert.All(operations, o => Assert.True(o.Op["responses"]?["default"]?["content"]?["application/problem+json"] is not null, $"{o.Method} {o.Path} does not document its problems"));
        Assert.All(operations, o => Assert.True(o.Op["security"] is not null || doc["security"] is not null, $"{o.Method} {o.Path} does not say it needs a token"));
    }
}

/// <summary>First start and restarts: the admin token.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class BootstrapTests
{
    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task First_start_writes_the_admin_token_for_the_operator_only_and_a_restart_keeps_it(Backend backend)
    {
        var dir = Directory.CreateTempSubdirectory("trc-boot-").FullName;
        var schema = backend == Backend.Postgres ? await TestPostgres.CreateSchemaAsync() : null;
        try
        {
            var database = schema?.ConnectionString ?? "sqlite:" + Path.Combine(dir, "trc.db");
            ServerOptions Options(ServerOptions o) => o with { Database = database, DataDirectory = Path.Combine(dir, "data") };

            string token, nodeToken;
            await using (var first = await TestServer.StartAsync(backend, Options))
            {
                var file = first.Host.AdminTokenFile;
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
                token = File.ReadAllText(file).Trim();
                Assert.Equal(token, first.Host.AdminToken);
                Assert.Equal("admin", (await TestServer.Send(first.Admin, HttpMethod.Get, ApiPaths.WhoAmI).Json<WhoAmIView>()).Role);
                await TestServer.Send(first.Admin, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest("kept")).Expect(HttpStatusCode.Created);

                // The shared node token sits beside it, as private, and may only do what nodes do.
                Assert.Equal(Path.Combine(Path.GetDirectoryName(file)!, "node-token"), first.Host.NodeTokenFile);
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(first.Host.NodeTokenFile));
                nodeToken = File.ReadAllText(first.Host.NodeTokenFile).Trim();
                Assert.Equal(nodeToken, first.Host.NodeToken);
                Assert.NotEqual(token, nodeToken);
                await TestServer.Send(first.Client(nodeToken), HttpMethod.Get, ApiPaths.Orgs).Problem(HttpStatusCode.Forbidden, "forbidden");
                await TestServer.Send(first.Client(nodeToken), HttpMethod.Post, NodeApiPaths.Nodes, NodeAgent.Request("boot-1")).Expect(HttpStatusCode.OK);
            }

            await using (var second = await TestServer.StartAsync(backend, Options))
            {
                // No new token: the one written on first start still works, and is the only admin token.
                Assert.Null(second.Host.AdminToken);
                Assert.Equal(token, File.ReadAllText(second.Host.AdminTokenFile).Trim());
                Assert.Equal("admin", (await TestServer.Send(second.Client(token), HttpMethod.Get, ApiPaths.WhoAmI).Json<WhoAmIView>()).Role);
                Assert.Single((await TestServer.Send(second.Client(token), HttpMethod.Get, ApiPaths.Orgs).Json<ListView<OrgView>>()).Items, o => o.Name == "kept");
                var created = await TestServer.Send(second.Client(token), HttpMethod.Get, ApiPaths.Events + "?type=token.created&limit=1000").Json<EventPageView>();
                Assert.Single(created.Events, e => e.Payload.GetProperty("role").GetString() == "admin");
                Assert.Single(created.Events, e => e.Payload.GetProperty("role").GetString() == "node");
                Assert.Null(second.Host.NodeToken);
                await TestServer.Send(second.Client(nodeToken), HttpMethod.Post, NodeApiPaths.Nodes, NodeAgent.Request("boot-1")).Expect(HttpStatusCode.OK);
            }
        }
        finally
        {
            if (schema is not null)
            {
                await schema.DisposeAsync();
            }
            Directory.Delete(dir, recursive: true);
        }
    }
}

/// <summary>Several servers on one PostgreSQL, as in production.</summary>
public sealed class ReplicaTests
{
    [Fact]
    public async Task Two_servers_on_one_database_serve_the_same_state_and_share_the_master_key()
    {
        var schema = await TestPostgres.CreateSchemaAsync();
        var dir = Directory.CreateTempSubdirectory("trc-replicas-").FullName;
        try
        {
            ServerOptions First(ServerOptions o) => o with { Database = schema.ConnectionString, DataDirectory = Path.Combine(dir, "a") };
            await using var a = await TestServer.StartAsync(Backend.Postgres, First);
            var org = Setup.OrgName();
            var ownerA = await Setup.ShopAsync(a, org);
            await TestServer.Send(ownerA, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"),
                new SetSecretsRequest(new Dictionary<string, System.Text.Json.JsonElement> { ["DB"] = System.Text.Json.JsonSerializer.SerializeToElement("s3cret") })).Expect(HttpStatusCode.OK);

            // A second server without the first one's master key must not start: it would seal
            // new secrets with a key the first cannot open, and cannot open the stored ones.
            var refused = await Assert.ThrowsAsync<ServerConfigException>(() =>
                TestServer.StartAsync(Backend.Postgres, o => o with { Database = schema.ConnectionString, DataDirectory = Path.Combine(dir, "b") }));
            Assert.Contains("master key", refused.Message);
            Assert.False(File.Exists(Path.Combine(dir, "b", "master.key")));
            var otherKey = Path.Combine(dir, "other.key");
            Trc.Core.Crypto.MasterKey.CreateFile(otherKey).Dispose();
            await Assert.ThrowsAsync<ServerConfigException>(() =>
                TestServer.StartAsync(Backend.Postgres, o => o with { Database = schema.ConnectionString, DataDirectory = Path.Combine(dir, "c"), MasterKeyFile = otherKey }));

            // With the same key file it starts, serves what the first wrote, and the first sees its writes.
            await using var b = await TestServer.StartAsync(Backend.Postgres, o => o with
            {
                Database = schema.ConnectionString,
                DataDirectory = Path.Combine(dir, "b"),
                MasterKeyFile = Path.Combine(dir, "a", "master.key"),
                AdminTokenFile = a.Host.AdminTokenFile,
            });
            var ownerB = b.Client(ownerA.DefaultRequestHeaders.Authorization!.Parameter);
            var rendered = await (await TestServer.Send(ownerB, HttpMethod.Get, ApiPaths.SecretsRender(org, "shop", "prod")).Expect(HttpStatusCode.OK)).Content.ReadAsStringAsync();
            Assert.Contains("DB=s3cret", rendered);
            // Release 2 was the secrets change's rollout (the env had release 1 deployed).
            var release = await TestServer.Send(ownerB, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest)).Json<ReleaseView>(HttpStatusCode.Created);
            Assert.Equal(3, release.Number);
            // Read-your-writes holds across servers once the write has answered: the catalog is shared.
            var seenByA = await TestServer.Send(ownerA, HttpMethod.Get, ApiPaths.Env(org, "shop", "prod")).Json<EnvView>();
            Assert.Equal(3, seenByA.DeployedRelease);

            // Racing deploys through both servers: still exactly one winner.
            var raced = await Task.WhenAll(
                TestServer.Send(ownerA, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest, ExpectedRelease: 3)).Response,
                TestServer.Send(ownerB, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest, ExpectedRelease: 3)).Response);
            Assert.Single(raced, r => r.StatusCode == HttpStatusCode.Created);
            Assert.Single(raced, r => r.StatusCode == HttpStatusCode.Conflict);
        }
        finally
        {
            await schema.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_server_runs_as_the_application_role_of_the_runbook()
    {
        var schema = await TestPostgres.CreateSchemaAsync();
        var dir = Directory.CreateTempSubdirectory("trc-approle-").FullName;
        var role = "trc_app_" + schema.Name;
        try
        {
            // First start as the owner: migrations, projection tables, the admin token.
            ServerOptions AsOwner(ServerOptions o) => o with { Database = schema.ConnectionString, DataDirectory = dir };
            await using (var first = await TestServer.StartAsync(Backend.Postgres, AsOwner))
            {
                await TestServer.Send(first.Admin, HttpMethod.Get, ApiPaths.WhoAmI).Expect(HttpStatusCode.OK);
            }

            // The grants of docs/runbooks/control-plane.md, verbatim but for the names.
            await ExecuteAsync(schema.ConnectionString, $"""
                CREATE ROLE {role} LOGIN;
                GRANT USAGE, CREATE ON SCHEMA {schema.Name} TO {role};
                GRANT SELECT, INSERT ON events TO {role};
                GRANT SELECT ON event_id_origin, schema_migrations TO {role};
                GRANT SELECT, INSERT, UPDATE ON projection_checkpoints TO {role};
                GRANT SELECT, INSERT, UPDATE, DELETE ON cp_orgs, cp_tokens, cp_apps, cp_envs, cp_releases, cp_routes, cp_volumes, cp_ipv4, cp_nodes, cp_instances, cp_deployments, cp_scale TO {role};
                GRANT SELECT, INSERT ON secret_bundles TO {role};
                GRANT SELECT, INSERT, DELETE ON cp_logs TO {role};
                GRANT SELECT, INSERT, UPDATE ON cp_node_leases TO {role};
                """);
            var app = new Npgsql.NpgsqlConnectionStringBuilder(schema.ConnectionString) { Username = role, Pooling = false }.ConnectionString;
            await using var server = await TestServer.StartAsync(Backend.Postgres, o => o with { Database = app, DataDirectory = dir });
            var org = Setup.OrgName();
            var owner = await Setup.ShopAsync(server, org);
            await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route($"role-{Guid.NewGuid().ToString("N")[..8]}.example.com")).Expect(HttpStatusCode.Created);
            await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"),
                new SetSecretsRequest(new Dictionary<string, System.Text.Json.JsonElement> { ["K"] = System.Text.Json.JsonSerializer.SerializeToElement("v") })).Expect(HttpStatusCode.OK);
            Assert.Contains("K=v", await (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.SecretsRender(org, "shop", "prod")).Expect(HttpStatusCode.OK)).Content.ReadAsStringAsync());
            await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Route(org, "shop", "prod", (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Routes(org, "shop", "prod")).Json<ListView<RouteView>>()).Items[0].Hostname, 443)).Expect(HttpStatusCode.NoContent);

            // Nodes, scheduling, state reports, logs and their retention.
            var (_, instance) = await NodeAgent.RunningShopAsync(server, Setup.OrgName());
            await NodeAgent.ReportAsync(server, instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Running, "fd74:7263:0:1::5"));
            await TestServer.Send(server.Node, HttpMethod.Post, NodeApiPaths.NodeLogs(instance.NodeId),
                new LogBatchRequest([new LogLineRequest(instance.Id, "stdout", DateTimeOffset.UtcNow, "hello")])).Expect(HttpStatusCode.NoContent);
            await server.Host.LogSweeper.SweepAsync(default);

            // And it cannot rewrite history.
            var denied = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => ExecuteAsync(app, "DELETE FROM events"));
            Assert.Equal(Npgsql.PostgresErrorCodes.InsufficientPrivilege, denied.SqlState);
        }
        finally
        {
            Npgsql.NpgsqlConnection.ClearAllPools();
            await ExecuteAsync(schema.ConnectionString, $"DROP OWNED BY {role}; DROP ROLE IF EXISTS {role}");
            await schema.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
