using System.Text.Json;
using System.Text.Json.Serialization;
using Trc.Core.Domain;

namespace Trc.Core.Api;

// The /v1 wire contract, shared by the server and Trc.Client. JSON is snake_case; fields are only
// ever added (optional), never renamed.
#pragma warning disable CS1591 // Record parameters are the documented JSON fields; the API reference documents them.

/// <summary>
/// How the API's JSON is written and read: snake_case. The server reads requests strictly (an
/// unknown or missing field is an error naming it) and writes every field, nulls included.
/// Clients read leniently (<see cref="ClientOptions"/>): a newer server may add fields.
/// </summary>
public static class ApiJson
{
    /// <summary>The server's options: strict reading, every field written.</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        AllowDuplicateProperties = false,
        MaxDepth = 32,
    };

    /// <summary>The client's options: unknown fields ignored, absent ones default.</summary>
    public static JsonSerializerOptions ClientOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        MaxDepth = 64,
    };
}

/// <summary>Paths of the API, for the server and the client alike.</summary>
public static class ApiPaths
{
    public const string Orgs = "/v1/orgs";
    public const string WhoAmI = "/v1/whoami";
    public const string Events = "/v1/events";
    public const string EventsStream = "/v1/events/stream";
    public const string EdgeRoutes = "/v1/edge/routes";
    public const string OpenApi = "/v1/openapi.json";

    public static string Org(string org) => $"{Orgs}/{Uri.EscapeDataString(org)}";

    public static string Quotas(string org) => $"{Org(org)}/quotas";

    public static string Tokens(string org) => $"{Org(org)}/tokens";

    public static string Token(string org, Guid id) => $"{Tokens(org)}/{id:D}";

    public static string Apps(string org) => $"{Org(org)}/apps";

    public static string App(string org, string app) => $"{Apps(org)}/{Uri.EscapeDataString(app)}";

    public static string Envs(string org, string app) => $"{App(org, app)}/envs";

    public static string Env(string org, string app, string env) => $"{Envs(org, app)}/{Uri.EscapeDataString(env)}";

    public static string Releases(string org, string app, string env) => $"{Env(org, app, env)}/releases";

    public static string Release(string org, string app, string env, int number) => $"{Releases(org, app, env)}/{number}";

    public static string Routes(string org, string app, string env) => $"{Env(org, app, env)}/routes";

    public static string Route(string org, string app, string env, string hostname, int port) => $"{Routes(org, app, env)}/{Uri.EscapeDataString(hostname)}/{port}";

    public static string Ipv4(string org, string app, string env) => $"{Env(org, app, env)}/ipv4";

    public static string Secrets(string org, string app, string env) => $"{Env(org, app, env)}/secrets";

    public static string SecretsRender(string org, string app, string env) => $"{Secrets(org, app, env)}/render";

    public static string Volumes(string org, string app, string env) => $"{Env(org, app, env)}/volumes";

    public static string Volume(string org, string app, string env, string name) => $"{Volumes(org, app, env)}/{Uri.EscapeDataString(name)}";

    public static string Deployments(string org, string app, string env) => $"{Env(org, app, env)}/deployments";

    public static string Deployment(string org, string app, string env, int number) => $"{Deployments(org, app, env)}/{number}";

    public static string Rollback(string org, string app, string env) => $"{Env(org, app, env)}/rollback";

    public static string Restart(string org, string app, string env) => $"{Env(org, app, env)}/restart";

    public static string Scale(string org, string app, string env) => $"{Env(org, app, env)}/scale";

    public static string OrgEvents(string org) => $"{Org(org)}/events";

    public static string OrgEventsStream(string org) => $"{OrgEvents(org)}/stream";
}

/// <summary>A list response.</summary>
public sealed record ListView<T>(IReadOnlyList<T> Items);

/// <summary>Who the caller is.</summary>
public sealed record WhoAmIView(Guid TokenId, string TokenName, string Role, string? Org);

public sealed record CreateOrgRequest(string Name, Quotas? Quotas = null);

public sealed record OrgView(Guid Id, string Name, Quotas Quotas, Usage Usage, DateTimeOffset CreatedAt);

public sealed record QuotaView(Quotas Quotas, Usage Usage);

public sealed record CreateTokenRequest(string Name, string Role);

/// <summary>A token as created: <c>token</c> is shown this once and never again.</summary>
public sealed record TokenCreatedView(Guid Id, string Name, string Role, string Token, DateTimeOffset CreatedAt);

public sealed record TokenView(Guid Id, string Name, string Role, bool Revoked, DateTimeOffset CreatedAt);

public sealed record CreateAppRequest(string Name);

public sealed record AppView(Guid Id, string Org, string Name, DateTimeOffset CreatedAt);

public sealed record CreateEnvRequest(string Name);

/// <summary>An env.</summary>
/// <param name="Id">Its id.</param>
/// <param name="Org">Its org.</param>
/// <param name="App">Its app.</param>
/// <param name="Name">Its name.</param>
/// <param name="DeployedRelease">The release of its latest deployment (being rolled out, serving, or failed); 0: none.</param>
/// <param name="SecretsVersion">Its current secrets version.</param>
/// <param name="Ipv4Address">Its dedicated IPv4 address, if any.</param>
/// <param name="CreatedAt">When it was created.</param>
/// <param name="ActiveRelease">The release the edge sends connections to (0: none yet).</param>
/// <param name="Deployment">Its latest deployment's number (0: none).</param>
/// <param name="Rollout">Where that deployment stands: none, rolling, draining, completed or failed.</param>
public sealed record EnvView(Guid Id, string Org, string App, string Name, int DeployedRelease, int SecretsVersion, string? Ipv4Address, DateTimeOffset CreatedAt,
    int ActiveRelease = 0, int Deployment = 0, string Rollout = "none");

/// <summary>A deployment (rollout) of a release in an env.</summary>
/// <param name="Number">Its number in the env (from 1).</param>
/// <param name="Release">The release it rolls out.</param>
/// <param name="Kind">deploy, rollback, secrets or restart.</param>
/// <param name="Reason">Why it started.</param>
/// <param name="Status">rolling (instances start; the one before serves), draining (it serves; the one before drains), completed, failed, superseded (a newer one started before it switched) or replaced (a newer one serves).</param>
/// <param name="FailureReason">Why it failed, if it did.</param>
/// <param name="StartedAt">When it started.</param>
/// <param name="SwitchedAt">When traffic switched to it, if it did.</param>
/// <param name="FinishedAt">When it completed, failed or was superseded or replaced.</param>
public sealed record DeploymentView(int Number, int Release, string Kind, string Reason, string Status, string? FailureReason, DateTimeOffset StartedAt, DateTimeOffset? SwitchedAt, DateTimeOffset? FinishedAt);

/// <summary>Roll back to release <c>release</c>, or (without it) to the release that served before the one serving now.</summary>
public sealed record RollbackRequest(int? Release = null);

/// <summary>Run <c>count</c> instances of <c>process</c> (within its manifest's scaling bounds).</summary>
public sealed record ScaleRequest(string Process, int Count);

/// <summary>
/// Deploy: record a release (image pinned to a digest, the manifest's TOML) and make it the env's.
/// In the same atomic change, the manifest's routes and volumes the env does not have are created,
/// and those it has with other settings are changed in place (a volume's size or process cannot
/// change: 409 <c>volume_changed</c>; a hostname bound to another env is not moved: 409
/// <c>hostname_bound</c>); when anything is refused, nothing is created.
/// <c>expected_release</c>, when given, is the release the caller means to replace (0: none yet); the
/// deploy fails with 409 <c>release_changed</c> if another deploy came first.
/// </summary>
public sealed record DeployRequest(string Image, string Manifest, IReadOnlyDictionary<string, string>? ResolvedDigests = null, int? ExpectedRelease = null);

public sealed record ReleaseView(
    int Number,
    string Image,
    string ImageDigest,
    IReadOnlyDictionary<string, string>? ResolvedDigests,
    JsonElement Manifest,
    int SecretsVersion,
    long MemoryBytes,
    int Instances,
    bool Deployed,
    DateTimeOffset CreatedAt,
    Guid? CreatedBy,
    int? Deployment = null);

public sealed record CreateRouteRequest(
    string Hostname,
    int BackendPort,
    int? ListenPort = null,
    string? Protocol = null,
    string? Process = null,
    string? ProxyProtocol = null,
    bool? BackendExpectsProxyProtocol = null,
    bool? Ipv4Required = null,
    bool? Move = null);

public sealed record RouteView(
    string Hostname,
    int ListenPort,
    string Protocol,
    string Process,
    int BackendPort,
    string ProxyProtocol,
    bool BackendExpectsProxyProtocol,
    bool Ipv4Required,
    string Org,
    string App,
    string Env,
    DateTimeOffset CreatedAt);

public sealed record Ipv4View(string Address, IReadOnlyList<int> Ports);

/// <summary>
/// Changes to an env's secrets, making a new version. A value is a string (its UTF-8 bytes) or
/// <c>{"base64": "..."}</c> for any bytes.
/// </summary>
public sealed record SetSecretsRequest(IReadOnlyDictionary<string, JsonElement>? Set = null, IReadOnlyList<string>? Unset = null);

/// <summary>An env's secrets: the version and the names (never values).</summary>
/// <param name="Version">The secrets version.</param>
/// <param name="Names">The secrets' names, sorted.</param>
/// <param name="Deployment">On a change to an env that runs a release: the deployment that rolls the new secrets out.</param>
public sealed record SecretsView(int Version, IReadOnlyList<string> Names, int? Deployment = null);

public sealed record CreateVolumeRequest(string Name, string Size, string? Process = null, bool? BackupEnabled = null);

public sealed record VolumeView(string Name, long SizeBytes, string Process, bool BackupEnabled, string MountPath);

public sealed record EventView(
    long Id,
    DateTimeOffset OccurredAt,
    string AggregateType,
    Guid AggregateId,
    int AggregateSeq,
    string Type,
    Guid? ActorId,
    JsonElement Payload,
    string? RoutingKey);

public sealed record EventPageView(IReadOnlyList<EventView> Events, long NextCursor);

/// <summary>
/// What an edge needs of one route: where it listens (every public address of the edge, plus the
/// env's dedicated IPv4 when the route has <c>ipv4_required</c>), how it routes, and the
/// backends (instance overlay addresses with the backend port) of its process.
/// </summary>
/// <param name="Name">A stable name for logs and metrics: <c>org/app/env/hostname:port</c>.</param>
/// <param name="Org">The org.</param>
/// <param name="App">The app.</param>
/// <param name="Env">The env.</param>
/// <param name="Hostname">The hostname (the SNI name for <c>tls_passthrough</c>; a label only for <c>tcp_raw</c>).</param>
/// <param name="ListenPort">The public port.</param>
/// <param name="Protocol"><c>tls_passthrough</c> or <c>tcp_raw</c>.</param>
/// <param name="ProxyProtocol"><c>off</c> or <c>v2</c>.</param>
/// <param name="Process">The process whose instances serve the route.</param>
/// <param name="BackendPort">The port the instances listen on.</param>
/// <param name="Ipv4">The env's dedicated IPv4 address when the route is served on it, else null.</param>
/// <param name="Backends">Endpoints like <c>[fd00:1::10]:8443</c>; empty while the process has no running instance.</param>
public sealed record EdgeRouteView(
    string Name,
    string Org,
    string App,
    string Env,
    string Hostname,
    int ListenPort,
    string Protocol,
    string ProxyProtocol,
    string Process,
    int BackendPort,
    string? Ipv4,
    IReadOnlyList<string> Backends);

/// <summary>Every route of the platform as of event <paramref name="Position"/>: follow the change stream after it.</summary>
public sealed record EdgeRoutesView(long Position, IReadOnlyList<EdgeRouteView> Routes);

/// <summary>An RFC 7807 problem with trc's stable <c>code</c> and the offending <c>field</c> (a JSON path into the body, a query parameter or a header).</summary>
public sealed record ProblemView(
    string Type,
    string Title,
    int Status,
    string? Detail,
    string Code,
    string? Field,
    IReadOnlyList<string>? Errors = null,
    IReadOnlyDictionary<string, JsonElement>? Details = null);
#pragma warning restore CS1591
