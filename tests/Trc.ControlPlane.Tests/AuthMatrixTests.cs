using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Tests;

/// <summary>
/// Every documented endpoint, called with no token, a revoked token, a token of too low a role,
/// another org's token and the node token: 401, 401, 403, 404 and 403, where the 404 for another
/// org's existing object is byte-for-byte the 404 for a missing one, and the node token's 403 is
/// the same whatever it asks about.
/// </summary>
public abstract class AuthMatrixTests(AuthMatrixTests.World world)
{
    /// <summary>Who may call an endpoint.</summary>
    public enum Access
    {
        /// <summary>Any valid token (answers about the caller itself).</summary>
        Self,
        Viewer,
        Deployer,
        Owner,
        Admin,

        /// <summary>Node agents (the shared node token) and the admin.</summary>
        Node,
    }

    /// <summary>An endpoint: who may call it and a body that would be valid.</summary>
    public sealed record Endpoint(string Method, string Template, Access Access, string? Body = null);

    /// <summary>Every endpoint of the API. A test checks this list against the OpenAPI document.</summary>
    public static readonly Endpoint[] All =
    [
        new("GET", "/v1/whoami", Access.Self),
        new("POST", "/v1/orgs", Access.Admin, """{"name":"matrix-new"}"""),
        new("GET", "/v1/orgs", Access.Self),
        new("GET", "/v1/orgs/{org}", Access.Viewer),
        new("GET", "/v1/orgs/{org}/quotas", Access.Viewer),
        new("PUT", "/v1/orgs/{org}/quotas", Access.Admin, """{"memory_bytes":1073741824,"instances":4,"routes":2,"ipv4_addresses":1}"""),
        new("POST", "/v1/orgs/{org}/tokens", Access.Owner, """{"name":"x","role":"viewer"}"""),
        new("GET", "/v1/orgs/{org}/tokens", Access.Owner),
        new("DELETE", "/v1/orgs/{org}/tokens/{id}", Access.Owner),
        new("POST", "/v1/orgs/{org}/apps", Access.Deployer, """{"name":"other"}"""),
        new("GET", "/v1/orgs/{org}/apps", Access.Viewer),
        new("GET", "/v1/orgs/{org}/apps/{app}", Access.Viewer),
        new("POST", "/v1/orgs/{org}/apps/{app}/envs", Access.Deployer, """{"name":"qa"}"""),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs", Access.Viewer),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}", Access.Viewer),
        new("POST", "/v1/orgs/{org}/apps/{app}/envs/{env}/releases", Access.Deployer,
            $$"""{"image":"{{Setup.Image}}","manifest":"app = \"shop\"\n[processes.web]\nmemory = \"256Mi\"\nports = [8443, 5432]\n"}"""),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/releases", Access.Viewer),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/releases/{number}", Access.Viewer),
        new("POST", "/v1/orgs/{org}/apps/{app}/envs/{env}/routes", Access.Deployer, """{"hostname":"matrix-new.example.com","backend_port":8443}"""),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/routes", Access.Viewer),
        new("DELETE", "/v1/orgs/{org}/apps/{app}/envs/{env}/routes/{hostname}/{port}", Access.Deployer),
        new("PUT", "/v1/orgs/{org}/apps/{app}/envs/{env}/ipv4", Access.Deployer),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/ipv4", Access.Viewer),
        new("DELETE", "/v1/orgs/{org}/apps/{app}/envs/{env}/ipv4", Access.Deployer),
        new("PUT", "/v1/orgs/{org}/apps/{app}/envs/{env}/secrets", Access.Deployer, """{"set":{"B":"2"}}"""),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/secrets", Access.Viewer),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/secrets/render", Access.Owner),
        new("POST", "/v1/orgs/{org}/apps/{app}/envs/{env}/volumes", Access.Deployer, """{"name":"other","size":"1Gi"}"""),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/volumes", Access.Viewer),
        new("DELETE", "/v1/orgs/{org}/apps/{app}/envs/{env}/volumes/{name}", Access.Deployer),
        new("GET", "/v1/orgs/{org}/events", Access.Viewer),
        new("GET", "/v1/orgs/{org}/events/stream", Access.Viewer),
        new("GET", "/v1/events", Access.Admin),
        new("GET", "/v1/events/stream", Access.Admin),
        new("GET", "/v1/edge/routes", Access.Admin),
        new("POST", "/v1/nodes", Access.Node, """{"name":"matrix-node","memory_bytes":1073741824,"cpus":2,"driver":"fake","acceleration":"none"}"""),
        new("GET", "/v1/nodes", Access.Admin),
        new("GET", "/v1/nodes/{node}", Access.Node),
        new("POST", "/v1/nodes/{node}/heartbeat", Access.Node, """{"memory_bytes":1073741824,"cpus":2,"instances":[]}"""),
        new("GET", "/v1/nodes/{node}/instances", Access.Node),
        new("PUT", "/v1/nodes/{node}/state", Access.Admin, """{"state":"active"}"""),
        new("GET", "/v1/nodes/{node}/instances/{instance}/secrets", Access.Node),
        new("POST", "/v1/nodes/{node}/instances/{instance}/state", Access.Node, """{"state":"starting"}"""),
        new("POST", "/v1/nodes/{node}/logs", Access.Node, """{"lines":[{"instance":"{instance}","stream":"stdout","time":"2025-01-01T00:00:00Z","line":"hello"}]}"""),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/instances", Access.Viewer),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/logs", Access.Viewer),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/logs/stream", Access.Viewer),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/deployments", Access.Viewer),
        new("GET", "/v1/orgs/{org}/apps/{app}/envs/{env}/deployments/{number}", Access.Viewer),
        new("POST", "/v1/orgs/{org}/apps/{app}/envs/{env}/rollback", Access.Deployer, """{"release":1}"""),
        new("POST", "/v1/orgs/{org}/apps/{app}/envs/{env}/restart", Access.Deployer),
        new("PUT", "/v1/orgs/{org}/apps/{app}/envs/{env}/scale", Access.Deployer, """{"process":"web","count":1}"""),
    ];

    public static TheoryData<string> Keys() => new(All.Select(e => $"{e.Method} {e.Template}"));

    private static Endpoint Find(string key) => All.Single(e => $"{e.Method} {e.Template}" == key);

    /// <summary>
    /// Org A with app shop, env prod, a release, a route, a volume and secrets; tokens of every role
    /// in A, a revoked one, and an owner of org B. Built once per server.
    /// </summary>
    public abstract class World : IAsyncLifetime
    {
        protected abstract Backend Backend { get; }

        public TestServer Server { get; private set; } = null!;

        public string OrgA { get; } = Setup.OrgName("a");

        public string OrgB { get; } = Setup.OrgName("b");

        public Dictionary<string, HttpClient> Tokens { get; } = [];

        public Guid TokenIdInA { get; private set; }

        public string Hostname { get; } = $"matrix-{Guid.NewGuid().ToString("N")[..8]}.example.com";

        public async Task InitializeAsync()
        {
            Server = await TestServer.StartAsync(Backend);
            var owner = await Setup.ShopAsync(Server, OrgA);
            await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(OrgA, "shop", "prod"), Setup.Route(Hostname)).Expect(HttpStatusCode.Created);
            await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Volumes(OrgA, "shop", "prod"), new CreateVolumeRequest("data", "1Gi")).Expect(HttpStatusCode.Created);
            await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Ipv4(OrgA, "shop", "prod")).Expect(HttpStatusCode.OK);
            await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Secrets(OrgA, "shop", "prod"), new SetSecretsRequest(new Dictionary<string, System.Text.Json.JsonElement> { ["A"] = System.Text.Json.JsonSerializer.SerializeToElement("1") })).Expect(HttpStatusCode.OK);
            Tokens["owner"] = owner;
            Tokens["deployer"] = await Server.TokenAsync(OrgA, Roles.Deployer);
            Tokens["viewer"] = await Server.TokenAsync(OrgA, Roles.Viewer);
            Tokens["admin"] = Server.Admin;
            var revoked = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Tokens(OrgA), new CreateTokenRequest("revoked", Roles.Owner)).Json<TokenCreatedView>(HttpStatusCode.Created);
            await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Token(OrgA, revoked.Id)).Expect(HttpStatusCode.NoContent);
            Tokens["revoked"] = Server.Client(revoked.Token);
            Tokens["none"] = Server.Client(null);
            Tokens["garbage"] = Server.Client("trc_" + new string('0', 32) + "_" + new string('x', 43));
            TokenIdInA = (await TestServer.Send(Tokens["viewer"], HttpMethod.Get, ApiPaths.WhoAmI).Json<WhoAmIView>()).TokenId;
            Tokens["otherOrg"] = await Setup.ShopAsync(Server, OrgB);
            Tokens["node"] = Server.Node;
            // A node runs both orgs' instances; the matrix starts once the scheduler is done, so
            // only the calls under test move the event log.
            await NodeAgent.RegisterAsync(Server);
            Instance = (await NodeAgent.WaitForInstancesAsync(owner, OrgA, "prod", i => i.Count == 1, "org A's instance"))[0];
            await NodeAgent.WaitForInstancesAsync(Tokens["otherOrg"], OrgB, "prod", i => i.Count == 1, "org B's instance");
        }

        /// <summary>Org A's instance, on the node.</summary>
        public InstanceView Instance { get; private set; } = null!;

        public async Task DisposeAsync() => await Server.DisposeAsync();

        /// <summary>The template with org A's existing objects (or, when <paramref name="missing"/>, names that exist nowhere).</summary>
        public string Fill(string template, string org, bool missing = false) => template
            .Replace("{org}", Uri.EscapeDataString(org), StringComparison.Ordinal)
            .Replace("{app}", missing ? "nope" : "shop", StringComparison.Ordinal)
            .Replace("{env}", missing ? "nope" : "prod", StringComparison.Ordinal)
            .Replace("{number}", missing ? "77" : "1", StringComparison.Ordinal)
            .Replace("{hostname}", missing ? "nope.example.com" : Hostname, StringComparison.Ordinal)
            .Replace("{port}", "443", StringComparison.Ordinal)
            .Replace("{name}", missing ? "nope" : "data", StringComparison.Ordinal)
            .Replace("{id}", (missing ? Guid.NewGuid() : TokenIdInA).ToString("D"), StringComparison.Ordinal)
            .Replace("{node}", (missing ? Guid.NewGuid() : Instance.NodeId).ToString("D"), StringComparison.Ordinal)
            .Replace("{instance}", (missing ? Guid.NewGuid() : Instance.Id).ToString("D"), StringComparison.Ordinal);
    }

    private async Task<(HttpStatusCode Status, string Body, string? ContentType)> CallAsync(HttpClient client, Endpoint e, string path)
    {
        var request = new HttpRequestMessage(new HttpMethod(e.Method), path);
        if (e.Body is not null)
        {
            request.Content = new StringContent(world.Fill(e.Body, world.OrgA), Encoding.UTF8, "application/json");
        }
        // Streams answer headers first; a refusal has a body and ends at once.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        var body = response.Content.Headers.ContentType?.MediaType == "text/event-stream" ? "" : await response.Content.ReadAsStringAsync(cts.Token);
        response.Dispose();
        return (response.StatusCode, body, response.Content.Headers.ContentType?.MediaType);
    }

    private async Task<ProblemView> RefusedAsync(HttpClient client, Endpoint e, string path, HttpStatusCode status, string code)
    {
        var (got, body, contentType) = await CallAsync(client, e, path);
        Assert.True(got == status, $"{e.Method} {path}: expected {(int)status}, got {(int)got}: {body}");
        Assert.Equal("application/problem+json", contentType);
        var problem = System.Text.Json.JsonSerializer.Deserialize<ProblemView>(body, ApiJson.ClientOptions)!;
        Assert.Equal(code, problem.Code);
        return problem;
    }

    [Fact]
    public async Task The_matrix_covers_every_documented_operation()
    {
        var doc = JsonNode.Parse(await OpenApiTests.ServedAsync(world.Server))!;
        var documented = doc["paths"]!.AsObject()
            .SelectMany(p => p.Value!.AsObject().Select(m => $"{m.Key.ToUpperInvariant()} {p.Key}"))
            .Order().ToList();
        Assert.Equal(documented, All.Select(e => $"{e.Method} {e.Template}").Order());
    }

    [Theory]
    [MemberData(nameof(Keys))]
    public async Task Without_a_valid_token_every_endpoint_is_401(string key)
    {
        var e = Find(key);
        var head = await HeadAsync();
        foreach (var who in new[] { "none", "revoked", "garbage" })
        {
            var path = world.Fill(e.Template, world.OrgA);
            var problem = await RefusedAsync(world.Tokens[who], e, path, HttpStatusCode.Unauthorized, "unauthenticated");
            // Existing or not, the answer is the same.
            var missing = await RefusedAsync(world.Tokens[who], e, world.Fill(e.Template, "no-such-org", missing: true), HttpStatusCode.Unauthorized, "unauthenticated");
            Assert.Equal(problem, missing);
        }
        Assert.Equal(head, await HeadAsync());
    }

    [Theory]
    [MemberData(nameof(Keys))]
    public async Task Another_orgs_token_cannot_tell_an_existing_object_from_a_missing_one(string key)
    {
        var e = Find(key);
        var head = await HeadAsync();
        var other = world.Tokens["otherOrg"];
        var path = world.Fill(e.Template, world.OrgA);
        if (e.Access == Access.Self)
        {
            // Answers about the caller: nothing of org A may show.
            var (status, body, _) = await CallAsync(other, e, path);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.DoesNotContain(world.OrgA, body);
            return;
        }
        if (e.Access is Access.Admin or Access.Node)
        {
            var forbidden = await RefusedAsync(other, e, path, HttpStatusCode.Forbidden, "forbidden");
            var forbiddenMissing = await RefusedAsync(other, e, world.Fill(e.Template, "no-such-org", missing: true), HttpStatusCode.Forbidden, "forbidden");
            Assert.Equal(forbidden, forbiddenMissing);
            Assert.Equal(head, await HeadAsync());
            return;
        }
        var existing = await RefusedAsync(other, e, path, HttpStatusCode.NotFound, "not_found");
        // Org A's objects, org A missing objects, and an org that does not exist at all: one answer,
        // once the org's name (which the caller sent) is set aside.
        var missingInA = await RefusedAsync(other, e, world.Fill(e.Template, world.OrgA, missing: true), HttpStatusCode.NotFound, "not_found");
        var missingOrg = await RefusedAsync(other, e, world.Fill(e.Template, "no-such-org", missing: true), HttpStatusCode.NotFound, "not_found");
        Assert.Equal(existing, missingInA);
        Assert.Equal(existing with { Detail = existing.Detail!.Replace(world.OrgA, "ORG", StringComparison.Ordinal) },
            missingOrg with { Detail = missingOrg.Detail!.Replace("no-such-org", "ORG", StringComparison.Ordinal) });
        Assert.Equal(head, await HeadAsync());
    }

    [Theory]
    [MemberData(nameof(Keys))]
    public async Task A_token_below_the_needed_role_is_403_and_changes_nothing(string key)
    {
        var e = Find(key);
        var below = e.Access switch
        {
            Access.Deployer => new[] { "viewer" },
            Access.Owner => ["viewer", "deployer"],
            Access.Admin => ["viewer", "deployer", "owner"],
            Access.Node => ["viewer", "deployer", "owner"],
            _ => [],
        };
        var path = world.Fill(e.Template, world.OrgA);
        var head = await HeadAsync();
        foreach (var who in below)
        {
            var problem = await RefusedAsync(world.Tokens[who], e, path, HttpStatusCode.Forbidden, "forbidden");
            Assert.False(string.IsNullOrWhiteSpace(problem.Detail));
        }
        Assert.Equal(head, await HeadAsync());
        // Reads are open to every role of the org.
        if (e.Access is Access.Viewer or Access.Self && e.Method == "GET")
        {
            var (status, body, _) = await CallAsync(world.Tokens["viewer"], e, path);
            Assert.True(status == HttpStatusCode.OK, $"{key} as viewer: {(int)status} {body}");
        }
    }

    [Theory]
    [MemberData(nameof(Keys))]
    public async Task The_node_token_may_call_the_node_endpoints_and_gets_one_403_for_everything_else(string key)
    {
        var e = Find(key);
        var node = world.Tokens["node"];
        var path = world.Fill(e.Template, world.OrgA);
        if (e.Access == Access.Node)
        {
            var (status, body, _) = await CallAsync(node, e, path);
            Assert.True((int)status is >= 200 and < 300, $"{key} as the node: {(int)status} {body}");
            return;
        }
        var head = await HeadAsync();
        var existing = await RefusedAsync(node, e, path, HttpStatusCode.Forbidden, "forbidden");
        var missing = await RefusedAsync(node, e, world.Fill(e.Template, "no-such-org", missing: true), HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(existing, missing);
        Assert.Equal(head, await HeadAsync());
    }

    /// <summary>The newest event id a request caused: a refused call must not move it.</summary>
    private Task<long> HeadAsync() => TestServer.RequestHeadAsync(world.Server.Admin);
}

public sealed class SqliteAuthWorld : AuthMatrixTests.World
{
    protected override Backend Backend => Backend.Sqlite;
}

public sealed class PostgresAuthWorld : AuthMatrixTests.World
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class SqliteAuthMatrixTests(SqliteAuthWorld world) : AuthMatrixTests(world), IClassFixture<SqliteAuthWorld>;

public sealed class PostgresAuthMatrixTests(PostgresAuthWorld world) : AuthMatrixTests(world), IClassFixture<PostgresAuthWorld>;
