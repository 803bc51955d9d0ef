using System.Net;
using Trc.Core.Api;

namespace Trc.ControlPlane.Tests;

public sealed class SmokeTests
{
    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Org_app_env_deploy(Backend backend)
    {
        await using var server = await TestServer.StartAsync(backend);
        var owner = await server.NewOrgAsync("acme");
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Apps("acme"), new CreateAppRequest("shop")).Expect(HttpStatusCode.Created);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Envs("acme", "shop"), new CreateEnvRequest("prod")).Expect(HttpStatusCode.Created);
        var release = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases("acme", "shop", "prod"),
            new DeployRequest("registry.example.com/shop@sha256:" + new string('a', 64), "app = \"shop\"\n[processes.web]\nmemory = \"256Mi\"\nports = [8443]\n")).Json<ReleaseView>(HttpStatusCode.Created);
        Assert.Equal(1, release.Number);
        Assert.True(release.Deployed);
    }
}
