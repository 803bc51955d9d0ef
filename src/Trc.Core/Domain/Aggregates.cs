using System.Text.Json;

namespace Trc.Core.Domain;

/// <summary>An event a decision produces: its type, payload and routing key.</summary>
/// <param name="Type">The event type (see <see cref="EventNames"/>).</param>
/// <param name="Payload">The payload record.</param>
/// <param name="RoutingKey">Who the event is for on the change feed (a node's id), or null.</param>
public sealed record DomainEvent(string Type, object Payload, string? RoutingKey = null)
{
    /// <summary>The payload as JSON.</summary>
    public string Json => JsonSerializer.Serialize(Payload, Payload.GetType(), EventJson.Options);
}

/// <summary>Events for one aggregate at the version the decision was made from.</summary>
/// <param name="AggregateType">The aggregate's type.</param>
/// <param name="AggregateId">The aggregate's id.</param>
/// <param name="ExpectedVersion">The version the decision saw; the append fails if it moved.</param>
/// <param name="Events">The events.</param>
/// <param name="TenantId">The org the aggregate belongs to, or null.</param>
public sealed record Change(string AggregateType, Guid AggregateId, int ExpectedVersion, IReadOnlyList<DomainEvent> Events, Guid? TenantId);

/// <summary>State rebuilt from an aggregate's events; <see cref="Version"/> is how many were applied.</summary>
public abstract class AggregateState(string type, Guid id)
{
    /// <summary>The aggregate type.</summary>
    public string Type { get; } = type;

    /// <summary>The aggregate id.</summary>
    public Guid Id { get; } = id;

    /// <summary>Events applied so far.</summary>
    public int Version { get; private set; }

    /// <summary>Whether any event exists.</summary>
    public bool Exists => Version > 0;

    /// <summary>Applies one stored event.</summary>
    public void Apply(string eventType, string payloadJson)
    {
        When(eventType, payloadJson);
        Version++;
    }

    /// <summary>Folds one event into the state. Unknown types are ignored (newer writers).</summary>
    protected abstract void When(string eventType, string json);

    /// <summary>A change to this aggregate with the given events.</summary>
    public Change Change(Guid? tenantId, params DomainEvent[] events) => new(Type, Id, Version, events, tenantId);

    /// <summary>Payload of a given type.</summary>
    protected static T Read<T>(string json) => EventJson.Deserialize<T>(json);
}

/// <summary>An org: its quotas and what it uses.</summary>
public sealed class OrgState(Guid id) : AggregateState(EventNames.OrgAggregate, id)
{
    /// <summary>The org's name.</summary>
    public string Name { get; private set; } = "";

    /// <summary>Its limits.</summary>
    public Quotas Quotas { get; private set; } = ClusterPolicy.Default.DefaultQuotas;

    /// <summary>What it uses.</summary>
    public Usage Usage { get; private set; } = Usage.None;

    /// <inheritdoc />
    protected override void When(string eventType, string json)
    {
        switch (eventType)
        {
            case EventNames.OrgCreated:
                var created = Read<OrgCreated>(json);
                (Name, Quotas) = (created.Name, created.Quotas);
                break;
            case EventNames.OrgQuotasSet:
                Quotas = Read<OrgQuotasSet>(json).Quotas;
                break;
            case EventNames.OrgUsageChanged:
                Usage = Read<OrgUsageChanged>(json).Usage;
                break;
        }
    }

    /// <summary>
    /// The event recording a new usage, after checking every quota it raises; refused with the
    /// quota's name, limit, use and request when one would be exceeded.
    /// </summary>
    public DomainEvent UseChange(Usage next, string reason)
    {
        Check("memory", Usage.MemoryBytes, next.MemoryBytes, Quotas.MemoryBytes);
        Check("instances", Usage.Instances, next.Instances, Quotas.Instances);
        Check("routes", Usage.Routes, next.Routes, Quotas.Routes);
        Check("ipv4_addresses", Usage.Ipv4Addresses, next.Ipv4Addresses, Quotas.Ipv4Addresses);
        return new DomainEvent(EventNames.OrgUsageChanged, new OrgUsageChanged(next, reason));

        void Check(string quota, long current, long requested, long limit)
        {
            if (requested > current && requested > limit)
            {
                throw new DomainException(DomainErrorKind.QuotaExceeded, "quota_exceeded",
                    $"the {quota} quota of org {Name} is {limit}; {current} are in use and this would make it {requested}", quota)
                {
                    Extensions = new Dictionary<string, object> { ["quota"] = quota, ["limit"] = limit, ["in_use"] = current, ["requested"] = requested },
                };
            }
        }
    }
}

/// <summary>An API token (its secret is only ever stored as a hash).</summary>
public sealed class TokenState(Guid id) : AggregateState(EventNames.TokenAggregate, id)
{
    /// <summary>Its org, or null for the platform admin token.</summary>
    public Guid? OrgId { get; private set; }

    /// <summary>Its role.</summary>
    public string Role { get; private set; } = "";

    /// <summary>Whether it was revoked.</summary>
    public bool Revoked { get; private set; }

    /// <inheritdoc />
    protected override void When(string eventType, string json)
    {
        switch (eventType)
        {
            case EventNames.TokenCreated:
                var created = Read<TokenCreated>(json);
                (OrgId, Role) = (created.OrgId, created.Role);
                break;
            case EventNames.TokenRevoked:
                Revoked = true;
                break;
        }
    }
}

/// <summary>An app in an org.</summary>
public sealed class AppState(Guid id) : AggregateState(EventNames.AppAggregate, id)
{
    /// <summary>Its org.</summary>
    public Guid OrgId { get; private set; }

    /// <summary>Its name.</summary>
    public string Name { get; private set; } = "";

    /// <inheritdoc />
    protected override void When(string eventType, string json)
    {
        if (eventType == EventNames.AppCreated)
        {
            var created = Read<AppCreated>(json);
            (OrgId, Name) = (created.OrgId, created.Name);
        }
    }
}

/// <summary>A release as recorded (it never changes).</summary>
/// <param name="Created">The event that recorded it.</param>
public sealed record ReleaseInfo(ReleaseCreated Created);

/// <summary>An instance as its env records it: where it was scheduled, and whether it was asked to stop.</summary>
/// <param name="Id">The instance's id.</param>
/// <param name="NodeId">The node it runs on.</param>
/// <param name="Process">Its process type.</param>
/// <param name="Release">The release it runs.</param>
/// <param name="StopRequested">Whether a stop was requested (it will not run again).</param>
/// <param name="Deployment">The deployment (rollout) it belongs to.</param>
public sealed record ScheduledInstance(Guid Id, Guid NodeId, string Process, int Release, bool StopRequested, int Deployment = 0);

/// <summary>An env: releases, the deployed one, routes, the IPv4 add-on, secrets versions, volumes, instances.</summary>
public sealed class EnvState(Guid id) : AggregateState(EventNames.EnvAggregate, id)
{
    private readonly List<ReleaseCreated> _releases = [];
    private readonly Dictionary<(string Hostname, int Port), RouteAdded> _routes = [];
    private readonly Dictionary<string, VolumeDeclared> _volumes = new(StringComparer.Ordinal);
    private readonly Dictionary<int, Guid> _secretBundles = [];
    private readonly Dictionary<Guid, ScheduledInstance> _instances = [];
    private readonly Dictionary<string, int> _scale = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Guid> _lastOfProcess = new(StringComparer.Ordinal);
    private readonly List<int> _served = [];

    /// <summary>Its org.</summary>
    public Guid OrgId { get; private set; }

    /// <summary>Its app.</summary>
    public Guid AppId { get; private set; }

    /// <summary>Its app's name.</summary>
    public string AppName { get; private set; } = "";

    /// <summary>Its name.</summary>
    public string Name { get; private set; } = "";

    /// <summary>Every release, oldest first.</summary>
    public IReadOnlyList<ReleaseCreated> Releases => _releases;

    /// <summary>The release of the latest deployment (being rolled out, serving, or failed), or 0.</summary>
    public int DeployedRelease { get; private set; }

    /// <summary>The latest deployment's number (0: none yet).</summary>
    public int Deployment { get; private set; }

    /// <summary>The latest deployment's kind (<see cref="DeploymentKinds"/>).</summary>
    public string DeploymentKind { get; private set; } = "";

    /// <summary>The deployment the edge sends connections to (0: none yet).</summary>
    public int ActiveDeployment { get; private set; }

    /// <summary>The release of <see cref="ActiveDeployment"/> (0: none).</summary>
    public int ActiveRelease { get; private set; }

    /// <summary>The latest deployment whose rollout failed (0: none).</summary>
    public int FailedDeployment { get; private set; }

    /// <summary>The latest deployment that serves alone (the instances before it were asked to stop).</summary>
    public int CompletedDeployment { get; private set; }

    /// <summary>Instance counts set with <c>trc scale</c>, by process.</summary>
    public IReadOnlyDictionary<string, int> Scale => _scale;

    /// <summary>Releases that served traffic, in the order they did (a release may repeat).</summary>
    public IReadOnlyList<int> ServedReleases => _served;

    /// <summary>The instance of a process scheduled last (stop-requested or not), or null.</summary>
    public ScheduledInstance? LastInstanceOf(string process) => _lastOfProcess.TryGetValue(process, out var id) ? _instances[id] : null;

    /// <summary>A release by number, or null.</summary>
    public ReleaseCreated? Release(int number) => number >= 1 && number <= _releases.Count ? _releases[number - 1] : null;

    /// <summary>Where the latest deployment stands: <c>none</c>, <c>rolling</c>, <c>draining</c>, <c>completed</c> or <c>failed</c>.</summary>
    public string RolloutStatus =>
        Deployment == 0 ? RolloutStatuses.None
        : FailedDeployment == Deployment ? RolloutStatuses.Failed
        : ActiveDeployment != Deployment ? RolloutStatuses.Rolling
        : CompletedDeployment != Deployment ? RolloutStatuses.Draining
        : RolloutStatuses.Completed;

    /// <summary>The deployed release, or null.</summary>
    public ReleaseCreated? Deployed => DeployedRelease == 0 ? null : _releases[DeployedRelease - 1];

    /// <summary>Routes by (hostname, listen port).</summary>
    public IReadOnlyDictionary<(string Hostname, int Port), RouteAdded> Routes => _routes;

    /// <summary>The dedicated IPv4 address, when the add-on is on.</summary>
    public string? Ipv4Address { get; private set; }

    /// <summary>The current secrets version (0: none set yet).</summary>
    public int SecretsVersion { get; private set; }

    /// <summary>The names in the current secrets version.</summary>
    public IReadOnlyList<string> SecretNames { get; private set; } = [];

    /// <summary>The encrypted bundle holding the current version's values, if any.</summary>
    public Guid? SecretBundleId { get; private set; }

    /// <summary>Volumes by name.</summary>
    public IReadOnlyDictionary<string, VolumeDeclared> Volumes => _volumes;

    /// <summary>The encrypted bundle of every secrets version, by version.</summary>
    public IReadOnlyDictionary<int, Guid> SecretBundles => _secretBundles;

    /// <summary>Every instance ever scheduled for the env, by id (stop-requested ones included).</summary>
    public IReadOnlyDictionary<Guid, ScheduledInstance> Instances => _instances;

    /// <inheritdoc />
    protected override void When(string eventType, string json)
    {
        switch (eventType)
        {
            case EventNames.EnvCreated:
                var created = Read<EnvCreated>(json);
                (OrgId, AppId, AppName, Name) = (created.OrgId, created.AppId, created.App, created.Name);
                break;
            case EventNames.ReleaseCreated:
                _releases.Add(Read<ReleaseCreated>(json));
                break;
            case EventNames.ReleaseDeployed:
                var deployed = Read<ReleaseDeployed>(json);
                DeployedRelease = deployed.Number;
                Deployment = deployed.Deployment ?? Deployment + 1;
                DeploymentKind = deployed.Kind ?? DeploymentKinds.Deploy;
                break;
            case EventNames.TrafficSwitched:
                var switched = Read<TrafficSwitched>(json);
                (ActiveDeployment, ActiveRelease) = (switched.Deployment, switched.Release);
                _served.Add(switched.Release);
                break;
            case EventNames.DeploymentCompleted:
                CompletedDeployment = Read<DeploymentCompleted>(json).Deployment;
                break;
            case EventNames.DeploymentFailed:
                FailedDeployment = Read<DeploymentFailed>(json).Deployment;
                break;
            case EventNames.EnvScaled:
                var scaled = Read<EnvScaled>(json);
                _scale[scaled.Process] = scaled.Count;
                break;
            case EventNames.RouteAdded:
                var route = Read<RouteAdded>(json);
                _routes[(route.Hostname, route.ListenPort)] = route;
                break;
            case EventNames.RouteChanged:
                var changed = Read<RouteChanged>(json).AsRoute();
                _routes[(changed.Hostname, changed.ListenPort)] = changed;
                break;
            case EventNames.RouteRemoved:
                var removed = Read<RouteRemoved>(json);
                _routes.Remove((removed.Hostname, removed.ListenPort));
                break;
            case EventNames.EnvIpv4Enabled:
                Ipv4Address = Read<EnvIpv4Enabled>(json).Address;
                break;
            case EventNames.EnvIpv4Disabled:
                Ipv4Address = null;
                break;
            case EventNames.SecretsSet:
                var secrets = Read<SecretsSet>(json);
                (SecretsVersion, SecretNames, SecretBundleId) = (secrets.Version, secrets.Names, secrets.BundleId);
                _secretBundles[secrets.Version] = secrets.BundleId;
                break;
            case EventNames.InstanceScheduled:
                var scheduled = Read<InstanceScheduled>(json);
                _instances[scheduled.InstanceId] = new ScheduledInstance(scheduled.InstanceId, scheduled.NodeId, scheduled.Process, scheduled.Release, false, scheduled.Deployment ?? Deployment);
                _lastOfProcess[scheduled.Process] = scheduled.InstanceId;
                break;
            case EventNames.InstanceStopRequested:
                var stop = Read<InstanceStopRequested>(json);
                if (_instances.TryGetValue(stop.InstanceId, out var instance))
                {
                    _instances[stop.InstanceId] = instance with { StopRequested = true };
                }
                break;
            case EventNames.VolumeDeclared:
                var volume = Read<VolumeDeclared>(json);
                _volumes[volume.Name] = volume;
                break;
            case EventNames.VolumeChanged:
                var volumeChanged = Read<VolumeChanged>(json).AsVolume();
                _volumes[volumeChanged.Name] = volumeChanged;
                break;
            case EventNames.VolumeRemoved:
                _volumes.Remove(Read<VolumeRemoved>(json).Name);
                break;
        }
    }
}

/// <summary>A hostname, platform-wide: the one env that holds it, if any.</summary>
public sealed class HostnameState(Guid id) : AggregateState(EventNames.HostnameAggregate, id)
{
    /// <summary>The org holding it.</summary>
    public Guid? OrgId { get; private set; }

    /// <summary>The env holding it.</summary>
    public Guid? EnvId { get; private set; }

    /// <summary>That env's path (org/app/env), for messages to its own org.</summary>
    public string? EnvPath { get; private set; }

    /// <inheritdoc />
    protected override void When(string eventType, string json)
    {
        switch (eventType)
        {
            case EventNames.HostnameClaimed:
                var claimed = Read<HostnameClaimed>(json);
                (OrgId, EnvId, EnvPath) = (claimed.OrgId, claimed.EnvId, claimed.EnvPath);
                break;
            case EventNames.HostnameMoved:
                var moved = Read<HostnameMoved>(json);
                (EnvId, EnvPath) = (moved.ToEnvId, moved.ToEnvPath);
                break;
            case EventNames.HostnameReleased:
                (OrgId, EnvId, EnvPath) = (null, null, null);
                break;
        }
    }
}

/// <summary>A public IPv4 address of the pool: the env holding it, if any.</summary>
public sealed class Ipv4State(Guid id) : AggregateState(EventNames.Ipv4Aggregate, id)
{
    /// <summary>The env holding it.</summary>
    public Guid? EnvId { get; private set; }

    /// <inheritdoc />
    protected override void When(string eventType, string json)
    {
        switch (eventType)
        {
            case EventNames.Ipv4Allocated:
                EnvId = Read<Ipv4Allocated>(json).EnvId;
                break;
            case EventNames.Ipv4Released:
                EnvId = null;
                break;
        }
    }
}

/// <summary>
/// A port of the edge's shared IPv6 address. It carries either TLS routes told apart by SNI (any
/// number, any env) or one raw TCP route, routed by port alone.
/// </summary>
public sealed class PortState(Guid id) : AggregateState(EventNames.PortAggregate, id)
{
    private readonly HashSet<(Guid EnvId, string Hostname)> _sni = [];

    /// <summary>The env holding the port for raw TCP, if any.</summary>
    public Guid? RawEnvId { get; private set; }

    /// <summary>TLS routes on the port.</summary>
    public int SniRoutes => _sni.Count;

    /// <inheritdoc />
    protected override void When(string eventType, string json)
    {
        switch (eventType)
        {
            case EventNames.PortSniAdded:
                var added = Read<PortSniAdded>(json);
                _sni.Add((added.EnvId, added.Hostname));
                break;
            case EventNames.PortSniRemoved:
                var removed = Read<PortSniRemoved>(json);
                _sni.Remove((removed.EnvId, removed.Hostname));
                break;
            case EventNames.PortRawClaimed:
                RawEnvId = Read<PortRawClaimed>(json).EnvId;
                break;
            case EventNames.PortRawReleased:
                RawEnvId = null;
                break;
        }
    }

    /// <summary>The id of a port's aggregate.</summary>
    public static Guid IdOf(int port) => DomainIds.V5(DomainIds.Org("trc-platform"), "port:" + port);
}

/// <summary>A run node: what it offers, and its /64 of the overlay.</summary>
public sealed class NodeState(Guid id) : AggregateState(EventNames.NodeAggregate, id)
{
    /// <summary>The node as last registered (null before its first registration).</summary>
    public NodeRegistered? Current { get; private set; }

    /// <summary>The operator's admin state (<see cref="NodeAdminStates"/>).</summary>
    public string AdminState { get; private set; } = NodeAdminStates.Active;

    /// <summary>Whether the leader declared it lost (and it was not heard from since).</summary>
    public bool Lost { get; private set; }

    /// <inheritdoc />
    protected override void When(string eventType, string json)
    {
        switch (eventType)
        {
            case EventNames.NodeRegistered:
                Current = Read<NodeRegistered>(json);
                break;
            case EventNames.NodeUpdated:
                Current = Read<NodeUpdated>(json).AsNode();
                break;
            case EventNames.NodeLost:
                Lost = true;
                break;
            case EventNames.NodeRecovered:
                Lost = false;
                break;
            case EventNames.NodeAdminStateSet:
                AdminState = Read<NodeAdminStateSet>(json).State;
                break;
        }
    }

    /// <summary>A node's id, from its name.</summary>
    public static Guid IdOf(string name) => DomainIds.V5(DomainIds.Org("trc-platform"), "node:" + name);
}

/// <summary>The cluster overlay's address space: how many node /64s were handed out.</summary>
public sealed class OverlayState(Guid id) : AggregateState(EventNames.OverlayAggregate, id)
{
    /// <summary>The highest /64 index handed out (0: none yet).</summary>
    public int LastIndex { get; private set; }

    /// <inheritdoc />
    protected override void When(string eventType, string json)
    {
        if (eventType == EventNames.OverlayPrefixAllocated)
        {
            LastIndex = Math.Max(LastIndex, Read<OverlayPrefixAllocated>(json).Index);
        }
    }

    /// <summary>The one overlay aggregate's id.</summary>
    public static Guid TheId { get; } = DomainIds.V5(DomainIds.Org("trc-platform"), "overlay");
}

/// <summary>An instance: the last state its agent reported.</summary>
public sealed class InstanceState(Guid id) : AggregateState(EventNames.InstanceAggregate, id)
{
    /// <summary>The last reported state, or null before the first report.</summary>
    public InstanceStateChanged? Last { get; private set; }

    /// <inheritdoc />
    protected override void When(string eventType, string json)
    {
        if (eventType == EventNames.InstanceStateChanged)
        {
            Last = Read<InstanceStateChanged>(json);
        }
    }
}

/// <summary>Kinds of deployment.</summary>
public static class DeploymentKinds
{
    /// <summary>A new release from <c>trc deploy</c>.</summary>
    public const string Deploy = "deploy";

    /// <summary>A copy of an earlier release (<c>trc rollback</c>).</summary>
    public const string Rollback = "rollback";

    /// <summary>The same image with a new secrets version.</summary>
    public const string Secrets = "secrets";

    /// <summary>The same release on fresh instances (<c>trc restart</c>).</summary>
    public const string Restart = "restart";
}

/// <summary>Where an env's latest deployment stands.</summary>
public static class RolloutStatuses
{
    /// <summary>No deployment yet.</summary>
    public const string None = "none";

    /// <summary>Its instances start; the deployment before keeps serving.</summary>
    public const string Rolling = "rolling";

    /// <summary>It serves; the instances before it drain and are stopped next.</summary>
    public const string Draining = "draining";

    /// <summary>It serves alone.</summary>
    public const string Completed = "completed";

    /// <summary>Its health gate failed or it timed out; the deployment before (if any) keeps serving.</summary>
    public const string Failed = "failed";
}

/// <summary>A node's admin states, as the operator sets them.</summary>
public static class NodeAdminStates
{
    /// <summary>Takes instances.</summary>
    public const string Active = "active";

    /// <summary>Takes no new instances; its instances move away once their replacements are healthy.</summary>
    public const string Draining = "draining";

    /// <summary>Takes no instances; its instances are rescheduled at once.</summary>
    public const string Disabled = "disabled";

    /// <summary>Every admin state.</summary>
    public static IReadOnlyList<string> All { get; } = [Active, Draining, Disabled];
}
