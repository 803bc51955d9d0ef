using System.Net;
using System.Text;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Core.Secrets;

namespace Trc.Client.Tests;

/// <summary>Every catalog method of <see cref="TrcClient"/> against a real server.</summary>
public sealed class TrcClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private ClientTestServer Server => fixture.Server;

    [Fact]
    public async Task Whoami_names_the_token_its_role_and_its_org()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var me = await owner.WhoAmIAsync();
        Assert.Equal(Roles.Owner, me.Role);
        Assert.Equal(org, me.Org);
        var admin = await Server.Admin.WhoAmIAsync();
        Assert.Equal(Roles.Admin, admin.Role);
        Assert.Null(admin.Org);
    }

    [Fact]
    public async Task The_admin_creates_orgs_and_an_org_token_sees_only_its_own()
    {
        var org = ServerFixture.NewName();
        var created = await Server.Admin.CreateOrgAsync(org, new Quotas(4L << 30, 8, 4, 1));
        Assert.Equal(org, created.Name);
        Assert.Equal(8, created.Quotas.Instances);
        Assert.Contains((await Server.Admin.ListOrgsAsync()).Items, o => o.Name == org);

        var owner = await Server.TokenAsync(org, Roles.Owner);
        var other = ServerFixture.NewName();
        await Server.Admin.CreateOrgAsync(other);
        var visible = (await owner.ListOrgsAsync()).Items;
        Assert.Equal([org], visible.Select(o => o.Name));
        Assert.Equal(org, (await owner.GetOrgAsync(org)).Name);
        var hidden = await Assert.ThrowsAsync<TrcApiException>(() => owner.GetOrgAsync(other));
        Assert.Equal(HttpStatusCode.NotFound, hidden.StatusCode);
    }

    [Fact]
    public async Task Quotas_are_read_by_the_org_and_set_only_by_the_admin()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var quotas = await owner.GetQuotasAsync(org);
        Assert.Equal(Usage.None, quotas.Usage);

        var set = await Server.Admin.SetQuotasAsync(org, quotas.Quotas with { Routes = 7 });
        Assert.Equal(7, set.Quotas.Routes);
        Assert.Equal(7, (await owner.GetQuotasAsync(org)).Quotas.Routes);

        var refused = await Assert.ThrowsAsync<TrcApiException>(() => owner.SetQuotasAsync(org, quotas.Quotas));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("forbidden", refused.Code);
    }

    [Fact]
    public async Task A_token_is_created_listed_and_revoked_and_then_refused_with_401()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var created = await owner.CreateTokenAsync(org, "ci", Roles.Deployer);
        Assert.StartsWith("trc_", created.Token);
        var ci = Server.Client(created.Token);
        Assert.Equal("ci", (await ci.WhoAmIAsync()).TokenName);
        Assert.Contains((await owner.ListTokensAsync(org)).Items, t => t.Id == created.Id && !t.Revoked);

        await owner.RevokeTokenAsync(org, created.Id);

        Assert.Contains((await owner.ListTokensAsync(org)).Items, t => t.Id == created.Id && t.Revoked);
        var refused = await Assert.ThrowsAsync<TrcApiException>(() => ci.ListAppsAsync(org));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("unauthenticated", refused.Code);
        Assert.DoesNotContain(created.Token, refused.Message + refused);
    }

    [Fact]
    public async Task Apps_and_envs_are_created_listed_and_read()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var app = await owner.CreateAppAsync(org, "shop");
        Assert.Equal("shop", app.Name);
        Assert.Equal(org, app.Org);
        Assert.Equal(["shop"], (await owner.ListAppsAsync(org)).Items.Select(a => a.Name));
        Assert.Equal(app.Id, (await owner.GetAppAsync(org, "shop")).Id);

        var env = await owner.CreateEnvAsync(org, "shop", "prod");
        Assert.Equal(0, env.DeployedRelease);
        Assert.Equal(["prod"], (await owner.ListEnvsAsync(org, "shop")).Items.Select(e => e.Name));
        Assert.Equal(env.Id, (await owner.GetEnvAsync(org, "shop", "prod")).Id);
    }

    [Fact]
    public async Task A_retried_create_with_the_same_idempotency_key_acts_once()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewOrgAsync(org);
        var first = await owner.CreateAppAsync(org, "shop", idempotencyKey: "create-shop-1");
        var again = await owner.CreateAppAsync(org, "shop", idempotencyKey: "create-shop-1");
        Assert.Equal(first.Id, again.Id);
        var conflict = await Assert.ThrowsAsync<TrcApiException>(() => owner.CreateAppAsync(org, "shop"));
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
    }

    [Fact]
    public async Task Deploy_creates_the_manifests_route_and_volume_with_release_1_in_one_call()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewEnvAsync(org);
        var hostname = ServerFixture.NewName("h") + ".example.com";

        var release = await owner.DeployAsync(org, "shop", "prod", new DeployRequest(ClientTestServer.Image, ClientTestServer.Manifest("shop", hostname)));

        var route = Assert.Single((await owner.ListRoutesAsync(org, "shop", "prod")).Items);
        Assert.Equal((hostname, 443, "web", 8443), (route.Hostname, route.ListenPort, route.Process, route.BackendPort));
        var volume = Assert.Single((await owner.ListVolumesAsync(org, "shop", "prod")).Items);
        Assert.Equal(("data", 1L << 30, "web", true), (volume.Name, volume.SizeBytes, volume.Process, volume.BackupEnabled));
        Assert.Equal(1, (await owner.GetQuotasAsync(org)).Usage.Routes);
        Assert.Equal(1, release.Number);
        Assert.True(release.Deployed);
        Assert.Equal("sha256:" + new string('a', 64), release.ImageDigest);
        Assert.Equal("shop", release.Manifest.GetProperty("app").GetString());

        Assert.Equal([1], (await owner.ListReleasesAsync(org, "shop", "prod")).Items.Select(r => r.Number));
        Assert.Equal(ClientTestServer.Image, (await owner.GetReleaseAsync(org, "shop", "prod", 1)).Image);
        Assert.Equal(1, (await owner.GetEnvAsync(org, "shop", "prod")).DeployedRelease);
        var none = await Assert.ThrowsAsync<TrcApiException>(() => owner.GetReleaseAsync(org, "shop", "prod", 2));
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
    }

    [Fact]
    public async Task Deploying_a_tag_is_a_422_naming_the_image_field()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewEnvAsync(org);
        var e = await Assert.ThrowsAsync<TrcApiException>(() =>
            owner.DeployAsync(org, "shop", "prod", new DeployRequest("registry.example.com/shop:latest", "app = \"shop\"\n[processes.web]\nmemory = \"256Mi\"\n")));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.StatusCode);
        Assert.Equal("image_not_pinned", e.Code);
        Assert.Equal("image", e.Field);
    }

    [Fact]
    public async Task An_invalid_manifest_is_a_422_listing_every_error()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewEnvAsync(org);
        var e = await Assert.ThrowsAsync<TrcApiException>(() =>
            owner.DeployAsync(org, "shop", "prod", new DeployRequest(ClientTestServer.Image, "app = \"Shop\"\n[processes.web]\ncpu = 0\n")));
        Assert.Equal("invalid_manifest", e.Code);
        Assert.Equal("manifest", e.Field);
        Assert.True(e.Problem!.Errors!.Count >= 2, string.Join("\n", e.Problem.Errors!));
    }

    [Fact]
    public async Task Routes_are_created_listed_refused_on_conflict_and_deleted()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewEnvAsync(org);
        var hostname = ServerFixture.NewName("h") + ".example.com";
        var route = await owner.CreateRouteAsync(org, "shop", "prod", new CreateRouteRequest(hostname, 8443));
        Assert.Equal(443, route.ListenPort);
        Assert.Equal("tls_passthrough", route.Protocol);
        Assert.Equal("web", route.Process);
        Assert.Equal([hostname], (await owner.ListRoutesAsync(org, "shop", "prod")).Items.Select(r => r.Hostname));

        var again = await Assert.ThrowsAsync<TrcApiException>(() => owner.CreateRouteAsync(org, "shop", "prod", new CreateRouteRequest(hostname, 8443)));
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("route_exists", again.Code);

        var otherOrg = ServerFixture.NewName();
        var other = await Server.NewEnvAsync(otherOrg);
        var taken = await Assert.ThrowsAsync<TrcApiException>(() => other.CreateRouteAsync(otherOrg, "shop", "prod", new CreateRouteRequest(hostname, 8443)));
        Assert.Equal(HttpStatusCode.Conflict, taken.StatusCode);
        Assert.Equal("hostname_taken", taken.Code);
        Assert.Equal("hostname", taken.Field);

        var v2 = await Assert.ThrowsAsync<TrcApiException>(() => owner.CreateRouteAsync(org, "shop", "prod",
            new CreateRouteRequest("v2." + hostname, 8443, ProxyProtocol: "v2")));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, v2.StatusCode);
        Assert.Equal("backend_expects_proxy_protocol", v2.Field);

        await owner.DeleteRouteAsync(org, "shop", "prod", hostname, 443);
        Assert.Empty((await owner.ListRoutesAsync(org, "shop", "prod")).Items);
        var gone = await Assert.ThrowsAsync<TrcApiException>(() => owner.DeleteRouteAsync(org, "shop", "prod", hostname, 443));
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task A_hostname_moves_between_envs_of_one_org_only_when_asked()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewEnvAsync(org);
        await owner.CreateEnvAsync(org, "shop", "staging");
        var hostname = ServerFixture.NewName("h") + ".example.com";
        await owner.CreateRouteAsync(org, "shop", "staging", new CreateRouteRequest(hostname, 8443));

        var bound = await Assert.ThrowsAsync<TrcApiException>(() => owner.CreateRouteAsync(org, "shop", "prod", new CreateRouteRequest(hostname, 8443)));
        Assert.Equal("hostname_bound", bound.Code);

        await owner.CreateRouteAsync(org, "shop", "prod", new CreateRouteRequest(hostname, 8443, Move: true));
        Assert.Empty((await owner.ListRoutesAsync(org, "shop", "staging")).Items);
        Assert.Single((await owner.ListRoutesAsync(org, "shop", "prod")).Items);
    }

    [Fact]
    public async Task The_ipv4_add_on_is_enabled_read_and_disabled()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewEnvAsync(org);
        var off = await Assert.ThrowsAsync<TrcApiException>(() => owner.GetIpv4Async(org, "shop", "prod"));
        Assert.Equal(HttpStatusCode.NotFound, off.StatusCode);

        var on = await owner.EnableIpv4Async(org, "shop", "prod");
        Assert.StartsWith("203.0.113.", on.Address);
        Assert.Contains(443, on.Ports);
        Assert.Equal(on.Address, (await owner.GetIpv4Async(org, "shop", "prod")).Address);
        Assert.Equal(on.Address, (await owner.GetEnvAsync(org, "shop", "prod")).Ipv4Address);

        var twice = await Assert.ThrowsAsync<TrcApiException>(() => owner.EnableIpv4Async(org, "shop", "prod"));
        Assert.Equal(HttpStatusCode.Conflict, twice.StatusCode);

        await owner.DisableIpv4Async(org, "shop", "prod");
        await Assert.ThrowsAsync<TrcApiException>(() => owner.GetIpv4Async(org, "shop", "prod"));
    }

    [Fact]
    public async Task Secrets_with_binary_values_round_trip_through_set_list_and_render()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewEnvAsync(org);
        var binary = new byte[] { 0, 1, 2, 0xFF, 0xFE, (byte)'\n', (byte)'\r' };
        var tricky = Encoding.UTF8.GetBytes("base64:not really");
        var set = await owner.SetSecretsAsync(org, "shop", "prod", new Dictionary<string, byte[]>
        {
            ["DB_PASSWORD"] = Encoding.UTF8.GetBytes("hunter2 = with spaces "),
            ["TLS_KEY"] = binary,
            ["TRICKY"] = tricky,
            ["EMPTY"] = [],
        });
        Assert.Equal(1, set.Version);
        Assert.Equal(["DB_PASSWORD", "EMPTY", "TLS_KEY", "TRICKY"], set.Names);
        var listed = await owner.ListSecretsAsync(org, "shop", "prod");
        Assert.Equal(1, listed.Version);
        Assert.Equal(set.Names, listed.Names);

        var file = await owner.RenderSecretsAsync(org, "shop", "prod");
        Assert.StartsWith("# TRC_SECRETS_V1\n", Encoding.UTF8.GetString(file));
        var parsed = SecretsFile.Parse(file);
        Assert.True(parsed.IsSuccess, parsed.Error?.ToString());
        var values = parsed.Secrets!.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal(binary, values["TLS_KEY"]);
        Assert.Equal(tricky, values["TRICKY"]);
        Assert.Equal("hunter2 = with spaces ", Encoding.UTF8.GetString(values["DB_PASSWORD"]));
        Assert.Empty(values["EMPTY"]);

        var unset = await owner.UnsetSecretsAsync(org, "shop", "prod", ["TRICKY", "EMPTY"]);
        Assert.Equal(2, unset.Version);
        Assert.Equal(["DB_PASSWORD", "TLS_KEY"], unset.Names);
    }

    [Fact]
    public async Task Only_an_owner_may_render_secrets_and_unsetting_a_missing_one_names_it()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewEnvAsync(org);
        var deployer = await Server.TokenAsync(org, Roles.Deployer);
        await deployer.SetSecretsAsync(org, "shop", "prod", new Dictionary<string, byte[]> { ["A"] = "1"u8.ToArray() });
        var refused = await Assert.ThrowsAsync<TrcApiException>(() => deployer.RenderSecretsAsync(org, "shop", "prod"));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("# TRC_SECRETS_V1\nA=1\n", Encoding.UTF8.GetString(await owner.RenderSecretsAsync(org, "shop", "prod")));

        var missing = await Assert.ThrowsAsync<TrcApiException>(() => owner.UnsetSecretsAsync(org, "shop", "prod", ["NOPE"]));
        Assert.Equal("secret_not_set", missing.Code);
        Assert.Equal("unset[0]", missing.Field);
    }

    [Fact]
    public async Task Volumes_are_declared_listed_and_removed()
    {
        var org = ServerFixture.NewName();
        var owner = await Server.NewEnvAsync(org);
        var volume = await owner.CreateVolumeAsync(org, "shop", "prod", new CreateVolumeRequest("data", "2Gi"));
        Assert.Equal(2L << 30, volume.SizeBytes);
        Assert.Equal("web", volume.Process);
        Assert.True(volume.BackupEnabled);
        Assert.Equal("/mnt/volumes/data", volume.MountPath);
        Assert.Equal(["data"], (await owner.ListVolumesAsync(org, "shop", "prod")).Items.Select(v => v.Name));

        var bad = await Assert.ThrowsAsync<TrcApiException>(() => owner.CreateVolumeAsync(org, "shop", "prod", new CreateVolumeRequest("more", "2GB")));
        Assert.Equal("invalid_size", bad.Code);
        Assert.Equal("size", bad.Field);

        await owner.DeleteVolumeAsync(org, "shop", "prod", "data");
        Assert.Empty((await owner.ListVolumesAsync(org, "shop", "prod")).Items);
    }

    [Fact]
    public async Task A_viewer_reads_but_may_not_write()
    {
        var org = ServerFixture.NewName();
        await Server.NewEnvAsync(org);
        var viewer = await Server.TokenAsync(org, Roles.Viewer);
        Assert.Single((await viewer.ListAppsAsync(org)).Items);
        var e = await Assert.ThrowsAsync<TrcApiException>(() => viewer.CreateAppAsync(org, "other"));
        Assert.Equal(HttpStatusCode.Forbidden, e.StatusCode);
        Assert.Equal("forbidden", e.Code);
        Assert.Contains("deployer", e.Message);
    }
}
