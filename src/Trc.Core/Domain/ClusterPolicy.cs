using System.Net;

namespace Trc.Core.Domain;

/// <summary>
/// The operator's rules for the whole cluster (DESIGN section 4; ADR 0007, 0008, 0012): which
/// public ports routes may use, the IPv4 pool, CPU overcommit and the quotas a new org starts with.
/// </summary>
public sealed record ClusterPolicy
{
    /// <summary>Ports any route may use.</summary>
    public IReadOnlySet<int> DefaultPorts { get; init; } = new HashSet<int> { 80, 443 };

    /// <summary>Further TCP ports the operator allows (a route must declare them explicitly).</summary>
    public IReadOnlySet<int> AllowedPorts { get; init; } = new HashSet<int>();

    /// <summary>Ports no route may use, even if allowed: mail submission and similar abuse magnets.</summary>
    public IReadOnlySet<int> DeniedPorts { get; init; } = new HashSet<int> { 25, 465, 587, 2525 };

    /// <summary>Public IPv4 addresses the IPv4 add-on hands out, one per env.</summary>
    public IReadOnlyList<IPAddress> Ipv4Pool { get; init; } = [];

    /// <summary>Ports included with a dedicated IPv4 besides 80 and 443 (the "port bundle").</summary>
    public int Ipv4ExtraPorts { get; init; } = 3;

    /// <summary>vCPU a node may promise per physical core (CPU is soft).</summary>
    public double CpuOvercommit { get; init; } = 4.0;

    /// <summary>
    /// Share of the memory a node offers (its physical memory minus what its agent reserves) that
    /// the scheduler keeps free, in percent: the VMMs' own memory and page cache live there.
    /// </summary>
    public int MemoryBufferPercent { get; init; } = 5;

    /// <summary>Quotas of a new org.</summary>
    public Quotas DefaultQuotas { get; init; } = new(64L << 30, 100, 50, 2);

    /// <summary>The defaults.</summary>
    public static ClusterPolicy Default { get; } = new();

    /// <summary>Checks a route's listen port; throws naming <c>listen_port</c>.</summary>
    public void CheckListenPort(int port, bool hasDedicatedIpv4)
    {
        if (port is < 1 or > 65535)
        {
            throw DomainException.Invalid("invalid_port", "listen_port", $"{port} is not a TCP port (1-65535)");
        }
        if (DeniedPorts.Contains(port))
        {
            throw DomainException.Invalid("port_denied", "listen_port", $"port {port} is denied by the cluster's port policy");
        }
        if (!DefaultPorts.Contains(port) && !AllowedPorts.Contains(port))
        {
            var allowed = string.Join(", ", DefaultPorts.Concat(AllowedPorts).Order());
            throw DomainException.Invalid("port_not_allowed", "listen_port",
                $"port {port} is not allowed by the cluster's port policy (allowed: {allowed}){(hasDedicatedIpv4 ? "" : "; the IPv4 add-on does not change that")}");
        }
    }
}
