namespace Trc.Core.Manifest;

/// <summary>
/// A validated <c>trc.toml</c>: one app's processes, routes and volumes, with every default filled
/// and every size and duration parsed. Instances are only handed out when the manifest has no
/// error, so every field here obeys the rules of <see cref="ManifestSchema"/>.
/// </summary>
/// <param name="App">The app's name.</param>
/// <param name="Processes">Process types by name, in canonical order (web first, then by name).</param>
/// <param name="Routes">Public routes, in the order written.</param>
/// <param name="Volumes">Persistent volumes, in the order written.</param>
public sealed record AppManifest(
    string App,
    IReadOnlyList<ProcessSpec> Processes,
    IReadOnlyList<RouteSpec> Routes,
    IReadOnlyList<VolumeSpec> Volumes)
{
    /// <summary>The process named <paramref name="name"/>, or null.</summary>
    public ProcessSpec? FindProcess(string name) => Processes.FirstOrDefault(p => p.Name == name);
}

/// <summary>One process type: what runs in each of its microVMs, and how many of them.</summary>
/// <param name="Name">The process type's name (<c>web</c>, <c>worker</c>).</param>
/// <param name="Command">The argv to run; null means the image's Entrypoint and Cmd.</param>
/// <param name="Ports">TCP ports the process listens on.</param>
/// <param name="Cpu">Requested vCPUs: a soft share (cgroup weight), never a limit.</param>
/// <param name="MemoryBytes">The hard memory cap, which is also the microVM's RAM.</param>
/// <param name="User">The user (and group) to run as, or null for root.</param>
/// <param name="Scaling">Instance count bounds.</param>
/// <param name="Healthcheck">How instances are checked, or null for none.</param>
public sealed record ProcessSpec(
    string Name,
    IReadOnlyList<string>? Command,
    IReadOnlyList<int> Ports,
    decimal Cpu,
    long MemoryBytes,
    string? User,
    ScalingSpec Scaling,
    HealthcheckSpec? Healthcheck);

/// <summary>Instance count bounds of a process.</summary>
/// <param name="Min">Fewest instances.</param>
/// <param name="Max">Most instances.</param>
public sealed record ScalingSpec(int Min, int Max);

/// <summary>Which kind of health check.</summary>
public enum HealthcheckKind
{
    /// <summary>A TCP connect to the port succeeds.</summary>
    Tcp,

    /// <summary>An HTTP GET of the path answers 2xx or 3xx.</summary>
    Http,
}

/// <summary>A health check run against every instance.</summary>
/// <param name="Kind">TCP or HTTP.</param>
/// <param name="Port">The port checked.</param>
/// <param name="Path">For HTTP: the path requested.</param>
/// <param name="Interval">Time between checks.</param>
/// <param name="Timeout">How long one check may take.</param>
public sealed record HealthcheckSpec(HealthcheckKind Kind, int Port, string? Path, TimeSpan Interval, TimeSpan Timeout);

/// <summary>How the edge handles a route's connections.</summary>
public enum RouteProtocol
{
    /// <summary>Route TLS by the ClientHello's SNI without terminating it.</summary>
    TlsPassthrough,

    /// <summary>Route by listen address and port alone; bytes are never inspected.</summary>
    TcpRaw,
}

/// <summary>Whether the edge prepends a PROXY protocol header.</summary>
public enum ProxyProtocolMode
{
    /// <summary>No header: the backend sees the edge's address.</summary>
    Off,

    /// <summary>A PROXY protocol v2 header carrying the client's address.</summary>
    V2,
}

/// <summary>A public route: a hostname and port on the edge, forwarded to a process's port.</summary>
/// <param name="Hostname">Fully qualified name, lower case; may start with <c>*.</c> for one label.</param>
/// <param name="ListenPort">The port the edge listens on.</param>
/// <param name="Protocol">TLS passthrough by SNI, or raw TCP.</param>
/// <param name="Process">The process type receiving the connections.</param>
/// <param name="BackendPort">The port inside the process's microVMs.</param>
/// <param name="ProxyProtocol">Whether to prepend a PROXY v2 header.</param>
/// <param name="BackendExpectsProxyProtocol">The author's confirmation that the backend parses PROXY v2.</param>
/// <param name="Ipv4Required">The route must also be reachable over the env's dedicated IPv4 address.</param>
public sealed record RouteSpec(
    string Hostname,
    int ListenPort,
    RouteProtocol Protocol,
    string Process,
    int BackendPort,
    ProxyProtocolMode ProxyProtocol,
    bool BackendExpectsProxyProtocol,
    bool Ipv4Required);

/// <summary>A persistent volume attached to a process's instance.</summary>
/// <param name="Name">The volume's name; it is mounted at <c>/mnt/volumes/NAME</c>.</param>
/// <param name="SizeBytes">Its size.</param>
/// <param name="Process">The process type it attaches to.</param>
/// <param name="BackupEnabled">Whether it is backed up on the platform's schedule.</param>
public sealed record VolumeSpec(string Name, long SizeBytes, string Process, bool BackupEnabled)
{
    /// <summary>Where the guest mounts it.</summary>
    public string MountPath => "/mnt/volumes/" + Name;
}
