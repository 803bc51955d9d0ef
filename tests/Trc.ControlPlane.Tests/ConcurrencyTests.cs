using System.Net;
using System.Net.Http.Json;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Tests;

/// <summary>Conflicting commands at the same time: exactly one wins, the others get a clear 409.</summary>
public abstract class ConcurrencyTests(ServerFixture fixture)
{
    private TestServer Server => fixture.Server;

    private static string Manifest(int memoryMi) => Setup.Manifest.Replace("256Mi", $"{memoryMi}Mi", StringComparison.Ordinal);

    /// <summary>Sends all requests at once (after a shared start signal) and returns the responses in order.</summary>
    private static async Task<HttpResponseMessage[]> RaceAsync(params Func<ApiCall>[] calls)
    {
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = calls.Select(async call =>
        {
            await start.Task;
            return await call().Response;
        }).ToList();
        start.SetResult();
        return await Task.WhenAll(tasks);
    }

    [Fact]
    public async Task Two_deploys_expecting_the_same_release_exactly_one_wins()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        for (var round = 0; round < 5; round++)
        {
            var current = (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Env(org, "shop", "prod")).Json<EnvView>()).DeployedRelease;
            var responses = await RaceAsync(
                () => TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Manifest(128), ExpectedRelease: current)),
                () => TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Manifest(192), ExpectedRelease: current)));
            var won = Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
            var lost = Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Conflict);
            var problem = (await lost.Content.ReadFromJsonAsync<ProblemView>(ApiJson.ClientOptions))!;
            // Whether the loser saw the winner's release (release_changed) or lost the append itself
            // (conflict) depends on timing; both say what happened.
            Assert.Contains(problem.Code, new[] { "release_changed", "conflict" });
            Assert.False(string.IsNullOrWhiteSpace(problem.Detail));
            var release = (await won.Content.ReadFromJsonAsync<ReleaseView>(ApiJson.ClientOptions))!;
            Assert.Equal(current + 1, release.Number);
            Assert.True(release.Deployed);
        }
        var releases = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Releases(org, "shop", "prod")).Json<ListView<ReleaseView>>();
        Assert.Equal(6, releases.Items.Count);
    }

    [Fact]
    public async Task Concurrent_deploys_never_lose_duplicate_or_mix_up_a_release()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var memories = Enumerable.Range(1, 8).Select(i => 128 + 64 * i).ToArray();
        var responses = await RaceAsync(memories.Select(m => (Func<ApiCall>)(() =>
            TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Manifest(m))))).ToArray());

        var made = new List<(int Number, long Memory)>();
        for (var i = 0; i < responses.Length; i++)
        {
            if (responses[i].StatusCode == HttpStatusCode.Created)
            {
                var release = (await responses[i].Content.ReadFromJsonAsync<ReleaseView>(ApiJson.ClientOptions))!;
                // Each winner gets back its own release, not whichever is newest.
                Assert.Equal((long)memories[i] << 20, release.MemoryBytes);
                made.Add((release.Number, release.MemoryBytes));
            }
            else
            {
                Assert.Equal(HttpStatusCode.Conflict, responses[i].StatusCode);
                Assert.Equal("conflict", (await responses[i].Content.ReadFromJsonAsync<ProblemView>(ApiJson.ClientOptions))!.Code);
            }
        }
        Assert.NotEmpty(made);
        var all = (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Releases(org, "shop", "prod")).Json<ListView<ReleaseView>>()).Items;
        Assert.Equal(Enumerable.Range(1, 1 + made.Count), all.Select(r => r.Number).Order());
        Assert.Equal(made.OrderBy(m => m.Number), all.Where(r => r.Number > 1).Select(r => (r.Number, r.MemoryBytes)).OrderBy(m => m.Number));
        // The quota usage is the deployed release's, not a sum of every racer's.
        var deployed = all.Single(r => r.Deployed);
        Assert.Equal(made.Max(m => m.Number), deployed.Number);
        Assert.Equal(deployed.MemoryBytes, (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Quotas(org)).Json<QuotaView>()).Usage.MemoryBytes);
    }

    [Fact]
    public async Task Commands_on_different_envs_of_one_org_do_not_conflict()
    {
        // Both touch the org (its usage), but neither changes what the other decided on: the
        // server decides again instead of answering 409.
        var envs = Enumerable.Range(1, 6).Select(i => $"env{i}").ToArray();
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, false, envs);
        var deploys = await RaceAsync(envs.Select(env => (Func<ApiCall>)(() =>
            TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", env), new DeployRequest(Setup.Image, Setup.Manifest)))).ToArray());
        foreach (var r in deploys)
        {
            Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        }
        var routes = await RaceAsync(envs.Select(env => (Func<ApiCall>)(() =>
            TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", env), Setup.Route($"{env}-{Guid.NewGuid().ToString("N")[..8]}.example.com")))).ToArray());
        foreach (var r in routes)
        {
            Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        }
        var usage = (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Quotas(org)).Json<QuotaView>()).Usage;
        Assert.Equal((envs.Length, envs.Length * (256L << 20), envs.Length), (usage.Routes, usage.MemoryBytes, usage.Instances));
    }

    [Fact]
    public async Task Two_orgs_claiming_one_hostname_at_once_exactly_one_gets_it()
    {
        for (var round = 0; round < 5; round++)
        {
            var (a, b) = (Setup.OrgName(), Setup.OrgName());
            var ownerA = await Setup.ShopAsync(Server, a);
            var ownerB = await Setup.ShopAsync(Server, b);
            var host = $"race-{Guid.NewGuid().ToString("N")[..8]}.example.com";
            var responses = await RaceAsync(
                () => TestServer.Send(ownerA, HttpMethod.Post, ApiPaths.Routes(a, "shop", "prod"), Setup.Route(host)),
                () => TestServer.Send(ownerB, HttpMethod.Post, ApiPaths.Routes(b, "shop", "prod"), Setup.Route(host)));
            Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
            var lost = Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Conflict);
            // The loser is decided again on the new state, so it learns the real reason.
            Assert.Equal("hostname_taken", (await lost.Content.ReadFromJsonAsync<ProblemView>(ApiJson.ClientOptions))!.Code);

            var routesA = (await TestServer.Send(ownerA, HttpMethod.Get, ApiPaths.Routes(a, "shop", "prod")).Json<ListView<RouteView>>()).Items;
            var routesB = (await TestServer.Send(ownerB, HttpMethod.Get, ApiPaths.Routes(b, "shop", "prod")).Json<ListView<RouteView>>()).Items;
            Assert.Equal(1, routesA.Count + routesB.Count);
            Assert.Equal(responses[0].StatusCode == HttpStatusCode.Created ? 1 : 0, routesA.Count);
        }
    }

    [Fact]
    public async Task Two_orgs_deploying_one_new_hostname_at_once_exactly_one_gets_it_and_the_other_deploys_nothing()
    {
        for (var round = 0; round < 5; round++)
        {
            var (a, b) = (Setup.OrgName(), Setup.OrgName());
            var ownerA = await Setup.ShopAsync(Server, a);
            var ownerB = await Setup.ShopAsync(Server, b);
            var host = $"race-{Guid.NewGuid().ToString("N")[..8]}.example.com";
            // Each manifest also has a hostname of its own, which the loser must not keep.
            string Manifest(string own) => Setup.Manifest + $"\n[[routes]]\nhostname = \"{own}\"\nbackend_port = 8443\n\n[[routes]]\nhostname = \"{host}\"\nbackend_port = 8443\n";
            var responses = await RaceAsync(
                () => TestServer.Send(ownerA, HttpMethod.Post, ApiPaths.Releases(a, "shop", "prod"), new DeployRequest(Setup.Image, Manifest("a-" + host))),
                () => TestServer.Send(ownerB, HttpMethod.Post, ApiPaths.Releases(b, "shop", "prod"), new DeployRequest(Setup.Image, Manifest("b-" + host))));
            Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
            var lost = Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Conflict);
            Assert.Equal("hostname_taken", (await lost.Content.ReadFromJsonAsync<ProblemView>(ApiJson.ClientOptions))!.Code);

            var (winner, loser, loserOrg) = responses[0].StatusCode == HttpStatusCode.Created ? (ownerA, ownerB, b) : (ownerB, ownerA, a);
            var winnerOrg = loserOrg == a ? b : a;
            Assert.Equal(2, (await TestServer.Send(winner, HttpMethod.Get, ApiPaths.Routes(winnerOrg, "shop", "prod")).Json<ListView<RouteView>>()).Items.Count);
            Assert.Empty((await TestServer.Send(loser, HttpMethod.Get, ApiPaths.Routes(loserOrg, "shop", "prod")).Json<ListView<RouteView>>()).Items);
            Assert.Single((await TestServer.Send(loser, HttpMethod.Get, ApiPaths.Releases(loserOrg, "shop", "prod")).Json<ListView<ReleaseView>>()).Items);
            Assert.Equal(0, (await TestServer.Send(loser, HttpMethod.Get, ApiPaths.Quotas(loserOrg)).Json<QuotaView>()).Usage.Routes);
        }
    }

    [Fact]
    public async Task Deploys_with_new_routes_to_different_envs_of_one_org_all_succeed()
    {
        // They share the org's usage and the port 443 aggregate: both are side aggregates, so the
        // server decides again instead of answering 409.
        var envs = Enumerable.Range(1, 6).Select(i => $"env{i}").ToArray();
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, false, envs);
        var deploys = await RaceAsync(envs.Select(env => (Func<ApiCall>)(() =>
            TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", env), new DeployRequest(Setup.Image,
                Setup.Manifest + $"\n[[routes]]\nhostname = \"{env}-{Guid.NewGuid().ToString("N")[..8]}.example.com\"\nbackend_port = 8443\n")))).ToArray());
        foreach (var r in deploys)
        {
            Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        }
        var usage = (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Quotas(org)).Json<QuotaView>()).Usage;
        Assert.Equal((envs.Length, envs.Length * (256L << 20)), (usage.Routes, usage.MemoryBytes));
    }

    [Fact]
    public async Task Two_envs_enabling_ipv4_at_once_get_different_addresses()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, true, "one", "two");
        await TestServer.Send(Server.Admin, HttpMethod.Put, ApiPaths.Quotas(org), new Quotas(64L << 30, 100, 50, 2)).Expect(HttpStatusCode.OK);
        var responses = await RaceAsync(
            () => TestServer.Send(owner, HttpMethod.Put, ApiPaths.Ipv4(org, "shop", "one")),
            () => TestServer.Send(owner, HttpMethod.Put, ApiPaths.Ipv4(org, "shop", "two")));
        var addresses = new List<string>();
        foreach (var r in responses)
        {
            // The server retries a lost race for an address on its own; a pool of two has room.
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            addresses.Add((await r.Content.ReadFromJsonAsync<Ipv4View>(ApiJson.ClientOptions))!.Address);
        }
        Assert.Equal(2, addresses.Distinct().Count());
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Ipv4(org, "shop", "one")).Expect(HttpStatusCode.NoContent);
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Ipv4(org, "shop", "two")).Expect(HttpStatusCode.NoContent);
    }
}

public sealed class SqliteConcurrencyTests(SqliteServer fixture) : ConcurrencyTests(fixture), IClassFixture<SqliteServer>;

public sealed class PostgresConcurrencyTests(PostgresServer fixture) : ConcurrencyTests(fixture), IClassFixture<PostgresServer>;
