using System.Text.Json;
using System.Text.Json.Serialization;

namespace Trc.Core.Domain;

/// <summary>
/// Aggregate types and event type names. Names are only ever added, never renamed or reused;
/// payloads evolve by adding optional fields.
/// </summary>
public static class EventNames
{
    /// <summary>Aggregate type of orgs.</summary>
    public const string OrgAggregate = "org";

    /// <summary>Aggregate type of API tokens.</summary>
    public const string TokenAggregate = "token";

    /// <summary>Aggregate type of apps.</summary>
    public const string AppAggregate = "app";

    /// <summary>Aggregate type of envs (releases, routes, secrets versions, volumes, IPv4 live here).</summary>
    public const string EnvAggregate = "env";

    /// <summary>Aggregate type of hostnames (which env holds one, platform-wide).</summary>
    public const string HostnameAggregate = "hostname";

    /// <summary>Aggregate type of public IPv4 addresses (which env holds one).</summary>
    public const string Ipv4Aggregate = "ipv4";

    /// <summary>Aggregate type of the shared IPv6 listener's ports (SNI-shared or raw-exclusive).</summary>
    public const string PortAggregate = "port";

    /// <summary>Aggregate type of run nodes (id derived from the node's name).</summary>
    public const string NodeAggregate = "node";

    /// <summary>Aggregate type of instances (id = the instance's id): the states its agent reports.</summary>
    public const string InstanceAggregate = "instance";

    /// <summary>
    /// Aggregate type of the cluster's overlay address space: one platform-wide aggregate that hands
    /// out node /64s in order, so two nodes registering at once never get the same one.
    /// </summary>
    public const string OverlayAggregate = "overlay";

#pragma warning disable CS1591 // The names say what they are.
    public const string OrgCreated = "org.created";
    public const string OrgQuotasSet = "org.quotas_set";
    public const string OrgUsageChanged = "org.usage_changed";
    public const string TokenCreated = "token.created";
    public const string TokenRevoked = "token.revoked";
    public const string AppCreated = "app.created";
    public const string EnvCreated = "env.created";
    public const string ReleaseCreated = "env.release_created";
    public const string ReleaseDeployed = "env.release_deployed";
    public const string RouteAdded = "env.route_added";
    public const string RouteRemoved = "env.route_removed";
    public const string RouteChanged = "env.route_changed";
    public const string HostnameClaimed = "hostname.claimed";
    public const string HostnameMoved = "hostname.moved";
    public const string HostnameReleased = "hostname.released";
    public const string Ipv4Allocated = "ipv4.allocated";
    public const string Ipv4Released = "ipv4.released";
    public const string EnvIpv4Enabled = "env.ipv4_enabled";
    public const string EnvIpv4Disabled = "env.ipv4_disabled";
    public const string SecretsSet = "env.secrets_set";
    public const string VolumeDeclared = "env.volume_declared";
    public const string VolumeRemoved = "env.volume_removed";
    public const string VolumeChanged = "env.volume_changed";
    public const string PortSniAdded = "port.sni_added";
    public const string PortSniRemoved = "port.sni_removed";
    public const string PortRawClaimed = "port.raw_claimed";
    public const string PortRawReleased = "port.raw_released";
    public const string NodeRegistered = "node.registered";
    public const string NodeUpdated = "node.updated";
    public const string OverlayPrefixAllocated = "overlay.prefix_allocated";
    public const string InstanceScheduled = "env.instance_scheduled";
    public const string InstanceStopRequested = "env.instance_stop_requested";
    public const string InstanceStateChanged = "instance.state_changed";
    public const string TrafficSwitched = "env.traffic_switched";
    public const string DeploymentCompleted = "env.deployment_completed";
    public const string DeploymentFailed = "env.deployment_failed";
    public const string EnvScaled = "env.scaled";
    public const string NodeLost = "node.lost";
    public const string NodeRecovered = "node.recovered";
    public const string NodeAdminStateSet = "node.admin_state_set";
#pragma warning restore CS1591

    /// <summary>
    /// The event types that change what a node should run. They carry the node's id as routing key:
    /// an agent follows the change stream with <c>node=ID</c> and takes its instance list again
    /// (<c>GET /v1/nodes/{id}/instances?after=</c>) on any of these.
    /// </summary>
    public static IReadOnlyList<string> NodeDesiredState { get; } = [InstanceScheduled, InstanceStopRequested];

    /// <summary>
    /// The event types that change what an edge routes: an edge following the change stream takes
    /// its route snapshot again on any of these: route changes, and instances coming and going
    /// (their addresses are the routes' backends).
    /// </summary>
    public static IReadOnlyList<string> EdgeRouting { get; } =
        [RouteAdded, RouteRemoved, RouteChanged, HostnameMoved, EnvIpv4Enabled, EnvIpv4Disabled, InstanceScheduled, InstanceStopRequested, InstanceStateChanged, TrafficSwitched];

    /// <summary>
    /// The event types of a rollout as <c>trc deploy</c> follows it (with <see cref="InstanceScheduled"/>,
    /// <see cref="InstanceStopRequested"/> and <see cref="InstanceStateChanged"/> for its instances).
    /// </summary>
    public static IReadOnlyList<string> Rollout { get; } =
        [ReleaseDeployed, InstanceScheduled, InstanceStopRequested, InstanceStateChanged, TrafficSwitched, DeploymentCompleted, DeploymentFailed];
}

/// <summary>Per-org limits.</summary>
/// <param name="MemoryBytes">Sum of memory caps over all instances that may run.</param>
/// <param name="Instances">Instances that may run.</param>
/// <param name="Routes">Public routes.</param>
/// <param name="Ipv4Addresses">Dedicated IPv4 addresses.</param>
public sealed record Quotas(long MemoryBytes, int Instances, int Routes, int Ipv4Addresses);

/// <summary>What an org uses, counted the way <see cref="Quotas"/> limits it.</summary>
/// <param name="MemoryBytes">Memory caps of every instance its deployed releases may run (at scaling.max).</param>
/// <param name="Instances">Instances its deployed releases may run (scaling.max).</param>
/// <param name="Routes">Public routes.</param>
/// <param name="Ipv4Addresses">Dedicated IPv4 addresses.</param>
public sealed record Usage(long MemoryBytes, int Instances, int Routes, int Ipv4Addresses)
{
    /// <summary>Nothing used.</summary>
    public static Usage None { get; } = new(0, 0, 0, 0);
}

#pragma warning disable CS1591 // Event payloads: the record parameters are the documented JSON fields.
public sealed record OrgCreated(string Name, Quotas Quotas);

public sealed record OrgQuotasSet(Quotas Quotas);

public sealed record OrgUsageChanged(Usage Usage, string Reason);

public sealed record TokenCreated(Guid? OrgId, string Name, string Role, string SecretHash);

public sealed record TokenRevoked(string Reason);

public sealed record AppCreated(Guid OrgId, string Name);

public sealed record EnvCreated(Guid OrgId, Guid AppId, string App, string Name);

public sealed record ReleaseCreated(
    int Number,
    string Image,
    string ImageDigest,
    IReadOnlyDictionary<string, string>? ResolvedDigests,
    JsonElement Manifest,
    int SecretsVersion,
    long MemoryBytes,
    int Instances);

/// <summary>
/// A deployment (rollout) of release <paramref name="Number"/> started. Events written before
/// issue 8 carry the number only: their deployment is counted (the nth of the env).
/// </summary>
/// <param name="Number">The release rolled out.</param>
/// <param name="Deployment">The deployment's number in the env (from 1).</param>
/// <param name="Kind"><c>deploy</c>, <c>rollback</c>, <c>secrets</c> or <c>restart</c>.</param>
/// <param name="Reason">Why, for people.</param>
public sealed record ReleaseDeployed(int Number, int? Deployment = null, string? Kind = null, string? Reason = null);

/// <summary>Every instance of a deployment passed its health gate: the edge now sends new connections to it alone.</summary>
public sealed record TrafficSwitched(int Deployment, int Release, string Reason);

/// <summary>A deployment serves alone: the instances of the ones before were asked to stop.</summary>
public sealed record DeploymentCompleted(int Deployment, int Release, int Stopped);

/// <summary>A rollout stopped: its instances were asked to stop; the previous deployment (if any) keeps serving.</summary>
public sealed record DeploymentFailed(int Deployment, int Release, string Reason);

/// <summary>An env's process runs <paramref name="Count"/> instances from now on (within the manifest's scaling bounds).</summary>
public sealed record EnvScaled(string Process, int Count);

/// <summary>The leader heard nothing from a node within its lease: its instances are rescheduled elsewhere.</summary>
public sealed record NodeLost(DateTimeOffset? LastSeen, string Reason);

/// <summary>A lost node was heard from again (what moved away stays away; the node is told to stop it).</summary>
public sealed record NodeRecovered(string Reason);

/// <summary>
/// The operator set a node's admin state: <c>active</c> (takes instances), <c>draining</c> (takes
/// none; its instances move away once their replacements are healthy) or <c>disabled</c> (takes none;
/// its instances are rescheduled at once).
/// </summary>
public sealed record NodeAdminStateSet(string State, string Reason);

public sealed record RouteAdded(
    string Hostname,
    int ListenPort,
    string Protocol,
    string Process,
    int BackendPort,
    string ProxyProtocol,
    bool BackendExpectsProxyProtocol,
    bool Ipv4Required);

public sealed record RouteRemoved(string Hostname, int ListenPort);

/// <summary>A deploy changed an existing route in place; the payload is the route's new settings in full.</summary>
public sealed record RouteChanged(
    string Hostname,
    int ListenPort,
    string Protocol,
    string Process,
    int BackendPort,
    string ProxyProtocol,
    bool BackendExpectsProxyProtocol,
    bool Ipv4Required)
{
    /// <summary>The route as it is now.</summary>
    public RouteAdded AsRoute() => new(Hostname, ListenPort, Protocol, Process, BackendPort, ProxyProtocol, BackendExpectsProxyProtocol, Ipv4Required);
}

public sealed record HostnameClaimed(Guid OrgId, Guid EnvId, string EnvPath);

public sealed record HostnameMoved(Guid OrgId, Guid FromEnvId, Guid ToEnvId, string ToEnvPath);

public sealed record HostnameReleased(Guid EnvId);

public sealed record Ipv4Allocated(Guid OrgId, Guid EnvId, string EnvPath);

public sealed record Ipv4Released(Guid EnvId);

public sealed record EnvIpv4Enabled(string Address, IReadOnlyList<int> Ports);

public sealed record EnvIpv4Disabled(string Address);

public sealed record SecretsSet(int Version, IReadOnlyList<string> Names, Guid BundleId);

public sealed record VolumeDeclared(string Name, long SizeBytes, string Process, bool BackupEnabled);

public sealed record VolumeRemoved(string Name);

/// <summary>A deploy changed an existing volume's settings in place (today only its backup flag); the payload is the volume in full.</summary>
public sealed record VolumeChanged(string Name, long SizeBytes, string Process, bool BackupEnabled)
{
    /// <summary>The volume as it is now.</summary>
    public VolumeDeclared AsVolume() => new(Name, SizeBytes, Process, BackupEnabled);
}

public sealed record PortSniAdded(Guid EnvId, string Hostname);

public sealed record PortSniRemoved(Guid EnvId, string Hostname);

public sealed record PortRawClaimed(Guid OrgId, Guid EnvId, string EnvPath);

public sealed record PortRawReleased(Guid EnvId);

/// <summary>A node registered for the first time, with the /64 of the overlay it was given.</summary>
public sealed record NodeRegistered(
    string Name,
    string Prefix,
    long MemoryBytes,
    int Cpus,
    string Driver,
    string Acceleration,
    string? Region,
    string? AgentVersion);

/// <summary>A node registered again with something changed; the payload is the node as it is now, in full.</summary>
public sealed record NodeUpdated(
    string Name,
    string Prefix,
    long MemoryBytes,
    int Cpus,
    string Driver,
    string Acceleration,
    string? Region,
    string? AgentVersion)
{
    /// <summary>The node as it is now.</summary>
    public NodeRegistered AsNode() => new(Name, Prefix, MemoryBytes, Cpus, Driver, Acceleration, Region, AgentVersion);
}

/// <summary>The overlay gave node <paramref name="NodeId"/> its <paramref name="Index"/>th /64 (from 1).</summary>
public sealed record OverlayPrefixAllocated(Guid NodeId, string Name, int Index, string Prefix);

/// <summary>An instance of a process of a release is to run on a node (routing key: the node's id).</summary>
public sealed record InstanceScheduled(Guid InstanceId, Guid NodeId, string Process, int Release, string Reason, int? Deployment = null);

/// <summary>An instance is to stop for good (routing key: the node's id).</summary>
public sealed record InstanceStopRequested(Guid InstanceId, Guid NodeId, string Reason);

/// <summary>An agent reported an instance's new state (routing key: the node's id).</summary>
public sealed record InstanceStateChanged(Guid NodeId, string State, string? Address, int? ExitCode, string? Reason, int Restarts);
#pragma warning restore CS1591

/// <summary>How event payloads are written: snake_case JSON, nulls left out.</summary>
public static class EventJson
{
    /// <summary>The serializer options of every payload.</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>A payload as JSON.</summary>
    public static string Serialize<T>(T payload) => JsonSerializer.Serialize(payload, Options);

    /// <summary>A payload from JSON.</summary>
    public static T Deserialize<T>(string json) =>
        JsonSerializer.Deserialize<T>(json, Options) ?? throw new JsonException($"empty {typeof(T).Name} payload");
}
