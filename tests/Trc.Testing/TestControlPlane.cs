using System.Net;
using Microsoft.Extensions.Logging;
using Trc.ControlPlane;
using Trc.Core.Domain;
using Trc.Core.Scheduling;

namespace Trc.Testing;

/// <summary>
/// A real <c>trc server</c> on 127.0.0.1 (a free port), over SQLite in a temp directory or over a
/// PostgreSQL schema of its own, with the tests' cluster policy. Disposing it stops the server and
/// removes its files and schema. The test projects' fixtures wrap this with their own clients.
/// </summary>
public sealed class TestControlPlane : IAsyncDisposable
{
    private readonly string _dir;
    private readonly TestSchema? _schema;

    private TestControlPlane(ServerHost host, ServerOptions options, string dir, TestSchema? schema)
    {
        Host = host;
        Options = options;
        _dir = dir;
        _schema = schema;
        AdminToken = host.AdminToken ?? File.ReadAllText(host.AdminTokenFile).Trim();
        NodeToken = host.NodeToken ?? File.ReadAllText(host.NodeTokenFile).Trim();
    }

    /// <summary>Ports the tests' policy allows besides 80 and 443: 2222 starts unused by any test.</summary>
    public static IReadOnlySet<int> AllowedPorts { get; } = new HashSet<int> { 5432, 8443, 2222 };

    public ServerHost Host { get; }

    public ServerOptions Options { get; }

    public Uri Address => Host.Address;

    /// <summary>The platform admin's token.</summary>
    public string AdminToken { get; }

    /// <summary>The shared node token (what agents present).</summary>
    public string NodeToken { get; }

    /// <summary>
    /// Scheduler timings for tests of nodes and rollouts, as the <c>configure</c> of
    /// <see cref="StartAsync"/> (or composed into one): how long a silent node keeps its lease,
    /// how often the scheduler passes when nothing wakes it, and the rollouts' health timeout and
    /// drain. The server's defaults (15 s, 3 s, 5 min, 5 s) are far too slow for tests.
    /// </summary>
    public static ServerOptions WithScheduler(ServerOptions options, TimeSpan nodeLease, TimeSpan interval, TimeSpan healthTimeout, TimeSpan drain) =>
        options with { NodeLease = nodeLease, SchedulerInterval = interval, Rollouts = new RolloutTimings(healthTimeout, drain) };

    /// <summary>Starts a server; <paramref name="configure"/> may change the options first (see <see cref="WithScheduler"/>).</summary>
    public static async Task<TestControlPlane> StartAsync(bool postgres = false, Func<ServerOptions, ServerOptions>? configure = null)
    {
        var dir = Directory.CreateTempSubdirectory("trc-server-").FullName;
        var schema = postgres ? await TestPostgres.CreateSchemaAsync() : null;
        var options = new ServerOptions
        {
            Database = schema?.ConnectionString ?? "sqlite:" + Path.Combine(dir, "trc.db"),
            Listen = "http://127.0.0.1:0",
            DataDirectory = Path.Combine(dir, "data"),
            LogLevel = LogLevel.Warning,
            Policy = ClusterPolicy.Default with
            {
                AllowedPorts = AllowedPorts,
                Ipv4Pool = [IPAddress.Parse("203.0.113.10"), IPAddress.Parse("203.0.113.11"), IPAddress.Parse("203.0.113.12")],
            },
        };
        options = configure?.Invoke(options) ?? options;
        try
        {
            return new TestControlPlane(await ServerHost.StartAsync(options, default), options, dir, schema);
        }
        catch
        {
            if (schema is not null)
            {
                await schema.DisposeAsync();
            }
            Directory.Delete(dir, recursive: true);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        if (_schema is not null)
        {
            await _schema.DisposeAsync();
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open by a straggling connection: the temp directory is left behind.
        }
    }
}
