using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Trc.ControlPlane.Api;
using Trc.ControlPlane.Auth;
using Trc.ControlPlane.Catalog;
using Trc.ControlPlane.Commands;
using Trc.ControlPlane.Logs;
using Trc.ControlPlane.Nodes;
using Trc.ControlPlane.Scheduling;
using Trc.ControlPlane.Secrets;
using Trc.Core.Api;
using Trc.Core.Crypto;
using Trc.Core.Domain;
using Trc.Core.Scheduling;
using Trc.EventStore;
using Trc.EventStore.Postgres;
using Trc.EventStore.Projections;
using Trc.EventStore.Sqlite;

namespace Trc.ControlPlane;

/// <summary>Settings of <c>trc server</c>.</summary>
public sealed record ServerOptions
{
    /// <summary>
    /// The database: <c>sqlite:PATH</c> for the embedded store, or PostgreSQL as
    /// <c>postgres://user:password@host:port/db?search_path=schema</c> or an Npgsql connection string.
    /// </summary>
    public required string Database { get; init; }

    /// <summary>Where to listen, like <c>http://127.0.0.1:7080</c> (port 0 picks a free port).</summary>
    public string Listen { get; init; } = "http://127.0.0.1:7080";

    /// <summary>The server's own files: master key and admin token unless placed elsewhere.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>The master key file (created on first start when missing). Default: DATA/master.key.</summary>
    public string? MasterKeyFile { get; init; }

    /// <summary>Where the first start writes the admin token. Default: DATA/admin-token.</summary>
    public string? AdminTokenFile { get; init; }

    /// <summary>The cluster policy.</summary>
    public ClusterPolicy Policy { get; init; } = ClusterPolicy.Default;

    /// <summary>Largest request body accepted.</summary>
    public long MaxRequestBodyBytes { get; init; } = 1 << 20;

    /// <summary>How long a write waits for the catalog before answering 503.</summary>
    public TimeSpan ReadYourWritesTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Lowest level logged (ASP.NET's own chatter stays at warnings).</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Where the first start writes the shared node token. Default: <c>node-token</c> beside the admin token.</summary>
    public string? NodeTokenFile { get; init; }

    /// <summary>The cluster overlay's ULA /48; node k gets its k-th /64.</summary>
    public OverlayNetwork OverlayPrefix { get; init; } = OverlayNetwork.Default;

    /// <summary>A node not heard from for this long is <c>silent</c> and gets no new instances.</summary>
    public TimeSpan NodeLease { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How often the scheduler looks at every env even when nothing woke it.</summary>
    public TimeSpan SchedulerInterval { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>How long a rollout's instances have to become ready, and how long the ones before drain after the switch.</summary>
    public RolloutTimings Rollouts { get; init; } = RolloutTimings.Default;

    /// <summary>Log lines received longer ago than this are deleted.</summary>
    public TimeSpan LogRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Most log lines kept per env; the oldest go first.</summary>
    public int LogMaxLinesPerEnv { get; init; } = 100_000;

    /// <summary>How often log retention runs.</summary>
    public TimeSpan LogSweepInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Largest body of a log batch (1,000 lines of up to 16 KiB, as JSON).</summary>
    public long MaxLogBatchBytes { get; init; } = 24L << 20;

    /// <summary>The clock of heartbeats, leases and log retention.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// A running <c>trc server</c>: the store, the catalog projection, and the /v1 API on Kestrel.
/// Several may share one PostgreSQL database; each projection is led by one of them.
/// </summary>
public sealed partial class ServerHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ProjectionRunner _runner;
    private readonly IEventStore _store;
    private readonly MasterKey _masterKey;

    private ServerHost(WebApplication app, ProjectionRunner runner, IEventStore store, MasterKey masterKey, Uri address, BootstrappedToken admin, BootstrappedToken node,
        SchedulerLoop scheduler, LogSweeper sweeper)
    {
        _app = app;
        _runner = runner;
        _store = store;
        _masterKey = masterKey;
        Address = address;
        AdminToken = admin.Token;
        AdminTokenFile = admin.File;
        NodeToken = node.Token;
        NodeTokenFile = node.File;
        Scheduler = scheduler;
        LogSweeper = sweeper;
    }

    /// <summary>The base address the API listens on.</summary>
    public Uri Address { get; }

    /// <summary>The admin token, when this start created it (it is also in <see cref="AdminTokenFile"/>).</summary>
    public string? AdminToken { get; }

    /// <summary>Where the admin token was written on first start.</summary>
    public string AdminTokenFile { get; }

    /// <summary>The shared node token, when this start created it (it is also in <see cref="NodeTokenFile"/>).</summary>
    public string? NodeToken { get; }

    /// <summary>Where the node token was written on first start.</summary>
    public string NodeTokenFile { get; }

    /// <summary>The scheduler loop.</summary>
    internal SchedulerLoop Scheduler { get; }

    /// <summary>The log retention loop.</summary>
    internal LogSweeper LogSweeper { get; }

    /// <summary>The event store (for tests and tools in the same process).</summary>
    public IEventStore Store => _store;

    /// <summary>Opens the store, prepares the catalog and starts listening.</summary>
    public static async Task<ServerHost> StartAsync(ServerOptions options, CancellationToken ct)
    {
        Directory.CreateDirectory(options.DataDirectory);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(options.DataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(options.LogLevel));
        var store = OpenStore(options.Database, loggerFactory);
        await store.InitializeAsync(ct).ConfigureAwait(false);
        var database = (ISqlDatabase)store;

        var keyFile = options.MasterKeyFile ?? Path.Combine(options.DataDirectory, "master.key");
        MasterKey masterKey;
        try
        {
            masterKey = await OpenMasterKeyAsync(database, keyFile, ct).ConfigureAwait(false);
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var vault = new SecretVault(database, masterKey);

        var projections = ProjectionBackend.For(store);
        var runner = new ProjectionRunner(projections, [new CatalogProjection()], new ProjectionRunnerOptions
        {
            LoggerFactory = loggerFactory,
            LeaseRetryInterval = TimeSpan.FromMilliseconds(500),
        });
        await runner.StartAsync(ct).ConfigureAwait(false);
        var commands = new CommandRunner(store, projections, options.ReadYourWritesTimeout);
        var catalog = new CatalogReader(database);

        var logs = new LogStore(database, options.Time);
        await logs.InitializeAsync(ct).ConfigureAwait(false);
        var liveness = new NodeLiveness(database, options.NodeLease, options.Time);
        await liveness.InitializeAsync(ct).ConfigureAwait(false);

        var adminTokenFile = options.AdminTokenFile ?? Path.Combine(options.DataDirectory, "admin-token");
        var admin = await BootstrapTokenAsync(store, commands, "admin-token", "admin", Roles.Admin, adminTokenFile, ct).ConfigureAwait(false);
        var nodeTokenFile = options.NodeTokenFile ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(adminTokenFile))!, "node-token");
        var node = await BootstrapTokenAsync(store, commands, "node-token", "node", Roles.Node, nodeTokenFile, ct).ConfigureAwait(false);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls(options.Listen);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes + 1;
            k.AddServerHeader = false;
        });
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull;
            // As the API reads bodies (ApiJson.Options), so the OpenAPI document says what is accepted:
            // numbers are numbers, never strings of digits.
            o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
            o.SerializerOptions.UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow;
            o.SerializerOptions.RespectNullableAnnotations = true;
        });
        builder.Services.AddOpenApi("v1", o => o.AddDocumentTransformer(OpenApiDocumentTransformer.TransformAsync));
        var app = builder.Build();
        var logger = loggerFactory.CreateLogger<ServerHost>();
        var authenticator = new Authenticator(catalog);

        app.Use((http, next) => Problems.HandleAsync(http, () => next(http), logger));
        app.MapOpenApi("/{documentName}/openapi.json");
        app.Use(async (http, next) =>
        {
            var path = http.Request.Path;
            if (path.StartsWithSegments("/v1") && !path.Equals(ApiPaths.OpenApi, StringComparison.Ordinal))
            {
                var principal = await authenticator.AuthenticateAsync(http.Request.Headers.Authorization.ToString() is { Length: > 0 } h ? h : null, http.RequestAborted);
                if (principal is null)
                {
                    http.Response.Headers.WWWAuthenticate = "Bearer realm=\"trc\"";
                    await Problems.Result(401, "unauthenticated", "send a valid API token as Authorization: Bearer <token>").ExecuteAsync(http);
                    return;
                }
                if (principal.IsNode && !NodeEndpoints.NodeMayCall(http.Request.Method, path))
                {
                    // One answer for every other path, existing or not: a node token learns nothing.
                    await Problems.Result(403, "forbidden", "a node token may only call the node endpoints (/v1/nodes/...) and read its node's change stream").ExecuteAsync(http);
                    return;
                }
                Caller.Set(http, principal);
            }
            await next(http);
        });
        app.MapGet("/healthz", () => Results.Text("ok\n")).ExcludeFromDescription();
        Endpoints.Map(app, new ApiServices(store, catalog, commands, vault, options.Policy, options.MaxRequestBodyBytes)
        {
            Liveness = liveness,
            Logs = logs,
            Overlay = options.OverlayPrefix,
            MaxLogBatchBytes = options.MaxLogBatchBytes,
            Time = options.Time,
        });
        await app.StartAsync(ct).ConfigureAwait(false);

        var scheduler = new SchedulerLoop(store, projections, catalog, commands, liveness, logs,
            new SchedulerOptions(options.SchedulerInterval, options.Rollouts, options.Policy.CpuOvercommit, options.Policy.MemoryBufferPercent),
            options.Time, loggerFactory.CreateLogger<SchedulerLoop>());
        scheduler.Start();
        var sweeper = new LogSweeper(logs, options.LogRetention, options.LogMaxLinesPerEnv, options.LogSweepInterval, options.Time, loggerFactory.CreateLogger<LogSweeper>());
        sweeper.Start();

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        LogListening(logger, address);
        return new ServerHost(app, runner, store, masterKey, new Uri(address), admin, node, scheduler, sweeper);
    }

    /// <summary>A platform token made (or found) at start-up, and the file it was written to.</summary>
    private sealed record BootstrappedToken(string? Token, string File);

    /// <summary>
    /// The master key: the file's, or a new one on the very first start. Every server of one
    /// database must hold the same key, so a server whose key (or lack of one) does not match the
    /// sealed secrets already stored refuses to start rather than seal new secrets with another key.
    /// </summary>
    private static async Task<MasterKey> OpenMasterKeyAsync(ISqlDatabase database, string keyFile, CancellationToken ct)
    {
        await SecretVault.CreateTableAsync(database, ct).ConfigureAwait(false);
        var inUse = await SecretVault.MasterKeyIdsAsync(database, ct).ConfigureAwait(false);
        if (!File.Exists(keyFile))
        {
            if (inUse.Count > 0)
            {
                throw new ServerConfigException(
                    $"no master key at {keyFile}, but this database holds secrets sealed with master key {string.Join(", ", inUse)}: "
                    + "every server of one database needs the same key; copy it from the first server (mode 0600 or 0400) or point --master-key-file at it");
            }
            return MasterKey.CreateFile(keyFile);
        }
        var key = MasterKey.LoadFile(keyFile);
        var foreign = inUse.Where(id => id != key.Id).ToList();
        if (foreign.Count > 0)
        {
            key.Dispose();
            throw new ServerConfigException(
                $"{keyFile} is master key {key.Id}, but this database holds secrets sealed with master key {string.Join(", ", foreign)}: "
                + "use the key the database was first started with");
        }
        return key;
    }

    /// <summary>The store named by a database setting.</summary>
    public static IEventStore OpenStore(string database, ILoggerFactory loggerFactory)
    {
        if (database.StartsWith("sqlite:", StringComparison.Ordinal))
        {
            var path = database["sqlite:".Length..];
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            return new SqliteEventStore(new SqliteEventStoreOptions { Path = path });
        }
        return new PostgresEventStore(new PostgresEventStoreOptions { ConnectionString = ToNpgsql(database), LoggerFactory = loggerFactory });
    }

    /// <summary>A <c>postgres://</c> URL as an Npgsql connection string (other strings pass through).</summary>
    public static string ToNpgsql(string database)
    {
        if (!database.StartsWith("postgres://", StringComparison.Ordinal) && !database.StartsWith("postgresql://", StringComparison.Ordinal))
        {
            return database;
        }
        var uri = new Uri(database);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')),
        };
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                builder.Password = Uri.UnescapeDataString(parts[1]);
            }
        }
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            if (kv[0] == "search_path" && kv.Length == 2)
            {
                builder.SearchPath = Uri.UnescapeDataString(kv[1]);
            }
        }
        return builder.ConnectionString;
    }

    /// <summary>
    /// On the first start of a database, creates a platform token (the admin's, the nodes' shared
    /// one) and writes it to a file readable only by the operator (never to logs). The token's
    /// aggregate id is fixed, so when several servers start at once exactly one creates it.
    /// </summary>
    private static async Task<BootstrappedToken> BootstrapTokenAsync(IEventStore store, CommandRunner commands, string key, string name, string role, string file, CancellationToken ct)
    {
        var id = DomainIds.V5(DomainIds.Org("trc-platform"), key);
        var existing = await store.ReadAggregateAsync(EventNames.TokenAggregate, id, 0, ct).ConfigureAwait(false);
        if (existing.Count > 0)
        {
            return new BootstrappedToken(null, file);
        }
        var (_, token, hash) = TokenCodec.Create();
        var tokenString = $"trc_{id:N}_{token[37..]}";
        var system = new Principal(id, "bootstrap", Roles.Admin, null, null);

        // The secret reaches the disk (operator-only, under a temporary name) before the token
        // exists, so a crash in between never leaves an admin token that nobody holds.
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
        var temp = file + ".tmp-" + Environment.ProcessId;
        var fileOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        await using (var stream = new FileStream(temp, fileOptions))
        {
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(tokenString + "\n"), ct).ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
        }
        try
        {
            await commands.RunAsync(system, null, "bootstrap", async load =>
                Decisions.CreateToken(await load.LoadAsync(id, i => new TokenState(i), ct), null, name, role, hash), ct).ConfigureAwait(false);
        }
        catch (DomainException d) when (d.Code == "conflict")
        {
            File.Delete(temp);
            return new BootstrappedToken(null, file); // another server created it at the same moment
        }
        catch (NotReadyException)
        {
            // Recorded; the catalog catches up on its own. The token exists, so keep the file.
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        File.Move(temp, file, overwrite: true);
        return new BootstrappedToken(tokenString, file);
    }

    /// <summary>Stops listening and releases everything.</summary>
    public async ValueTask DisposeAsync()
    {
        await Scheduler.DisposeAsync().ConfigureAwait(false);
        await LogSweeper.DisposeAsync().ConfigureAwait(false);
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        await _runner.DisposeAsync().ConfigureAwait(false);
        await _store.DisposeAsync().ConfigureAwait(false);
        _masterKey.Dispose();
    }

    [LoggerMessage(EventId = 2100, Level = LogLevel.Information, Message = "trc server listening on {Address}")]
    private static partial void LogListening(ILogger logger, string address);
}
