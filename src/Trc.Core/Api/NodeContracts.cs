namespace Trc.Core.Api;

// The node and instance part of the /v1 wire contract: what agents call with the shared node
// token, and what users read about instances and logs. Same rules as ApiContracts.cs.
#pragma warning disable CS1591 // Record parameters are the documented JSON fields; the API reference documents them.

/// <summary>Paths of the node, instance and log endpoints.</summary>
public static class NodeApiPaths
{
    public const string Nodes = "/v1/nodes";

    public static string Node(Guid node) => $"{Nodes}/{node:D}";

    public static string Heartbeat(Guid node) => $"{Node(node)}/heartbeat";

    public static string NodeState(Guid node) => $"{Node(node)}/state";

    public static string NodeInstances(Guid node) => $"{Node(node)}/instances";

    public static string InstanceState(Guid node, Guid instance) => $"{NodeInstances(node)}/{instance:D}/state";

    public static string InstanceSecrets(Guid node, Guid instance) => $"{NodeInstances(node)}/{instance:D}/secrets";

    public static string NodeLogs(Guid node) => $"{Node(node)}/logs";

    public static string Instances(string org, string app, string env) => $"{ApiPaths.Env(org, app, env)}/instances";

    public static string Logs(string org, string app, string env) => $"{ApiPaths.Env(org, app, env)}/logs";

    public static string LogsStream(string org, string app, string env) => $"{Logs(org, app, env)}/stream";
}

/// <summary>Instance states, as agents report them and users read them.</summary>
public static class InstanceStates
{
    /// <summary>Scheduled on a node; the agent has not reported yet.</summary>
    public const string Scheduled = "scheduled";

    /// <summary>The agent is preparing disks or booting the VM.</summary>
    public const string Starting = "starting";

    /// <summary>The app runs (init reported it started).</summary>
    public const string Running = "running";

    /// <summary>Running and its health check passes.</summary>
    public const string Healthy = "healthy";

    /// <summary>Running and its health check fails.</summary>
    public const string Unhealthy = "unhealthy";

    /// <summary>The app exited (<c>exit_code</c> set); the agent may restart it per the policy.</summary>
    public const string Exited = "exited";

    /// <summary>The app was killed for exceeding its memory cap (guest OOM killer, or the host cgroup).</summary>
    public const string MemoryLimitExceeded = "memory_limit_exceeded";

    /// <summary>It could not run (<c>reason</c> set): image pull, disk build, VMM start, init failure, restarts exhausted.</summary>
    public const string Failed = "failed";

    /// <summary>Stopped on request; it will not run again.</summary>
    public const string Stopped = "stopped";

    /// <summary>Every state, for validation.</summary>
    public static IReadOnlyList<string> All { get; } =
        [Scheduled, Starting, Running, Healthy, Unhealthy, Exited, MemoryLimitExceeded, Failed, Stopped];
}

/// <summary>
/// An agent announces itself (and again after each restart). A node is known by <c>name</c>: the
/// first registration creates it with a /64 of the cluster prefix, later ones return the same id
/// and prefix and update what changed.
/// </summary>
/// <param name="Name">The node's name (DNS label rules, at most 63 characters).</param>
/// <param name="MemoryBytes">Memory the node offers to instances.</param>
/// <param name="Cpus">CPU cores.</param>
/// <param name="Driver">The runtime driver (<c>qemu</c>, <c>firecracker</c>, <c>fake</c>).</param>
/// <param name="Acceleration"><c>kvm</c>, <c>tcg</c> or <c>none</c>.</param>
/// <param name="Region">The node's region label, or null.</param>
/// <param name="AgentVersion">The agent's version string.</param>
public sealed record RegisterNodeRequest(string Name, long MemoryBytes, int Cpus, string Driver, string Acceleration, string? Region = null, string? AgentVersion = null);

/// <summary>A node as the control plane knows it.</summary>
/// <param name="Id">The node's id (derived from its name).</param>
/// <param name="Name">Its name.</param>
/// <param name="Prefix">The node's instance /64, like <c>fd74:7263:0:1::/64</c>.</param>
/// <param name="MemoryBytes">Memory it offers to instances (as last registered).</param>
/// <param name="Cpus">CPU cores.</param>
/// <param name="Driver">Its runtime driver.</param>
/// <param name="Acceleration"><c>kvm</c>, <c>tcg</c> or <c>none</c>.</param>
/// <param name="Region">Its region label, or null.</param>
/// <param name="Status"><c>ready</c> (heard from within the lease), <c>silent</c> (not heard from since), <c>lost</c> (declared lost; its instances were rescheduled), <c>draining</c> or <c>disabled</c> (set by the operator).</param>
/// <param name="LastHeartbeat">When a server replica last heard from it, or null.</param>
/// <param name="Instances">Instances scheduled on it and not stop-requested.</param>
/// <param name="RegisteredAt">When it first registered.</param>
/// <param name="AgentVersion">The agent's version as last registered, or null.</param>
/// <param name="AdminState">The operator's state: active, draining or disabled.</param>
/// <param name="StatusReason">Why its status last changed (lost, recovered, drained...), or null.</param>
/// <param name="UsedMemoryBytes">Memory caps of the instances scheduled on it and not asked to stop.</param>
/// <param name="AllocatableMemoryBytes">Memory the scheduler places instances into: what it offers minus the cluster's buffer.</param>
public sealed record NodeView(
    Guid Id,
    string Name,
    string Prefix,
    long MemoryBytes,
    int Cpus,
    string Driver,
    string Acceleration,
    string? Region,
    string Status,
    DateTimeOffset? LastHeartbeat,
    int Instances,
    DateTimeOffset RegisteredAt,
    string? AgentVersion = null,
    string AdminState = "active",
    string? StatusReason = null,
    long UsedMemoryBytes = 0,
    long AllocatableMemoryBytes = 0);

/// <summary>Set a node's admin state: <c>active</c>, <c>draining</c> or <c>disabled</c>, with an optional reason.</summary>
public sealed record NodeStateRequest(string State, string? Reason = null);

/// <summary>A heartbeat: the node is alive, with what it has free and what runs on it.</summary>
public sealed record HeartbeatRequest(long MemoryBytes, int Cpus, IReadOnlyList<InstanceHeartbeat> Instances);

/// <summary>One instance in a heartbeat.</summary>
public sealed record InstanceHeartbeat(Guid Id, string State);

/// <summary>
/// What a node runs, as of event <paramref name="Position"/>: follow the change stream with
/// <c>node=ID</c> after it, and take this again (with <c>after</c>) on an event of
/// <see cref="Domain.EventNames.NodeDesiredState"/>.
/// </summary>
public sealed record NodeInstancesView(long Position, IReadOnlyList<InstanceSpecView> Instances);

/// <summary>Everything an agent needs to run one instance (except its secrets, fetched separately).</summary>
/// <param name="Id">The instance.</param>
/// <param name="Org">Org name.</param>
/// <param name="App">App name.</param>
/// <param name="Env">Env name.</param>
/// <param name="EnvId">The env's id.</param>
/// <param name="Process">The process type.</param>
/// <param name="Release">The release number.</param>
/// <param name="Image">The pinned image reference (<c>repo@sha256:...</c>).</param>
/// <param name="ImageDigest">The manifest (or index) digest.</param>
/// <param name="ResolvedDigests">Platform to manifest digest, when the image is an index.</param>
/// <param name="Command">The manifest's command, or null for the image's Entrypoint and Cmd.</param>
/// <param name="Ports">Ports the process listens on.</param>
/// <param name="Cpu">Requested vCPUs (a weight, not a limit).</param>
/// <param name="MemoryBytes">The memory cap (the VM's RAM).</param>
/// <param name="User">User to run as, or null for root.</param>
/// <param name="Healthcheck">The health check, or null.</param>
/// <param name="SecretsVersion">The env's secrets version the release runs with (0: none).</param>
/// <param name="Volumes">Volumes of this process (attached in a later issue).</param>
/// <param name="Region">The node's region, for <c>TRC_REGION</c>.</param>
public sealed record InstanceSpecView(
    Guid Id,
    string Org,
    string App,
    string Env,
    Guid EnvId,
    string Process,
    int Release,
    string Image,
    string ImageDigest,
    IReadOnlyDictionary<string, string>? ResolvedDigests,
    IReadOnlyList<string>? Command,
    IReadOnlyList<int> Ports,
    decimal Cpu,
    long MemoryBytes,
    string? User,
    HealthcheckView? Healthcheck,
    int SecretsVersion,
    IReadOnlyList<VolumeView> Volumes,
    string? Region);

/// <summary>A health check: <c>tcp</c> or <c>http</c> (GET <c>path</c>, 2xx/3xx is healthy).</summary>
public sealed record HealthcheckView(string Kind, int Port, string? Path, int IntervalMs, int TimeoutMs);

/// <summary>
/// An agent reports an instance's new state. <c>exit_code</c> with <c>exited</c> and
/// <c>memory_limit_exceeded</c>; <c>reason</c> with <c>failed</c> (and as detail elsewhere);
/// <c>address</c> (the instance's IPv6) from <c>running</c> on.
/// </summary>
public sealed record InstanceStateRequest(string State, string? Address = null, int? ExitCode = null, string? Reason = null, int Restarts = 0);

/// <summary>An instance as users see it.</summary>
public sealed record InstanceView(
    Guid Id,
    string Process,
    int Release,
    Guid NodeId,
    string Node,
    string State,
    string? Address,
    int? ExitCode,
    string? Reason,
    int Restarts,
    bool StopRequested,
    DateTimeOffset ScheduledAt,
    DateTimeOffset UpdatedAt,
    int Deployment = 0,
    string? StopReason = null);

/// <summary>The limits of the log endpoints: what agents ship and what readers page through.</summary>
public static class LogLimits
{
    /// <summary>Most lines in one batch an agent ships.</summary>
    public const int MaxLinesPerBatch = 1000;

    /// <summary>Longest line, in UTF-8 bytes: agents split longer ones.</summary>
    public const int MaxLineBytes = 16 * 1024;

    /// <summary>Lines per page when the reader gives no <c>limit</c>.</summary>
    public const int DefaultPageLines = 500;

    /// <summary>Most lines per page.</summary>
    public const int MaxPageLines = 5000;
}

/// <summary>The streams a log line comes from.</summary>
public static class LogStreams
{
    /// <summary>The app's standard output.</summary>
    public const string Stdout = "stdout";

    /// <summary>The app's standard error.</summary>
    public const string Stderr = "stderr";

    /// <summary>The platform's own lines about the instance or the env (boot, health, restarts, waiting for a node).</summary>
    public const string System = "system";

    /// <summary>Every stream, for validation.</summary>
    public static IReadOnlyList<string> All { get; } = [Stdout, Stderr, System];
}

/// <summary>A batch of log lines from one node (at most 1,000 lines, each at most 16 KiB).</summary>
public sealed record LogBatchRequest(IReadOnlyList<LogLineRequest> Lines);

/// <summary>One line: which instance, which stream (<c>stdout</c>, <c>stderr</c>, <c>system</c>), when, what.</summary>
public sealed record LogLineRequest(Guid Instance, string Stream, DateTimeOffset Time, string Line);

/// <summary>One stored log line, tagged by the control plane from the instance's schedule.</summary>
public sealed record LogEntryView(
    long Id,
    DateTimeOffset Time,
    string Org,
    string App,
    string Env,
    string Process,
    Guid Instance,
    int Release,
    string Stream,
    string Line);

/// <summary>A page of log lines, oldest first; pass <c>next_cursor</c> as <c>after</c> for the next.</summary>
public sealed record LogPageView(IReadOnlyList<LogEntryView> Lines, long NextCursor);
#pragma warning restore CS1591
