using System.Net;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Tests;

public abstract class OrgsAppsEnvsTests(ServerFixture fixture)
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task The_admin_creates_an_org_with_the_default_quotas_and_reads_it_back_at_once()
    {
        var name = Setup.OrgName();
        var org = await TestServer.Send(Server.Admin, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest(name)).Json<OrgView>(HttpStatusCode.Created);
        Assert.Equal(name, org.Name);
        Assert.Equal(ClusterPolicy.Default.DefaultQuotas, org.Quotas);
        Assert.Equal(Usage.None, org.Usage);
        Assert.Equal(org, await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.Org(name)).Json<OrgView>());
    }

    [Fact]
    public async Task An_org_name_is_unique_and_must_be_a_dns_label()
    {
        var name = Setup.OrgName();
        await TestServer.Send(Server.Admin, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest(name)).Expect(HttpStatusCode.Created);
        await TestServer.Send(Server.Admin, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest(name)).Problem(HttpStatusCode.Conflict, "org_exists");
        var bad = await TestServer.Send(Server.Admin, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest("Bad Name")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_name");
        Assert.Equal("name", bad.Field);
    }

    [Fact]
    public async Task Only_the_admin_creates_orgs_and_sets_quotas()
    {
        var org = Setup.OrgName();
        var owner = await Server.NewOrgAsync(org);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest(Setup.OrgName())).Problem(HttpStatusCode.Forbidden, "forbidden");
        await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Quotas(org), new Quotas(1, 1, 1, 1)).Problem(HttpStatusCode.Forbidden, "forbidden");
        var set = await TestServer.Send(Server.Admin, HttpMethod.Put, ApiPaths.Quotas(org), new Quotas(1L << 30, 4, 2, 1)).Json<QuotaView>();
        Assert.Equal(new Quotas(1L << 30, 4, 2, 1), set.Quotas);
        Assert.Equal(set, await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Quotas(org)).Json<QuotaView>());
    }

    [Fact]
    public async Task An_org_token_lists_only_its_own_org()
    {
        var org = Setup.OrgName();
        var owner = await Server.NewOrgAsync(org);
        await Server.NewOrgAsync(Setup.OrgName());
        var list = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Orgs).Json<ListView<OrgView>>();
        Assert.Equal([org], list.Items.Select(o => o.Name));
        var all = await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.Orgs).Json<ListView<OrgView>>();
        Assert.True(all.Items.Count >= 2);
    }

    [Fact]
    public async Task Apps_and_envs_are_unique_by_name_within_their_parent()
    {
        var org = Setup.OrgName();
        var owner = await Server.NewOrgAsync(org);
        var app = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Apps(org), new CreateAppRequest("shop")).Json<AppView>(HttpStatusCode.Created);
        Assert.Equal(("shop", org), (app.Name, app.Org));
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Apps(org), new CreateAppRequest("shop")).Problem(HttpStatusCode.Conflict, "app_exists");
        var env = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Envs(org, "shop"), new CreateEnvRequest("prod")).Json<EnvView>(HttpStatusCode.Created);
        Assert.Equal((0, 0, (string?)null), (env.DeployedRelease, env.SecretsVersion, env.Ipv4Address));
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Envs(org, "shop"), new CreateEnvRequest("prod")).Problem(HttpStatusCode.Conflict, "env_exists");
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Envs(org, "shop"), new CreateEnvRequest("staging")).Expect(HttpStatusCode.Created);
        var envs = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Envs(org, "shop")).Json<ListView<EnvView>>();
        Assert.Equal(["prod", "staging"], envs.Items.Select(e => e.Name));
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Envs(org, "nope"), new CreateEnvRequest("prod")).Problem(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task A_deploy_records_an_immutable_numbered_release_and_moves_the_deployed_flag()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var second = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"),
            new DeployRequest("registry.example.com/shop@sha512:" + new string('b', 128), Setup.Manifest.Replace("256Mi", "512Mi", StringComparison.Ordinal))).Json<ReleaseView>(HttpStatusCode.Created);
        Assert.Equal(2, second.Number);
        Assert.Equal("sha512:" + new string('b', 128), second.ImageDigest);
        Assert.Equal(512L << 20, second.MemoryBytes);
        Assert.Equal(512L << 20, second.Manifest.GetProperty("processes").GetProperty("web").GetProperty("memory_bytes").GetInt64());
        var releases = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Releases(org, "shop", "prod")).Json<ListView<ReleaseView>>();
        Assert.Equal([(2, true), (1, false)], releases.Items.Select(r => (r.Number, r.Deployed)));
        var first = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Release(org, "shop", "prod", 1)).Json<ReleaseView>();
        Assert.Equal(256L << 20, first.MemoryBytes);
        var env = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Env(org, "shop", "prod")).Json<EnvView>();
        Assert.Equal(2, env.DeployedRelease);
        var quota = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Quotas(org)).Json<QuotaView>();
        Assert.Equal(new Usage(512L << 20, 1, 0, 0), quota.Usage);
        await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Release(org, "shop", "prod", 9)).Problem(HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("registry.example.com/shop:latest", "image_not_pinned", "image")]
    [InlineData("registry.example.com/shop@sha256:abc", "image_not_pinned", "image")]
    [InlineData("", "image_not_pinned", "image")]
    public async Task A_deploy_needs_an_image_pinned_to_a_digest(string image, string code, string field)
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        var problem = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(image, Setup.Manifest)).Problem(HttpStatusCode.UnprocessableEntity, code);
        Assert.Equal(field, problem.Field);
    }

    [Theory]
    [InlineData("linux", "sha256:" + Hex64, "resolved_digests")]
    [InlineData("linux/amd64/v8/x", "sha256:" + Hex64, "resolved_digests")]
    [InlineData("Linux/AMD64", "sha256:" + Hex64, "resolved_digests")]
    [InlineData("linux/amd64", "sha256:abc", "resolved_digests.linux/amd64")]
    [InlineData("linux/amd64", "md5:" + Hex64, "resolved_digests.linux/amd64")]
    public async Task Resolved_digests_must_map_platforms_to_digests(string platform, string digest, string field)
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        var problem = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"),
            new DeployRequest(Setup.Image, Setup.Manifest, new Dictionary<string, string> { [platform] = digest })).Problem(HttpStatusCode.UnprocessableEntity, "invalid_resolved_digests");
        Assert.Equal(field, problem.Field);
    }

    [Fact]
    public async Task Resolved_digests_are_recorded_with_the_release()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        var digests = new Dictionary<string, string> { ["linux/amd64"] = "sha256:" + Hex64, ["linux/arm64/v8"] = "sha256:" + new string('b', 64) };
        var release = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest, digests)).Json<ReleaseView>(HttpStatusCode.Created);
        Assert.Equal(digests, release.ResolvedDigests);
        var read = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Release(org, "shop", "prod", release.Number)).Json<ReleaseView>();
        Assert.Equal(digests, read.ResolvedDigests);
    }

    private const string Hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Fact]
    public async Task A_deploy_with_an_invalid_manifest_lists_every_problem()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        var problem = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"),
            new DeployRequest(Setup.Image, "app = \"Shop\"\n[processes.web]\ncpu = 0\n")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_manifest");
        Assert.Equal("manifest", problem.Field);
        Assert.Equal(3, problem.Errors!.Count);
        Assert.StartsWith("manifest:1:7: app:", problem.Errors[0]);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest.Replace("\"shop\"", "\"blog\"", StringComparison.Ordinal)))
            .Problem(HttpStatusCode.UnprocessableEntity, "manifest_app_mismatch");
    }

    [Fact]
    public async Task The_memory_quota_holds_deploys_at_scaling_max()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        await TestServer.Send(Server.Admin, HttpMethod.Put, ApiPaths.Quotas(org), new Quotas(1L << 30, 100, 10, 1)).Expect(HttpStatusCode.OK);
        var big = Setup.Manifest.Replace("memory = \"256Mi\"", "memory = \"512Mi\"\nscaling = { min = 1, max = 3 }", StringComparison.Ordinal);
        var problem = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, big)).Problem(HttpStatusCode.Forbidden, "quota_exceeded");
        Assert.Equal("memory", problem.Field);
        Assert.Equal(1L << 30, problem.Details!["limit"].GetInt64());
        Assert.Equal(3L * (512 << 20), problem.Details["requested"].GetInt64());
        Assert.Empty((await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Releases(org, "shop", "prod")).Json<ListView<ReleaseView>>()).Items);
    }
}

public sealed class SqliteOrgsAppsEnvsTests(SqliteServer fixture) : OrgsAppsEnvsTests(fixture), IClassFixture<SqliteServer>;

public sealed class PostgresOrgsAppsEnvsTests(PostgresServer fixture) : OrgsAppsEnvsTests(fixture), IClassFixture<PostgresServer>;
