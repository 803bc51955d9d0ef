using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using Trc.Agent.Runtime;

namespace Trc.Agent.Network;

/// <summary>
/// Instance networking on one node: a Linux bridge holding the node's /64 (the host is
/// <c>PREFIX::1</c>), one tap per instance attached to it, one IPv6 address per instance derived
/// from its id. The host, and so a local edge, reaches every instance directly over the bridge.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class NodeNetwork
{
    /// <summary>The MTU of the bridge, taps and guests (room for WireGuard between nodes).</summary>
    public const int Mtu = 1420;

    private readonly string _ip;

    /// <summary>A node network on <paramref name="bridge"/> for the /64 <paramref name="prefix"/>.</summary>
    public NodeNetwork(string bridge, string prefix, string ipBinary = "ip")
    {
        ValidateInterfaceName(bridge, nameof(bridge));
        Bridge = bridge;
        (Prefix, PrefixBytes) = ParsePrefix(prefix);
        _ip = ipBinary;
    }

    /// <summary>The bridge's name.</summary>
    public string Bridge { get; }

    /// <summary>The node's /64 as written (<c>fd74:7263:0:1::/64</c>).</summary>
    public string Prefix { get; }

    private byte[] PrefixBytes { get; }

    /// <summary>The host's address on the bridge: the instances' gateway.</summary>
    public IPAddress Gateway
    {
        get
        {
            var bytes = (byte[])PrefixBytes.Clone();
            bytes[15] = 1;
            return new IPAddress(bytes);
        }
    }

    /// <summary>The instance's address: the node's /64 plus 64 bits derived from its id (never <c>::0</c> or <c>::1</c>).</summary>
    public IPAddress AddressOf(Guid instance)
    {
        var hash = SHA256.HashData(Encoding.ASCII.GetBytes(instance.ToString("D")));
        var bytes = (byte[])PrefixBytes.Clone();
        Array.Copy(hash, 0, bytes, 8, 8);
        bytes[8] |= 0x02; // the interface id's high byte is never zero, so never ::0 or ::1
        return new IPAddress(bytes);
    }

    /// <summary>The guest's MAC: locally administered, derived from the instance id.</summary>
    public static string MacOf(Guid instance)
    {
        var hash = SHA256.HashData(Encoding.ASCII.GetBytes("mac:" + instance.ToString("D")));
        return $"02:{hash[0]:x2}:{hash[1]:x2}:{hash[2]:x2}:{hash[3]:x2}:{hash[4]:x2}";
    }

    /// <summary>
    /// The bridge's MAC: locally administered, derived from the node's /64, and set explicitly. A
    /// bridge without one takes the lowest MAC of its ports, which changes as instances' taps come
    /// and go; every guest then holds a stale gateway MAC and what it sends the host is dropped
    /// until neighbour discovery happens to run again (seconds, up to about 45 s).
    /// </summary>
    public string BridgeMac
    {
        get
        {
            var hash = SHA256.HashData(Encoding.ASCII.GetBytes("bridge:" + Prefix));
            return $"02:{hash[0]:x2}:{hash[1]:x2}:{hash[2]:x2}:{hash[3]:x2}:{hash[4]:x2}";
        }
    }

    /// <summary>The tap device's name for an instance (at most 15 characters).</summary>
    public static string TapOf(Guid instance) => "trc" + instance.ToString("N")[..12];

    /// <summary>Creates the bridge with its fixed MAC and the gateway address when missing, and brings it up.</summary>
    public async Task EnsureBridgeAsync(CancellationToken ct)
    {
        if (!Directory.Exists($"/sys/class/net/{Bridge}"))
        {
            await IpAsync(ct, "link", "add", Bridge, "address", BridgeMac, "type", "bridge").ConfigureAwait(false);
        }
        else if (!string.Equals(File.ReadAllText($"/sys/class/net/{Bridge}/address").Trim(), BridgeMac, StringComparison.OrdinalIgnoreCase))
        {
            // A bridge from an agent without a fixed MAC: pin it now (once; guests re-learn it).
            await IpAsync(ct, "link", "set", Bridge, "address", BridgeMac).ConfigureAwait(false);
        }
        await IpAsync(ct, "link", "set", Bridge, "up").ConfigureAwait(false);
        var (_, addresses) = await HostProcess.RunAsync(_ip, ["-6", "addr", "show", "dev", Bridge], TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        if (!addresses.Contains(Gateway + "/64", StringComparison.Ordinal))
        {
            await IpAsync(ct, "-6", "addr", "add", Gateway + "/64", "dev", Bridge, "nodad").ConfigureAwait(false);
        }
    }

    /// <summary>Creates an instance's tap (replacing a stale one) and attaches it to the bridge.</summary>
    public async Task<string> CreateTapAsync(Guid instance, CancellationToken ct)
    {
        var tap = TapOf(instance);
        await DeleteTapAsync(instance, ct).ConfigureAwait(false);
        await IpAsync(ct, "tuntap", "add", "dev", tap, "mode", "tap").ConfigureAwait(false);
        await IpAsync(ct, "link", "set", tap, "master", Bridge, "mtu", Mtu.ToString(System.Globalization.CultureInfo.InvariantCulture), "up").ConfigureAwait(false);
        return tap;
    }

    /// <summary>Removes an instance's tap, when it exists.</summary>
    public async Task DeleteTapAsync(Guid instance, CancellationToken ct)
    {
        var tap = TapOf(instance);
        if (Directory.Exists($"/sys/class/net/{tap}"))
        {
            await IpAsync(ct, "link", "del", tap).ConfigureAwait(false);
        }
    }

    /// <summary>Removes the bridge (tests and <c>trc agent --cleanup</c>).</summary>
    public async Task DeleteBridgeAsync(CancellationToken ct)
    {
        if (Directory.Exists($"/sys/class/net/{Bridge}"))
        {
            await IpAsync(ct, "link", "del", Bridge).ConfigureAwait(false);
        }
    }

    private async Task IpAsync(CancellationToken ct, params string[] args)
    {
        var (code, output) = await HostProcess.RunAsync(_ip, args, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        if (code != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', args)} failed (exit {code}): {output.Trim()}");
        }
    }

    private static (string, byte[]) ParsePrefix(string prefix)
    {
        var slash = prefix.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || prefix[(slash + 1)..] != "64" || !IPAddress.TryParse(prefix[..slash], out var address) || address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            throw new ArgumentException($"node prefix '{prefix}' must be an IPv6 /64 like fd74:7263:0:1::/64", nameof(prefix));
        }
        var bytes = address.GetAddressBytes();
        if (bytes.AsSpan(8).ContainsAnyExcept((byte)0))
        {
            throw new ArgumentException($"node prefix '{prefix}' has bits set past /64", nameof(prefix));
        }
        return (prefix, bytes);
    }

    private static void ValidateInterfaceName(string name, string field)
    {
        if (name.Length is 0 or > 15 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new ArgumentException($"interface name '{name}' must be 1-15 characters of [A-Za-z0-9._-]", field);
        }
    }
}
