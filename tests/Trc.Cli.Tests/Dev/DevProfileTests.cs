using System.Runtime.Versioning;
using Trc.Cli.Dev;
using Trc.Cli.Remote;
using Trc.Cli.Tests.Commands;

namespace Trc.Cli.Tests.Dev;

/// <summary>
/// The CLI finding a local <c>trc dev</c> by its profile (<see cref="DevPaths"/>), against a real
/// server: which source of settings wins, and what a broken or missing profile says.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DevProfileTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    /// <summary>A server URL where nothing listens: a profile naming it is one the command did not use, or exit 5.</summary>
    private static string DeadUrl => $"http://127.0.0.1:{CliServerFixture.ClosedPort()}";

    private string Url => server.Url.ToString().TrimEnd('/');

    private static string HomeProfile(CliSession session) => Path.Combine(session.Home, ".local", "share", "trc", "dev", DevPaths.ProfileName);

    /// <summary>A dev directory of the session's own (0755), named by TRC_DEV_DIR: it and its profile's path.</summary>
    private static (string Dir, string Profile) OwnDevDir(CliSession user)
    {
        var dir = Path.Combine(user.Root, "dev");
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, (UnixFileMode)Convert.ToInt32("755", 8));
        user.Environment["TRC_DEV_DIR"] = dir;
        return (dir, Path.Combine(dir, DevPaths.ProfileName));
    }

    /// <summary>A profile (mode 0600) in <see cref="OwnDevDir"/> holding exactly <paramref name="content"/>; its path.</summary>
    private static string RawProfile(CliSession user, string content)
    {
        var (_, profile) = OwnDevDir(user);
        File.WriteAllText(profile, content);
        File.SetUnixFileMode(profile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return profile;
    }

    /// <summary>An org with one app, and an owner token of it.</summary>
    private async Task<(string Org, string Token)> OrgWithAppAsync(string app)
    {
        var org = CliServerFixture.NewName();
        using var owner = await CliSession.NewOrgAsync(server, org);
        await owner.OkAsync("apps", "create", app);
        return (org, owner.Environment["TRC_TOKEN"]!);
    }

    [Fact]
    public async Task A_dev_profile_in_HOME_lets_commands_run_without_login()
    {
        var (org, token) = await OrgWithAppAsync("from-dev");
        using var user = server.NewSession();
        new CliConfig(Url, token, org, "prod").Save(HomeProfile(user));

        var apps = await user.RunAsync("apps");

        Assert.True(apps.ExitCode == 0, apps.ToString());
        Assert.Contains("from-dev", apps.Stdout);
        Assert.DoesNotContain("warning", apps.Stderr);
        Assert.False(File.Exists(user.ConfigPath), "using a dev profile writes no login config");
    }

    [Theory]
    [InlineData("group-writable file")]
    [InlineData("world-writable directory")]
    [InlineData("symlink")]
    public async Task A_dev_profile_others_could_have_written_is_passed_over_and_the_error_says_why(string how)
    {
        var (org, token) = await OrgWithAppAsync("planted");
        using var user = server.NewSession();
        var (devDir, profile) = OwnDevDir(user);
        var real = Path.Combine(user.Root, "elsewhere.toml");
        new CliConfig(Url, token, org, "prod").Save(how == "symlink" ? real : profile);
        string expected;
        switch (how)
        {
            case "group-writable file":
                File.SetUnixFileMode(profile, (UnixFileMode)Convert.ToInt32("620", 8));
                expected = "the file is writable by group or others (mode 620)";
                break;
            case "world-writable directory":
                File.SetUnixFileMode(devDir, (UnixFileMode)Convert.ToInt32("777", 8));
                expected = "its directory is writable by group or others (mode 777)";
                break;
            default:
                File.CreateSymbolicLink(profile, real);
                expected = "it is not a regular file (a symlink?)";
                break;
        }

        var apps = await user.RunAsync("apps");

        Assert.Equal(ExitCodes.NotAuthorized, apps.ExitCode);
        Assert.DoesNotContain("planted", apps.Stdout);
        Assert.Contains($"{profile}: not used: {expected}", apps.Stderr);
    }

    [RootFact]
    public async Task A_dev_profile_of_another_user_is_passed_over()
    {
        var (org, token) = await OrgWithAppAsync("theirs");
        using var user = server.NewSession();
        var (_, profile) = OwnDevDir(user);
        new CliConfig(Url, token, org, "prod").Save(profile);
        Assert.Equal(0, RootOnly.Chown(profile, 65534));

        var apps = await user.RunAsync("apps");

        Assert.Equal(ExitCodes.NotAuthorized, apps.ExitCode);
        Assert.DoesNotContain("theirs", apps.Stdout);
        Assert.Contains($"{profile}: not used: the file belongs to uid 65534, neither you nor root", apps.Stderr);
    }

    [Fact]
    public async Task A_token_in_the_environment_is_never_sent_to_a_dev_profiles_URL()
    {
        var (org, token) = await OrgWithAppAsync("web");
        using var user = server.NewSession();
        new CliConfig(Url, token, org, "prod").Save(HomeProfile(user));
        user.Environment["TRC_TOKEN"] = "trc_not_for_the_profile";

        var apps = await user.RunAsync("apps");

        Assert.Equal(ExitCodes.NotAuthorized, apps.ExitCode);
        Assert.Contains("no server URL", apps.Stderr);
    }


    [Fact]
    public async Task A_dev_profile_naming_a_dead_server_is_used_and_fails_as_unreachable()
    {
        // The counterpart of the tests below: a profile is really read, so one that wins proves something.
        var (org, token) = await OrgWithAppAsync("web");
        using var user = server.NewSession();
        new CliConfig(DeadUrl, token, org, "prod").Save(HomeProfile(user));

        var apps = await user.RunAsync("apps");

        Assert.Equal(ExitCodes.Unavailable, apps.ExitCode);
    }

    [Fact]
    public async Task TRC_DEV_DIR_wins_over_the_profile_in_HOME()
    {
        var (org, token) = await OrgWithAppAsync("from-dev-dir");
        using var user = server.NewSession();
        new CliConfig(DeadUrl, token, org, "prod").Save(HomeProfile(user));
        new CliConfig(Url, token, org, "prod").Save(OwnDevDir(user).Profile);

        var apps = await user.RunAsync("apps");

        Assert.True(apps.ExitCode == 0, apps.ToString());
        Assert.Contains("from-dev-dir", apps.Stdout);
    }

    [Fact]
    public async Task TRC_DEV_DIR_without_a_profile_does_not_fall_back_to_HOME()
    {
        var (org, token) = await OrgWithAppAsync("web");
        using var user = server.NewSession();
        new CliConfig(Url, token, org, "prod").Save(HomeProfile(user));
        user.Environment["TRC_DEV_DIR"] = Path.Combine(user.Root, "empty-dev");

        var apps = await user.RunAsync("apps");

        Assert.Equal(ExitCodes.NotAuthorized, apps.ExitCode);
        Assert.Contains("not logged in", apps.Stderr);
    }

    [Fact]
    public async Task A_login_config_that_names_a_server_wins_over_the_dev_profile()
    {
        var (org, token) = await OrgWithAppAsync("from-login");
        using var user = server.NewSession();
        new CliConfig(DeadUrl, token, org, "prod").Save(HomeProfile(user));
        new CliConfig(Url, token, org, null).Save(user.ConfigPath);

        var apps = await user.RunAsync("apps");

        Assert.True(apps.ExitCode == 0, apps.ToString());
        Assert.Contains("from-login", apps.Stdout);
    }

    [Fact]
    public async Task The_org_and_env_saved_by_login_apply_on_top_of_the_dev_profile()
    {
        // The dev profile holds the admin token and org A; the login config names no server, only org B and env staging.
        var (orgA, _) = await OrgWithAppAsync("only-in-a");
        var orgB = CliServerFixture.NewName();
        using (var owner = await CliSession.NewOrgAsync(server, orgB))
        {
            await owner.OkAsync("apps", "create", "shop");
            await owner.OkAsync("envs", "create", "staging", "--app", "shop");
            await owner.OkAsync("secrets", "set", "ONLY_IN_STAGING=1", "--app", "shop", "--env", "staging");
        }
        using var user = server.NewSession();
        new CliConfig(Url, server.AdminToken, orgA, "prod").Save(HomeProfile(user));
        new CliConfig(null, null, orgB, "staging").Save(user.ConfigPath);

        var apps = await user.RunAsync("apps");
        Assert.True(apps.ExitCode == 0, apps.ToString());
        Assert.Contains("shop", apps.Stdout);
        Assert.DoesNotContain("only-in-a", apps.Stdout);

        var secrets = await user.RunAsync("secrets", "list", "--app", "shop");
        Assert.True(secrets.ExitCode == 0, secrets.ToString());
        Assert.Contains("ONLY_IN_STAGING", secrets.Stdout);

        // Without the login config the profile's own org applies.
        File.Delete(user.ConfigPath);
        var own = await user.OkAsync("apps");
        Assert.Contains("only-in-a", own.Stdout);
    }

    [Fact]
    public async Task TRC_URL_and_TRC_TOKEN_win_over_the_dev_profile()
    {
        var (org, token) = await OrgWithAppAsync("from-env");
        using var user = server.NewSession();
        new CliConfig(DeadUrl, server.AdminToken, org, "prod").Save(HomeProfile(user));
        user.Environment["TRC_URL"] = Url;
        user.Environment["TRC_TOKEN"] = token;
        user.Environment["TRC_ORG"] = org;

        var apps = await user.RunAsync("apps");

        Assert.True(apps.ExitCode == 0, apps.ToString());
        Assert.Contains("from-env", apps.Stdout);
    }

    [Fact]
    public async Task TRC_URL_alone_never_borrows_the_dev_profiles_token()
    {
        // The dev profile's token is for the dev server: sending it to the server TRC_URL names would leak it.
        var (org, token) = await OrgWithAppAsync("web");
        using var user = server.NewSession();
        new CliConfig(Url, token, org, "prod").Save(HomeProfile(user));
        user.Environment["TRC_URL"] = Url;

        var apps = await user.RunAsync("apps");

        Assert.Equal(ExitCodes.NotAuthorized, apps.ExitCode);
        Assert.Contains("not logged in", apps.Stderr);
        Assert.Contains("no token", apps.Stderr);
    }

    [Theory]
    [InlineData("url = [", "expected")]
    [InlineData("url = 5\n", "url must be a string")]
    [InlineData("oversized", "bytes; a trc config is at most")]
    public async Task A_broken_dev_profile_is_a_not_logged_in_error_that_names_the_problem(string content, string problem)
    {
        using var user = server.NewSession();
        var profile = RawProfile(user, content == "oversized" ? "# " + new string('x', 70 * 1024) + "\n" : content);

        var apps = await user.RunAsync("apps");

        Assert.Equal(ExitCodes.NotAuthorized, apps.ExitCode);
        Assert.Empty(apps.Stdout);
        Assert.StartsWith("trc: not logged in", apps.Stderr);
        Assert.Contains("the local trc dev's profile is unusable: " + profile, apps.Stderr);
        Assert.Contains(problem, apps.Stderr);
        Assert.DoesNotContain("   at ", apps.Stderr);
    }

    [Theory]
    [InlineData("url = \"ftp://example.com\"\ntoken = \"t\"\n", ExitCodes.Invalid, "the server URL \"ftp://example.com\" (")]
    [InlineData("url = \"http://127.0.0.1:1\"\n", ExitCodes.NotAuthorized, "no token in the environment or in ")]
    [InlineData("url = \"http://127.0.0.1:1\"\ntoken = \"a b\"\n", ExitCodes.NotAuthorized, "the token in ")]
    public async Task A_wrong_value_in_the_dev_profile_is_said_with_the_profiles_path(string content, int code, string message)
    {
        using var user = server.NewSession();
        var profile = RawProfile(user, content);

        var apps = await user.RunAsync("apps");

        Assert.Equal(code, apps.ExitCode);
        Assert.Contains(message + profile, apps.Stderr);
        Assert.DoesNotContain("config.toml", apps.Stderr);
    }

    [Fact]
    public async Task Without_any_profile_the_error_mentions_trc_dev()
    {
        using var user = server.NewSession();
        // TRC_DEV_DIR, so that a trc dev running on this machine (its /var/lib/trc/dev profile) cannot answer instead.
        user.Environment["TRC_DEV_DIR"] = Path.Combine(user.Root, "no-dev");

        var apps = await user.RunAsync("apps");

        Assert.Equal(ExitCodes.NotAuthorized, apps.ExitCode);
        Assert.Contains("not logged in", apps.Stderr);
        Assert.Contains("start trc dev on this machine", apps.Stderr);
        Assert.Contains("trc login", apps.Stderr);
        Assert.DoesNotContain("profile is unusable", apps.Stderr);
    }

    // ---- DevPaths ----------------------------------------------------------------------------------

    private static Func<string, string?> Env(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void A_relative_TRC_DEV_DIR_is_made_absolute()
    {
        var environment = Env(("TRC_DEV_DIR", "some/dev"), ("HOME", "/home/someone"));

        var directory = DevPaths.Directory(environment);

        Assert.True(Path.IsPathFullyQualified(directory), directory);
        Assert.Equal(Path.Combine(Environment.CurrentDirectory, "some", "dev"), directory);
        Assert.Equal([Path.Combine(directory, "cli.toml")], DevPaths.ProfileCandidates(environment));
    }

    [Fact]
    public void An_absolute_TRC_DEV_DIR_is_the_only_profile_candidate()
    {
        var environment = Env(("TRC_DEV_DIR", "/srv/trc-dev/"), ("HOME", "/home/someone"));

        Assert.Equal("/srv/trc-dev/", DevPaths.Directory(environment));
        Assert.Equal(["/srv/trc-dev/cli.toml"], DevPaths.ProfileCandidates(environment));
    }

    [Fact]
    public void Without_TRC_DEV_DIR_the_users_profile_comes_before_roots()
    {
        foreach (var environment in new[] { Env(("HOME", "/home/someone")), Env(("HOME", "/home/someone"), ("TRC_DEV_DIR", "")) })
        {
            Assert.Equal(["/home/someone/.local/share/trc/dev/cli.toml", "/var/lib/trc/dev/cli.toml"], DevPaths.ProfileCandidates(environment));
            Assert.Equal(Environment.IsPrivilegedProcess ? "/var/lib/trc/dev" : "/home/someone/.local/share/trc/dev", DevPaths.Directory(environment));
        }
    }

    [Fact]
    public void Without_HOME_the_users_profile_is_under_the_accounts_home()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

        var candidates = DevPaths.ProfileCandidates(Env());

        Assert.Equal([Path.Combine(home, ".local", "share", "trc", "dev", "cli.toml"), "/var/lib/trc/dev/cli.toml"], candidates);
    }
}
