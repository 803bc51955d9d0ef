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

            string token;
            await using (var first = await TestServer.StartAsync(backend, Options))
            {
                var file = first.Host.AdminTokenFile;
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
                token = File.ReadAllText(file).Trim();
                Assert.Equal(token, first.Host.AdminToken);
                Assert.Equal("admin", (await TestServer.Send(first.Admin, HttpMethod.Get, ApiPaths.WhoAmI).Json<WhoAmIView>()).Role);
                await TestServer.Send(first.Admin, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest("kept")).Expect(HttpStatusCode.Created);
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
