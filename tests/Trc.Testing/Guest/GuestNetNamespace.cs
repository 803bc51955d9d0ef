using System.Globalization;
using System.Net;
using System.Security.Cryptography;

namespace Trc.Testing.Guest;

/// <summary>
/// A network namespace of its own with a tap device (<see cref="Tap"/>) for one guest, the host's end
/// of the guest's eth0: the namespace keeps tests apart from each other and from the machine's
/// network. QEMU runs inside it (<see cref="Wrap"/>); so do the host-side probes (ping, nc).
/// Needs root (ip netns). Deleted, with the tap, on dispose.
/// </summary>
public sealed class GuestNetNamespace : IAsyncDisposable
{
    /// <summary>The tap device's name inside the namespace.</summary>
    public const string Tap = "tap0";

    private GuestNetNamespace(string name, IPAddress hostAddress)
    {
        Name = name;
        HostAddress = hostAddress;
    }

    /// <summary>The namespace's name (unique per instance: <c>trcg-</c> and random hex).</summary>
    public string Name { get; }

    /// <summary>The tap's address on the host side.</summary>
    public IPAddress HostAddress { get; }

    /// <summary>Creates the namespace, its tap (up, with <paramref name="hostAddress"/>, no DAD) and brings lo up.</summary>
    public static async Task<GuestNetNamespace> CreateAsync(IPAddress hostAddress, int prefixLength, CancellationToken ct)
    {
        var name = "trcg-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(5));
        var ns = new GuestNetNamespace(name, hostAddress);
        var ip = Ip;
        await HostTool.RunCheckedAsync(ip, ["netns", "add", name], ct);
        try
        {
            await HostTool.RunCheckedAsync(ip, ["-n", name, "link", "set", "lo", "up"], ct);
            await HostTool.RunCheckedAsync(ip, ["-n", name, "tuntap", "add", Tap, "mode", "tap"], ct);
            await HostTool.RunCheckedAsync(ip, ["-n", name, "link", "set", Tap, "mtu", "1420", "up"], ct);
            await HostTool.RunCheckedAsync(ip, ["-n", name, "addr", "add", $"{hostAddress}/{prefixLength.ToString(CultureInfo.InvariantCulture)}", "dev", Tap, "nodad"], ct);
        }
        catch
        {
            await ns.DisposeAsync();
            throw;
        }
        return ns;
    }

    /// <summary>A command line that runs <paramref name="file"/> inside the namespace.</summary>
    public IReadOnlyList<string> Wrap(string file, IEnumerable<string> arguments) => [Ip, "netns", "exec", Name, file, .. arguments];

    /// <summary>Runs a program inside the namespace to its end.</summary>
    public Task<ToolResult> RunAsync(string file, IEnumerable<string> arguments, CancellationToken ct) =>
        HostTool.RunAsync(Ip, ["netns", "exec", Name, file, .. arguments], ct);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        // Best effort: a namespace left behind is not a test failure, and must not hide one.
        await HostTool.RunAsync(Ip, ["netns", "delete", Name], CancellationToken.None);
    }

    private static string Ip =>
        HostTool.Find("ip") ?? throw new InvalidOperationException("ip is not installed (iproute2)");
}
