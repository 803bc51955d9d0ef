using System.Text.Json;
using Trc.Core.Domain;

namespace Trc.Cli.Tests.Commands;

/// <summary><c>trc orgs</c>, <c>trc quotas</c> and <c>trc tokens</c> against a real server.</summary>
public sealed class OrgCommandsTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    [Fact]
    public async Task The_admin_sees_every_org_and_an_owner_only_their_own()
    {
        var first = CliServerFixture.NewName();
        var second = CliServerFixture.NewName();
        using var owner = await CliSession.NewOrgAsync(server, first);
        (await CliSession.NewOrgAsync(server, second)).Dispose();
        using var admin = server.NewSession().As(server.AdminToken);

        var all = await admin.OkAsync("orgs");
        Assert.Matches(@"^NAME\s+MEMORY\s+INSTANCES\s+ROUTES\s+IPV4\s+CREATED\n", all.Stdout);
        Assert.Matches($@"(?m)^{first}\s+0/\S+\s+0/\d+\s+0/\d+\s+0/\d+\s+\d{{4}}-", all.Stdout);
        Assert.Contains(second, all.Stdout);

        var mine = await owner.OkAsync("orgs", "list", "--json");
        using var document = JsonDocument.Parse(mine.Stdout);
        var only = Assert.Single(document.RootElement.GetProperty("items").EnumerateArray());
        Assert.Equal(first, only.GetProperty("name").GetString());

        var show = await owner.OkAsync("orgs", "show");
        Assert.Matches($@"(?m)^name:\s+{first}$", show.Stdout);
        Assert.Matches(@"(?m)^id:\s+[0-9a-f]{8}-", show.Stdout);
        Assert.Matches(@"(?m)^RESOURCE\s+USED\s+QUOTA$", show.Stdout);

        // Another org's name is not found for an owner, exactly like a name that does not exist.
        var foreign = await owner.RunAsync("orgs", "show", second);
        var nobody = CliServerFixture.NewName();
        var missing = await owner.RunAsync("orgs", "show", nobody);
        Assert.Equal(1, foreign.ExitCode);
        Assert.Contains("not found", foreign.Stderr);
        Assert.Equal(missing.Stderr.Replace(nobody, "X", StringComparison.Ordinal), foreign.Stderr.Replace(second, "X", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Creating_an_org_takes_all_four_quotas_or_none()
    {
        using var admin = server.NewSession().As(server.AdminToken);
        var partial = await admin.RunAsync("orgs", "create", CliServerFixture.NewName(), "--memory", "8Gi");
        Assert.Equal(2, partial.ExitCode);
        Assert.Contains("give all four", partial.Stderr);

        var name = CliServerFixture.NewName();
        var created = await admin.OkAsync("orgs", "create", name, "--memory", "8Gi", "--instances", "3", "--routes", "4", "--ipv4", "1", "--json");
        using var document = JsonDocument.Parse(created.Stdout);
        var quotas = document.RootElement.GetProperty("quotas");
        Assert.Equal(8L << 30, quotas.GetProperty("memory_bytes").GetInt64());
        Assert.Equal(3, quotas.GetProperty("instances").GetInt32());

        var badSize = await admin.RunAsync("orgs", "create", CliServerFixture.NewName(), "--memory", "lots", "--instances", "1", "--routes", "1", "--ipv4", "0");
        Assert.Equal(1, badSize.ExitCode);
        Assert.StartsWith("trc: --memory: ", badSize.Stderr);

        var again = await admin.RunAsync("orgs", "create", name);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("409", again.Stderr);
    }

    [Fact]
    public async Task Quotas_are_shown_to_members_and_set_by_the_admin_only()
    {
        var org = CliServerFixture.NewName();
        using var owner = await CliSession.NewOrgAsync(server, org);
        using var admin = server.NewSession().As(server.AdminToken);

        await admin.OkAsync("quotas", "set", "--org", org, "--instances", "7", "--memory", "2Gi");

        var shown = await owner.OkAsync("quotas");
        Assert.Matches(@"(?m)^instances\s+0\s+7$", shown.Stdout);
        Assert.Matches(@"(?m)^memory\s+0\s+2Gi$", shown.Stdout);
        using (var json = JsonDocument.Parse((await owner.OkAsync("quotas", "show", "--json")).Stdout))
        {
            Assert.Equal(7, json.RootElement.GetProperty("quotas").GetProperty("instances").GetInt32());
        }

        var refused = await owner.RunAsync("quotas", "set", "--instances", "1000");
        Assert.Equal(4, refused.ExitCode);
        Assert.Contains("403", refused.Stderr);
        Assert.Matches(@"(?m)^instances\s+0\s+7$", (await owner.OkAsync("quotas")).Stdout);
    }

    [Fact]
    public async Task A_token_is_printed_once_listed_without_its_secret_and_dead_once_revoked()
    {
        var org = CliServerFixture.NewName();
        using var owner = await CliSession.NewOrgAsync(server, org);

        var created = await owner.OkAsync("tokens", "create", "ci", "--role", Roles.Deployer);
        var secret = created.Stdout.Trim();
        Assert.StartsWith("trc_", secret);
        Assert.Contains("only time the token is shown", created.Stderr);
        Assert.DoesNotContain(secret, created.Stderr);

        var list = await owner.OkAsync("tokens");
        Assert.Matches(@"^ID\s+NAME\s+ROLE\s+REVOKED\s+CREATED\n", list.Stdout);
        var row = list.Stdout.Split('\n').Single(l => l.Contains(" ci ", StringComparison.Ordinal));
        Assert.Matches(@"^[0-9a-f-]{36}\s+ci\s+deployer\s+no\s+\d{4}-", row);
        Assert.DoesNotContain(secret, list.Stdout);
        Assert.DoesNotContain(secret, (await owner.OkAsync("tokens", "list", "--json")).Stdout);

        using var ci = server.NewSession().As(secret);
        ci.Environment["TRC_ORG"] = org;
        await ci.OkAsync("apps", "create", "from-ci");
        var notOwner = await ci.RunAsync("tokens");
        Assert.Equal(4, notOwner.ExitCode);

        var id = row.Split(' ')[0];
        var revoked = await owner.OkAsync("tokens", "revoke", id);
        Assert.Contains($"Revoked token {id}", revoked.Stdout);
        Assert.Matches(@"(?m)^\S+\s+ci\s+deployer\s+yes\s", (await owner.OkAsync("tokens")).Stdout);

        var after = await ci.RunAsync("apps");
        Assert.Equal(4, after.ExitCode);
        Assert.Contains("401", after.Stderr);

        var badId = await owner.RunAsync("tokens", "revoke", "not-a-guid");
        Assert.Equal(2, badId.ExitCode);
        var badRole = await owner.RunAsync("tokens", "create", "x", "--role", "admin");
        Assert.Equal(2, badRole.ExitCode);
        Assert.Contains("admin", badRole.Stderr);
    }
}
