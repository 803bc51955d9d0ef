using System.Net;
using System.Net.Sockets;
using System.Text;
using Trc.ControlPlane;
using Trc.Core.Domain;
using Trc.Testing;

namespace Trc.Cli.Tests.Commands;

/// <summary>
/// A real <c>trc server</c> (SQLite in a temp dir, a free port on 127.0.0.1) shared by one test
/// class. Tests talk to it through the CLI, each with a session of its own.
/// </summary>
public class CliServerFixture : IAsyncLifetime
{
    /// <summary>Changes the server's options before it starts (a subclass's fixture may).</summary>
    protected virtual ServerOptions Configure(ServerOptions options) => options;

    private TestControlPlane? _server;

    public Uri Url => _server?.Address ?? throw new InvalidOperationException("not started");

    public string AdminToken => _server?.AdminToken ?? throw new InvalidOperationException("not started");

    /// <summary>The shared node token (what agents present).</summary>
    public string NodeToken => _server?.NodeToken ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync() => _server = await TestControlPlane.StartAsync(configure: Configure);

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    /// <summary>A new session: its own HOME and working directory, and only the variables it sets.</summary>
    public CliSession NewSession() => new(this);

    /// <summary>A fresh name for an org, app or hostname label.</summary>
    public static string NewName(string prefix = "o") => prefix + Guid.NewGuid().ToString("N")[..10];

    /// <summary>A port nothing listens on.</summary>
    public static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// One user of the CLI: a temp HOME (so the config file is private to the test), a working
/// directory, and environment variables that live in this object, never in the test process's
/// environment, so parallel tests cannot see each other's.
/// </summary>
public sealed class CliSession : IDisposable
{
    public const string Digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    public CliSession(CliServerFixture server)
    {
        Server = server;
        Root = Directory.CreateTempSubdirectory("trc-cli-user-").FullName;
        Home = Path.Combine(Root, "home");
        WorkingDirectory = Path.Combine(Root, "work");
        Directory.CreateDirectory(Home);
        Directory.CreateDirectory(WorkingDirectory);
        Environment["HOME"] = Home;
    }

    public CliServerFixture Server { get; }

    public string Root { get; }

    public string Home { get; }

    public string WorkingDirectory { get; }

    public Dictionary<string, string?> Environment { get; } = new(StringComparer.Ordinal);

    public string ConfigPath => Path.Combine(Home, ".config", "trc", "config.toml");

    public CliConsole Console(Stream input, Stream output, TextWriter error) => new(input, output, error)
    {
        GetEnvironmentVariable = name => Environment.TryGetValue(name, out var value) ? value : null,
        WorkingDirectory = WorkingDirectory,
    };

    public async Task<CliResult> RunAsync(params string[] args) => await RunWithInputAsync(args, null);

    /// <summary>Starts a command that keeps running (like <c>--follow</c>); the test reads its output as it comes and stops it.</summary>
    public RunningCommand Start(params string[] args) => new(this, args);

    public async Task<CliResult> RunWithInputAsync(string[] args, string? stdin, CancellationToken ct = default)
    {
        using var input = new MemoryStream(stdin is null ? [] : Encoding.UTF8.GetBytes(stdin));
        using var output = new MemoryStream();
        using var error = new StringWriter { NewLine = "\n" };
        var code = await TrcCli.RunAsync(args, Console(input, output, error), ct);
        return new CliResult(code, output.ToArray(), error.ToString());
    }

    /// <summary>Runs and fails the test unless the exit code is 0.</summary>
    public async Task<CliResult> OkAsync(params string[] args)
    {
        var result = await RunAsync(args);
        Assert.True(result.ExitCode == 0, $"trc {string.Join(' ', args)}\n{result}");
        return result;
    }

    /// <summary>Uses TRC_URL and TRC_TOKEN (no config file).</summary>
    public CliSession As(string token)
    {
        Environment["TRC_URL"] = Server.Url.ToString();
        Environment["TRC_TOKEN"] = token;
        return this;
    }

    /// <summary>Logs in as the admin, creates an org and returns a session holding a new token of <paramref name="role"/> in it (TRC_ORG set).</summary>
    public static async Task<CliSession> NewOrgAsync(CliServerFixture server, string org, string role = Roles.Owner)
    {
        using var admin = server.NewSession().As(server.AdminToken);
        await admin.OkAsync("orgs", "create", org);
        var token = (await admin.OkAsync("tokens", "create", "t-" + role, "--role", role, "--org", org)).Stdout.Trim();
        var session = server.NewSession().As(token);
        session.Environment["TRC_ORG"] = org;
        return session;
    }

    /// <summary>An org with app "shop" and env "prod", as an owner with TRC_ORG, TRC_APP and TRC_ENV set.</summary>
    public static async Task<CliSession> NewEnvAsync(CliServerFixture server, string org)
    {
        var session = await NewOrgAsync(server, org);
        await session.OkAsync("apps", "create", "shop");
        await session.OkAsync("envs", "create", "prod", "--app", "shop");
        session.Environment["TRC_APP"] = "shop";
        session.Environment["TRC_ENV"] = "prod";
        return session;
    }

    public string WriteFile(string name, string content) => WriteFile(name, Encoding.UTF8.GetBytes(content));

    public string WriteFile(string name, byte[] content)
    {
        var path = Path.Combine(WorkingDirectory, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
