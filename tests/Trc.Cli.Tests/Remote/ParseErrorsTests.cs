using Trc.Cli.Tests.Commands;

namespace Trc.Cli.Tests.Remote;

/// <summary>A mistyped command line is a usage error whose message never repeats a secret or a token.</summary>
public sealed class ParseErrorsTests
{
    private const string Token = "trc_0123456789abcdef0123456789abcdef_SECRETSECRETSECRETSECRETSECRETSECRETSECRETS";

    [Fact]
    public void A_typo_before_a_secret_shows_its_key_but_not_its_value()
    {
        var result = CliRunner.Run(["secret", "set", "DB_PASSWORD=hunter2"]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("'DB_PASSWORD=[redacted]'", result.Stderr);
        Assert.DoesNotContain("hunter2", result.Stderr + result.Stdout);
    }

    [Theory]
    [InlineData("logn", "--url", "http://127.0.0.1:1", "--token", Token)]
    [InlineData("login", "--url", "http://127.0.0.1:1", "--token=" + Token, "--bogus")]
    [InlineData("login", "--url", "http://127.0.0.1:1", "--token:" + Token, "--bogus")]
    [InlineData("whoami", "--token", Token)]
    public void A_typo_near_a_token_never_prints_it(params string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.Equal(2, result.ExitCode);
        Assert.DoesNotContain("SECRET", result.Stderr + result.Stdout);
        Assert.Contains("Run 'trc --help'", result.Stderr);
    }

    [Fact]
    public async Task The_async_entry_point_redacts_the_same_way()
    {
        using var session = new CliSession(new CliServerFixture());
        var result = await session.RunAsync("secrets", "sett", "API_KEY=sk-live-123456", "--token", Token);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("API_KEY=[redacted]", result.Stderr);
        Assert.DoesNotContain("sk-live", result.Stderr);
        Assert.DoesNotContain("SECRET", result.Stderr);
    }

    [Fact]
    public void Other_parse_errors_are_printed_as_before()
    {
        var result = CliRunner.Run(["routes", "create", "--backend-port", "x"]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("'x'", result.Stderr);
    }
}
