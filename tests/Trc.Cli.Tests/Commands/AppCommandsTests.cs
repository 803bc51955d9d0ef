using System.Text.Json;

namespace Trc.Cli.Tests.Commands;

public sealed class AppCommandsTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    [Fact]
    public async Task Apps_print_an_aligned_table_by_default_and_the_APIs_JSON_with_json()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        await user.OkAsync("apps", "create", "shop");
        await user.OkAsync("apps", "create", "back-office");

        var table = (await user.OkAsync("apps")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, table.Length);
        Assert.Matches(@"^NAME {9}CREATED$", table[0]); // widest name (back-office) plus two spaces
        var createdColumn = table[0].IndexOf("CREATED", StringComparison.Ordinal);
        Assert.All(table[1..], line => Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", line[createdColumn..]));
        Assert.Equal(["back-office", "shop"], table[1..].Select(l => l.Split(' ')[0]).Order());

        var json = await user.OkAsync("apps", "list", "--json");
        using var document = JsonDocument.Parse(json.Stdout);
        var items = document.RootElement.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(2, items.Count);
        Assert.All(items, item =>
        {
            Assert.True(item.TryGetProperty("created_at", out _));
            Assert.Equal(user.Environment["TRC_ORG"], item.GetProperty("org").GetString());
        });
    }

    [Fact]
    public async Task Envs_take_the_app_from_the_manifest_in_the_working_directory()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        await user.OkAsync("apps", "create", "shop");
        user.WriteFile("trc.toml", "app = \"shop\"\n");

        await user.OkAsync("envs", "create", "staging");
        var envs = await user.OkAsync("envs");

        Assert.Matches(@"(?m)^staging\s+-\s+-\s+none\s+0\s+-\s+\d{4}-", envs.Stdout);
        var explicitApp = await user.RunAsync("envs", "--app", "other");
        Assert.Equal(1, explicitApp.ExitCode);
        Assert.Contains("app other not found", explicitApp.Stderr);
    }

    [Fact]
    public async Task Create_prints_what_it_made_on_stdout_and_the_next_step_on_stderr()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        var app = await user.OkAsync("apps", "create", "shop");
        Assert.Equal($"Created app shop in org {user.Environment["TRC_ORG"]}.\n", app.Stdout);
        Assert.Equal("Next: trc envs create prod --app shop\n", app.Stderr);
        var env = await user.OkAsync("envs", "create", "prod", "--app", "shop");
        Assert.Equal("Created env prod of app shop.\n", env.Stdout);
        Assert.StartsWith("Next: trc deploy --env prod", env.Stderr);
    }

    [Fact]
    public async Task Envs_without_any_app_is_a_usage_error()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        var result = await user.RunAsync("envs");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("which app?", result.Stderr);
    }
}
