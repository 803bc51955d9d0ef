using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Core.Secrets;

namespace Trc.ControlPlane.Tests;

public abstract class SecretsVolumesTokensTests(ServerFixture fixture)
{
    private TestServer Server => fixture.Server;

    private static SetSecretsRequest Set(params (string Key, object Value)[] values) =>
        new(values.ToDictionary(v => v.Key, v => JsonSerializer.SerializeToElement(v.Value)));

    [Fact]
    public async Task Secrets_make_versions_render_exactly_and_never_reach_the_log()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        const string password = "hunter2-VERY-secret";
        var v1 = await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"),
            Set(("DB_PASSWORD", password), ("TLS_KEY", new Dictionary<string, string> { ["base64"] = "AAEC/w==" }), ("GREETING", "hello\nworld"))).Json<SecretsView>();
        Assert.Equal(1, v1.Version);
        Assert.Equal(["DB_PASSWORD", "GREETING", "TLS_KEY"], v1.Names);
        Assert.Null(v1.Deployment); // nothing runs: no rollout

        var v2 = await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), new SetSecretsRequest(null, ["GREETING"])).Json<SecretsView>();
        Assert.Equal(2, v2.Version);
        Assert.Equal(["DB_PASSWORD", "TLS_KEY"], v2.Names);
        var read = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Secrets(org, "shop", "prod")).Json<SecretsView>();
        Assert.Equal((v2.Version, v2.Names), (read.Version, read.Names), (a, b) => a.Version == b.Version && a.Names.SequenceEqual(b.Names));

        var render = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.SecretsRender(org, "shop", "prod")).Expect(HttpStatusCode.OK);
        var file = await render.Content.ReadAsByteArrayAsync();
        Assert.Equal("no-store", render.Headers.CacheControl?.ToString());
        var parsed = SecretsFile.Parse(file);
        Assert.True(parsed.IsSuccess);
        Assert.Equal(Encoding.UTF8.GetBytes(password), parsed.Secrets!.Single(s => s.Key == "DB_PASSWORD").Value);
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, parsed.Secrets!.Single(s => s.Key == "TLS_KEY").Value);

        // The log holds names and versions only: no value, in any form.
        var log = await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.Events + "?limit=1000&type=" + EventNames.SecretsSet).Expect(HttpStatusCode.OK);
        var text = await log.Content.ReadAsStringAsync();
        Assert.Contains("DB_PASSWORD", text);
        Assert.DoesNotContain(password, text);
        Assert.DoesNotContain("AAEC", text);
        Assert.DoesNotContain(Convert.ToBase64String(Encoding.UTF8.GetBytes(password)), text);
    }

    [Fact]
    public async Task Only_owners_render_secrets_and_bad_secrets_name_the_key()
    {
        var org = Setup.OrgName();
        await Setup.ShopAsync(Server, org, deploy: false);
        var deployer = await Server.TokenAsync(org, Roles.Deployer);
        await TestServer.Send(deployer, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), Set(("A", "1"))).Expect(HttpStatusCode.OK);
        await TestServer.Send(deployer, HttpMethod.Get, ApiPaths.SecretsRender(org, "shop", "prod")).Problem(HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal("set.lower", (await TestServer.Send(deployer, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), Set(("lower", "x"))).Problem(HttpStatusCode.UnprocessableEntity, "invalid_secret_name")).Field);
        var badValue = await TestServer.Send(deployer, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), Set(("B", 42))).Problem(HttpStatusCode.UnprocessableEntity, "invalid_secret_value");
        Assert.Equal("set.B", badValue.Field);
        await TestServer.Send(deployer, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), Set(("C", new Dictionary<string, string> { ["base64"] = "not base64!" }))).Problem(HttpStatusCode.UnprocessableEntity, "invalid_secret_value");
        Assert.Equal("unset[0]", (await TestServer.Send(deployer, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), new SetSecretsRequest(null, ["NOPE"])).Problem(HttpStatusCode.UnprocessableEntity, "secret_not_set")).Field);
        await TestServer.Send(deployer, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), new SetSecretsRequest()).Problem(HttpStatusCode.UnprocessableEntity, "nothing_to_change");
        Assert.Equal(1, (await TestServer.Send(deployer, HttpMethod.Get, ApiPaths.Secrets(org, "shop", "prod")).Json<SecretsView>()).Version);
    }

    [Fact]
    public async Task A_deploy_records_the_secrets_version_it_runs_with()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), Set(("A", "1"))).Expect(HttpStatusCode.OK);
        await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), Set(("A", "2"))).Expect(HttpStatusCode.OK);
        var release = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest)).Json<ReleaseView>(HttpStatusCode.Created);
        Assert.Equal(2, release.SecretsVersion);

        // Before the env ran a release, a change started no rollout; now it does, and says which.
        var third = await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), Set(("A", "3"))).Json<SecretsView>();
        Assert.Equal(3, third.Version);
        Assert.Equal(release.Deployment + 1, third.Deployment);
        var deployment = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Deployment(org, "shop", "prod", third.Deployment!.Value)).Json<DeploymentView>();
        Assert.Equal(("secrets", release.Number + 1), (deployment.Kind, deployment.Release));
    }

    [Fact]
    public async Task Volumes_are_declared_per_env_and_a_deploy_declares_the_manifests_own()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        var volume = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Volumes(org, "shop", "prod"), new CreateVolumeRequest("data", "10Gi")).Json<VolumeView>(HttpStatusCode.Created);
        Assert.Equal(new VolumeView("data", 10L << 30, "web", true, "/mnt/volumes/data"), volume);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Volumes(org, "shop", "prod"), new CreateVolumeRequest("data", "1Gi")).Problem(HttpStatusCode.Conflict, "volume_exists");
        Assert.Equal("size", (await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Volumes(org, "shop", "prod"), new CreateVolumeRequest("logs", "10GB")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_size")).Field);

        var withVolume = Setup.Manifest + "\n[[volumes]]\nname = \"cache\"\nsize = \"1Gi\"\n";
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, withVolume)).Expect(HttpStatusCode.Created);
        Assert.Equal(new VolumeView("cache", 1L << 30, "web", true, "/mnt/volumes/cache"),
            (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Volumes(org, "shop", "prod")).Json<ListView<VolumeView>>()).Items.Single(v => v.Name == "cache"));
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Volume(org, "shop", "prod", "cache")).Problem(HttpStatusCode.Conflict, "volume_in_use");
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Volume(org, "shop", "prod", "data")).Expect(HttpStatusCode.NoContent);
        Assert.Equal(["cache"], (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Volumes(org, "shop", "prod")).Json<ListView<VolumeView>>()).Items.Select(v => v.Name));
    }

    [Fact]
    public async Task A_token_is_shown_once_stored_hashed_and_revocable()
    {
        var org = Setup.OrgName();
        var owner = await Server.NewOrgAsync(org);
        var created = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Tokens(org), new CreateTokenRequest("ci", Roles.Deployer)).Json<TokenCreatedView>(HttpStatusCode.Created);
        Assert.StartsWith("trc_", created.Token);
        var listed = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Tokens(org)).Expect(HttpStatusCode.OK);
        Assert.DoesNotContain(created.Token[37..], await listed.Content.ReadAsStringAsync());
        var log = await (await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.Events + "?limit=1000&type=" + EventNames.TokenCreated).Expect(HttpStatusCode.OK)).Content.ReadAsStringAsync();
        Assert.DoesNotContain(created.Token[37..], log);

        var ci = Server.Client(created.Token);
        Assert.Equal(Roles.Deployer, (await TestServer.Send(ci, HttpMethod.Get, ApiPaths.WhoAmI).Json<WhoAmIView>()).Role);
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Token(org, created.Id)).Expect(HttpStatusCode.NoContent);
        await TestServer.Send(ci, HttpMethod.Get, ApiPaths.WhoAmI).Problem(HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.True((await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Tokens(org)).Json<ListView<TokenView>>()).Items.Single(t => t.Id == created.Id).Revoked);
        Assert.Equal("role", (await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Tokens(org), new CreateTokenRequest("x", "admin")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_role")).Field);
    }

    [Fact]
    public async Task A_tampered_or_foreign_token_is_simply_unauthenticated()
    {
        var org = Setup.OrgName();
        var owner = await Server.NewOrgAsync(org);
        var created = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Tokens(org), new CreateTokenRequest("ci", Roles.Viewer)).Json<TokenCreatedView>(HttpStatusCode.Created);
        var tampered = created.Token[..^1] + (created.Token[^1] == 'A' ? 'B' : 'A');
        foreach (var token in new[] { tampered, "trc_" + Guid.NewGuid().ToString("N") + "_" + new string('a', 43), "Bearer", "x", new string('t', 10_000) })
        {
            await TestServer.Send(Server.Client(token), HttpMethod.Get, ApiPaths.WhoAmI).Problem(HttpStatusCode.Unauthorized, "unauthenticated");
        }
        var basic = Server.Client(null);
        basic.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", "dXNlcjpwYXNz");
        await TestServer.Send(basic, HttpMethod.Get, ApiPaths.WhoAmI).Problem(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_retried_request_with_the_same_idempotency_key_changes_nothing_more()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var first = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest), "deploy-42").Json<ReleaseView>(HttpStatusCode.Created);
        var retry = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest), "deploy-42").Json<ReleaseView>(HttpStatusCode.Created);
        Assert.Equal(first.Number, retry.Number);
        Assert.Equal(2, (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Releases(org, "shop", "prod")).Json<ListView<ReleaseView>>()).Items.Count);
        // The same key with another body is another request.
        var other = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest.Replace("256Mi", "128Mi", StringComparison.Ordinal)), "deploy-42").Json<ReleaseView>(HttpStatusCode.Created);
        Assert.Equal(first.Number + 1, other.Number);
        // Retrying the creation of an org that the first attempt created answers like the first.
        var name = Setup.OrgName();
        await TestServer.Send(Server.Admin, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest(name), "org-1").Expect(HttpStatusCode.Created);
        await TestServer.Send(Server.Admin, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest(name), "org-1").Expect(HttpStatusCode.Created);
        Assert.Equal("Idempotency-Key", (await TestServer.Send(Server.Admin, HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest(Setup.OrgName()), "has space").Problem(HttpStatusCode.BadRequest, "invalid_idempotency_key")).Field);
    }
}

public sealed class SqliteSecretsVolumesTokensTests(SqliteServer fixture) : SecretsVolumesTokensTests(fixture), IClassFixture<SqliteServer>;

public sealed class PostgresSecretsVolumesTokensTests(PostgresServer fixture) : SecretsVolumesTokensTests(fixture), IClassFixture<PostgresServer>;
