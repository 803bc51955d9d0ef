using System.Text;
using System.Text.Json;
using Trc.Core.Domain;
using Trc.Core.Secrets;

namespace Trc.Cli.Tests.Commands;

/// <summary><c>trc secrets set|unset|list|render --env</c> against a real server.</summary>
public sealed class SecretsServerCommandsTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    [Fact]
    public async Task Set_list_and_render_round_trip_exact_bytes_and_never_print_a_value()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        byte[] key = [0, 1, 2, 0xFF, (byte)'\n', (byte)'\r', .. "-----END-----"u8];
        user.WriteFile("tls.key", key);

        var set = await user.OkAsync("secrets", "set", "DB_PASSWORD=hunter2=x y", "EMPTY=", "--from-file", "TLS_KEY=tls.key");

        Assert.Contains("Set DB_PASSWORD, EMPTY, TLS_KEY", set.Stdout);
        Assert.Contains("version 1", set.Stdout);
        Assert.DoesNotContain("hunter2", set.Stdout + set.Stderr);

        var list = await user.OkAsync("secrets", "list");
        Assert.Equal("Version 1, 3 secrets:\n  DB_PASSWORD\n  EMPTY\n  TLS_KEY\n", list.Stdout);
        using (var json = JsonDocument.Parse((await user.OkAsync("secrets", "list", "--json")).Stdout))
        {
            Assert.Equal(1, json.RootElement.GetProperty("version").GetInt32());
        }

        var render = await user.OkAsync("secrets", "render", "--env", "prod");
        var parsed = SecretsFile.Parse(render.StdoutBytes);
        Assert.True(parsed.IsSuccess, parsed.Error?.ToString());
        var values = parsed.Secrets!.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal(key, values["TLS_KEY"]);
        Assert.Equal("hunter2=x y", Encoding.UTF8.GetString(values["DB_PASSWORD"]));
        Assert.Empty(values["EMPTY"]);
        Assert.Equal(SecretsFile.Encode(values), render.StdoutBytes);

        var unset = await user.OkAsync("secrets", "unset", "EMPTY");
        Assert.Contains("version 2", unset.Stdout);
        Assert.DoesNotContain("EMPTY", (await user.OkAsync("secrets", "list")).Stdout);
    }

    [Fact]
    public async Task Render_from_the_server_is_for_owners_only()
    {
        var org = CliServerFixture.NewName();
        using var owner = await CliSession.NewEnvAsync(server, org);
        using var admin = server.NewSession().As(server.AdminToken);
        var token = (await admin.OkAsync("tokens", "create", "ci", "--role", Roles.Deployer, "--org", org)).Stdout.Trim();
        using var deployer = server.NewSession().As(token);
        deployer.Environment["TRC_ORG"] = org;
        deployer.Environment["TRC_APP"] = "shop";

        await deployer.OkAsync("secrets", "set", "A=1", "--env", "prod");
        var refused = await deployer.RunAsync("secrets", "render", "--env", "prod");

        Assert.Equal(4, refused.ExitCode);
        Assert.Empty(refused.StdoutBytes);
        Assert.Contains("owner", refused.Stderr);
        Assert.Equal("# TRC_SECRETS_V1\nA=1\n", (await owner.OkAsync("secrets", "render", "--env", "prod")).Stdout);
    }

    [Fact]
    public async Task Render_with_an_empty_env_is_a_usage_error_and_never_renders_the_default_env()
    {
        // A script's --env "$E" with E unset: TRC_ENV=prod must not be used instead.
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        await user.OkAsync("secrets", "set", "DB_PASSWORD=hunter2");
        Assert.Equal("prod", user.Environment["TRC_ENV"]);

        foreach (var empty in new[] { "", " " })
        {
            var render = await user.RunAsync("secrets", "render", "--env", empty);
            Assert.Equal(2, render.ExitCode);
            Assert.Empty(render.StdoutBytes);
            Assert.Contains("--env is empty", render.Stderr);
            Assert.DoesNotContain("hunter2", render.Stderr);
        }
    }

    [Theory]
    [InlineData("routes", "--org")]
    [InlineData("routes", "--app")]
    [InlineData("secrets", "list", "--env")]
    [InlineData("events", "--org")]
    public async Task An_empty_org_app_or_env_is_a_usage_error(params string[] args)
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var result = await user.RunAsync([.. args, ""]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"{args[^1]} is empty", result.Stderr);
        Assert.Empty(result.StdoutBytes);
    }

    [Fact]
    public async Task Render_takes_exactly_one_source()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var json = user.WriteFile("s.json", "{\"A\": \"1\"}");
        var both = await user.RunAsync("secrets", "render", "--env", "prod", "--from-json", json);
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("not both", both.Stderr);

        // --from-json stays offline: it needs no server and no login.
        using var offline = server.NewSession();
        var local = await offline.RunAsync("secrets", "render", "--from-json", json);
        Assert.Equal(0, local.ExitCode);
        Assert.Equal("# TRC_SECRETS_V1\nA=1\n", local.Stdout);
    }

    [Theory]
    [InlineData("lower=x", 1, "key 'lower' is not valid")]
    [InlineData("NOEQUALS", 2, "KEY=VALUE")]
    public async Task A_bad_argument_is_refused_before_anything_is_sent(string argument, int exit, string expected)
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var result = await user.RunAsync("secrets", "set", argument);
        Assert.Equal(exit, result.ExitCode);
        Assert.Contains(expected, result.Stderr);
        Assert.Contains("Version 0", (await user.OkAsync("secrets", "list")).Stdout);
    }

    [Fact]
    public async Task Unsetting_a_secret_that_is_not_set_names_it()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var result = await user.RunAsync("secrets", "unset", "NOPE");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("NOPE is not set", result.Stderr);
        Assert.Contains("field: unset[0]", result.Stderr);
    }
}
