using System.Text.Json;
using Trc.Testing;

namespace Trc.Cli.Tests.Commands;

public sealed class EventCommandsTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    [Fact]
    public async Task Events_print_the_orgs_log_as_a_table_or_as_the_APIs_page()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        await user.OkAsync("apps", "create", "shop");

        var table = await user.OkAsync("events");
        Assert.Matches(@"^ID\s+TIME\s+TYPE\s+AGGREGATE\s+ACTOR\n", table.Stdout);
        Assert.Matches(@"(?m)^\d+\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+app\.created\s+app/", table.Stdout);
        Assert.Contains("next: trc events --after ", table.Stderr);

        var json = await user.OkAsync("events", "--json", "--type", "app.created");
        using var page = JsonDocument.Parse(json.Stdout);
        var only = Assert.Single(page.RootElement.GetProperty("events").EnumerateArray());
        Assert.Equal("shop", only.GetProperty("payload").GetProperty("name").GetString());
        var cursor = page.RootElement.GetProperty("next_cursor").GetInt64();

        var after = await user.OkAsync("events", "--json", "--after", cursor.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var empty = JsonDocument.Parse(after.Stdout);
        Assert.Empty(empty.RootElement.GetProperty("events").EnumerateArray());
    }

    [Fact]
    public async Task Follow_prints_new_events_as_they_happen_and_stops_with_exit_0_when_cancelled()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        await using var follow = user.Start("events", "--follow", "--json", "--type", "app.created");

        await user.OkAsync("apps", "create", "followed");
        var line = await follow.Output.WaitForAsync("followed", TimeSpan.FromSeconds(30));
        using (var json = JsonDocument.Parse(line))
        {
            Assert.Equal("app.created", json.RootElement.GetProperty("type").GetString());
        }
        Assert.False(follow.Exit.IsCompleted, "--follow keeps running");

        var code = await follow.StopAsync();
        Assert.Equal(0, code);
    }

    [Fact]
    public async Task Follow_against_an_unreachable_server_fails_at_once_with_exit_5()
    {
        using var user = server.NewSession();
        user.Environment["TRC_URL"] = $"http://127.0.0.1:{CliServerFixture.ClosedPort()}";
        user.Environment["TRC_TOKEN"] = server.AdminToken;
        var result = await user.RunAsync("events", "--follow");
        Assert.Equal(5, result.ExitCode);
    }

    [Fact]
    public async Task Follow_cleans_control_characters_from_what_the_server_sends()
    {
        const string e = """{"id":7,"occurred_at":"2025-01-01T00:00:00Z","aggregate_type":"app\u001b[2J","aggregate_id":"00000000-0000-0000-0000-000000000001","aggregate_seq":1,"type":"app.created\nforged","actor_id":null,"payload":{},"routing_key":null}""";
        await using var hostile = new CannedHttpServer(_ => CannedHttpServer.Response("200 OK", "text/event-stream", $"id: 7\nevent: x\ndata: {e}\n\n"));
        using var user = server.NewSession();
        user.Environment["TRC_URL"] = hostile.Url;
        user.Environment["TRC_TOKEN"] = server.AdminToken;
        user.Environment["TRC_ORG"] = "acme";
        await using var follow = user.Start("events", "--follow");

        var line = await follow.Output.WaitForAsync("app.created", TimeSpan.FromSeconds(30));
        Assert.Equal(0, await follow.StopAsync());

        Assert.Matches(@"^\s+7  2025-01-01 00:00:00Z  app\.created\?forged\s+app\?\[2J/00000000-0000-0000-0000-000000000001$", line);
        Assert.DoesNotContain('\u001b', follow.Error.ToString());
    }

    [Fact]
    public async Task The_next_hint_repeats_the_filters_and_appears_when_only_the_cursor_moved()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        await user.OkAsync("apps", "create", "shop");
        // No event of this type, but the cursor still moves past the ones the filter skipped.
        var page = await user.OkAsync("events", "--type", "env.release_deployed", "--limit", "5");
        Assert.Matches(@"^next: trc events --after \d+ --type env\.release_deployed --limit 5\n$", page.Stderr);
    }
}
