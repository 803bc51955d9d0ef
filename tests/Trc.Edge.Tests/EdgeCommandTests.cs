using System.Net;
using System.Net.Sockets;
using Trc.Cli;

namespace Trc.Edge.Tests;

/// <summary><c>trc edge</c>'s refusals, in-process: each names what is wrong and exits with its code.</summary>
public sealed class EdgeCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("trc-edge-cli-").FullName;

    [Fact]
    public async Task A_routes_file_with_a_problem_is_exit_1_naming_line_column_and_key()
    {
        var routes = Path.Combine(_dir, "routes.toml");
        File.WriteAllText(routes, "[[routes]]\nhostname = \"a.example.com\"\nlisten = \"[::]:443\"\nbackends = [\"db.internal:5432\"]\n");
        var (code, _, error) = await RunAsync("edge", "--routes", routes);
        Assert.Equal(ExitCodes.Invalid, code);
        Assert.Contains($"trc edge: {routes}:4:13: routes[0].backends[0]: \"db.internal\" is not an IP address", error);
    }

    [Fact]
    public async Task A_missing_routes_file_is_exit_1_naming_it()
    {
        var missing = Path.Combine(_dir, "nope.toml");
        var (code, _, error) = await RunAsync("edge", "--routes", missing);
        Assert.Equal(ExitCodes.Invalid, code);
        Assert.Contains($"{missing}: cannot read the routes file", error);
    }

    [Fact]
    public async Task A_bad_metrics_address_is_a_usage_error()
    {
        var (code, _, error) = await RunAsync("edge", "--routes", Path.Combine(_dir, "any.toml"), "--metrics", "localhost:9180");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--metrics: \"localhost\" is not an IP address", error);
    }

    [Fact]
    public async Task A_port_that_is_taken_is_exit_3_naming_it()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var taken = (IPEndPoint)squatter.LocalEndpoint;
        var routes = Path.Combine(_dir, "routes.toml");
        File.WriteAllText(routes, $"[[routes]]\nprotocol = \"tcp_raw\"\nlisten = \"{taken}\"\nbackends = [\"127.0.0.1:1\"]\n");
        var (code, _, error) = await RunAsync("edge", "--routes", routes);
        Assert.Equal(ExitCodes.IoError, code);
        Assert.Contains($"trc edge: cannot listen on {taken}", error);
    }

    private async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        using var input = new MemoryStream();
        using var output = new MemoryStream();
        using var error = new StringWriter();
        var console = new CliConsole(input, output, error) { WorkingDirectory = _dir };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var code = await TrcCli.RunAsync(args, console, timeout.Token);
        return (code, System.Text.Encoding.UTF8.GetString(output.ToArray()), error.ToString());
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
