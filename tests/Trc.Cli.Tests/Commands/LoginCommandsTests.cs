using System.Text.Json;
using Trc.Core.Domain;

namespace Trc.Cli.Tests.Commands;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LoginCommandsTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public async Task Login_checks_the_token_and_writes_a_config_readable_by_the_owner_only()
    {
        var org = CliServerFixture.NewName();
        var token = await OwnerTokenAsync(org);
        using var user = server.NewSession();

        var login = await user.RunWithInputAsync(["login", "--url", server.Url.ToString()], token + "\n");

        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.Contains($"org {org}", login.Stdout);
        Assert.DoesNotContain(token, login.Stdout + login.Stderr);
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(user.ConfigPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(user.ConfigPath)!));
        var config = File.ReadAllText(user.ConfigPath);
        Assert.Contains($"token = \"{token}\"", config);
        Assert.Contains($"org = \"{org}\"", config);
        Assert.Contains($"url = \"{server.Url.ToString().TrimEnd('/')}\"", config);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(user.ConfigPath)!, "*.tmp"));

        // Later commands need nothing but the file.
        var whoami = await user.OkAsync("whoami", "--json");
        using var json = JsonDocument.Parse(whoami.Stdout);
        Assert.Equal(org, json.RootElement.GetProperty("org").GetString());
        Assert.Equal(Roles.Owner, json.RootElement.GetProperty("role").GetString());
    }

    [Fact]
    public async Task Login_again_replaces_a_too_open_config_with_a_0600_one()
    {
        var org = CliServerFixture.NewName();
        var token = await OwnerTokenAsync(org);
        using var user = server.NewSession();
        Directory.CreateDirectory(Path.GetDirectoryName(user.ConfigPath)!);
        File.WriteAllText(user.ConfigPath, "url = \"http://old.example.com\"\n");
        File.SetUnixFileMode(user.ConfigPath, OwnerReadWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var login = await user.RunWithInputAsync(["login", "--url", server.Url.ToString(), "--env", "prod"], token);

        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(user.ConfigPath));
        Assert.Contains("env = \"prod\"", File.ReadAllText(user.ConfigPath));
        Assert.DoesNotContain("old.example.com", File.ReadAllText(user.ConfigPath));
    }

    [Fact]
    public async Task A_config_that_others_can_read_gets_a_warning()
    {
        var org = CliServerFixture.NewName();
        var token = await OwnerTokenAsync(org);
        using var user = server.NewSession();
        await user.RunWithInputAsync(["login", "--url", server.Url.ToString()], token);
        File.SetUnixFileMode(user.ConfigPath, OwnerReadWrite | UnixFileMode.OtherRead);

        var apps = await user.RunAsync("apps");

        Assert.Equal(0, apps.ExitCode);
        Assert.Contains("chmod 600", apps.Stderr);
    }

    [Fact]
    public async Task Login_writes_under_XDG_CONFIG_HOME_when_it_is_set()
    {
        var token = await OwnerTokenAsync(CliServerFixture.NewName());
        using var user = server.NewSession();
        var xdg = Path.Combine(user.Root, "xdg");
        user.Environment["XDG_CONFIG_HOME"] = xdg;

        var login = await user.RunWithInputAsync(["login", "--url", server.Url.ToString(), "--token", token], null);

        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.True(File.Exists(Path.Combine(xdg, "trc", "config.toml")));
        Assert.False(File.Exists(user.ConfigPath));
    }

    [Fact]
    public async Task A_refused_token_is_exit_4_and_writes_no_config()
    {
        using var user = server.NewSession();
        var bogus = "trc_0123456789abcdef0123456789abcdef_" + new string('x', 43);
        var login = await user.RunWithInputAsync(["login", "--url", server.Url.ToString()], bogus);
        Assert.Equal(4, login.ExitCode);
        Assert.Contains("401 unauthenticated", login.Stderr);
        Assert.DoesNotContain(bogus, login.Stderr);
        Assert.False(File.Exists(user.ConfigPath));
    }

    [Fact]
    public async Task Login_to_an_unreachable_server_is_exit_5()
    {
        using var user = server.NewSession();
        var url = $"http://127.0.0.1:{CliServerFixture.ClosedPort()}";
        var login = await user.RunWithInputAsync(["login", "--url", url], server.AdminToken);
        Assert.Equal(5, login.ExitCode);
        Assert.Contains($"cannot reach the trc server at {url}", login.Stderr);
        Assert.False(File.Exists(user.ConfigPath));
    }

    [Fact]
    public async Task Login_with_another_orgs_name_is_refused()
    {
        var token = await OwnerTokenAsync(CliServerFixture.NewName());
        using var user = server.NewSession();
        var login = await user.RunWithInputAsync(["login", "--url", server.Url.ToString(), "--org", "someone-else"], token);
        Assert.Equal(1, login.ExitCode);
        Assert.Contains("this token belongs to org", login.Stderr);
    }

    [Fact]
    public async Task Environment_variables_override_the_config_file()
    {
        var mine = CliServerFixture.NewName();
        var token = await OwnerTokenAsync(mine);
        using var user = server.NewSession();
        await user.RunWithInputAsync(["login", "--url", $"http://127.0.0.1:{CliServerFixture.ClosedPort()}", "--token", token], null);
        Assert.False(File.Exists(user.ConfigPath), "login against a dead server saves nothing");

        await user.RunWithInputAsync(["login", "--url", server.Url.ToString(), "--token", token], null);
        user.Environment["TRC_URL"] = $"http://127.0.0.1:{CliServerFixture.ClosedPort()}";
        Assert.Equal(5, (await user.RunAsync("apps")).ExitCode);

        user.Environment.Remove("TRC_URL");
        user.Environment["TRC_TOKEN"] = server.AdminToken;
        user.Environment["TRC_ORG"] = mine;
        var whoami = await user.OkAsync("whoami");
        Assert.Contains("admin", whoami.Stdout);
        Assert.Equal(0, (await user.RunAsync("apps")).ExitCode);
    }

    [Fact]
    public async Task Plain_http_to_another_host_is_warned_about_but_not_refused()
    {
        using var user = server.NewSession();
        // A name that never resolves: the warning comes before the (failing) call.
        var login = await user.RunWithInputAsync(["login", "--url", "http://trc.example.invalid:7080"], server.AdminToken);
        Assert.Equal(5, login.ExitCode);
        Assert.StartsWith("trc: warning: http://trc.example.invalid:7080 is plain http: the token", login.Stderr);

        user.Environment["TRC_URL"] = "http://user:pass@trc.example.invalid";
        user.Environment["TRC_TOKEN"] = server.AdminToken;
        var command = await user.RunAsync("orgs");
        Assert.Equal(5, command.ExitCode);
        Assert.Contains("trc: warning: http://trc.example.invalid is plain http", command.Stderr);
        Assert.DoesNotContain("pass", command.Stderr);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")]
    public async Task Plain_http_to_this_machine_is_not_warned_about(string host)
    {
        using var user = server.NewSession();
        var login = await user.RunWithInputAsync(["login", "--url", $"http://{host}:{server.Url.Port}"], server.AdminToken);
        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.DoesNotContain("warning", login.Stderr);
        Assert.DoesNotContain("warning", (await user.OkAsync("orgs")).Stderr);
    }

    [Fact]
    public async Task An_empty_login_option_is_a_usage_error()
    {
        using var user = server.NewSession();
        var login = await user.RunWithInputAsync(["login", "--url", server.Url.ToString(), "--env", ""], server.AdminToken);
        Assert.Equal(2, login.ExitCode);
        Assert.Contains("--env is empty", login.Stderr);
        Assert.False(File.Exists(user.ConfigPath));
    }

    [Fact]
    public async Task Without_a_login_a_command_says_so_and_exits_4()
    {
        using var user = server.NewSession();
        var result = await user.RunAsync("apps");
        Assert.Equal(4, result.ExitCode);
        Assert.Contains("not logged in", result.Stderr);
        Assert.Contains("trc login", result.Stderr);
    }

    private async Task<string> OwnerTokenAsync(string org)
    {
        using var admin = server.NewSession().As(server.AdminToken);
        await admin.OkAsync("orgs", "create", org);
        return (await admin.OkAsync("tokens", "create", "laptop", "--role", Roles.Owner, "--org", org)).Stdout.Trim();
    }
}
