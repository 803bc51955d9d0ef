using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trc.Agent.Guest;

/// <summary>
/// What one instance's guest needs to run its app: the content of the config disk (docs/guest.md,
/// "Config disk"). <see cref="GuestConfigWriter"/> checks and encodes it; <see cref="GuestConfigReader"/>
/// decodes it. Equality compares the lists and the secret bytes by content; <see cref="ToString"/>
/// never shows the secrets or environment values.
/// </summary>
public sealed record GuestConfig
{
    /// <summary>The app's argv: the manifest's command, else the image's Entrypoint + Cmd. At least one; the first is the program.</summary>
    public required IReadOnlyList<string> Args { get; init; }

    /// <summary>
    /// The environment as <c>NAME=VALUE</c> entries (the OCI image's Env form), in order: the image's,
    /// then the platform's <c>TRC_*</c> variables; a later NAME wins in the guest.
    /// </summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary>The working directory (absolute), or null for <c>/</c>.</summary>
    public string? WorkDir { get; init; }

    /// <summary>The OCI <c>user</c> (<c>name</c>, <c>uid</c>, <c>name:group</c>, <c>uid:gid</c>), or null for root.</summary>
    public string? User { get; init; }

    /// <summary>The guest's hostname, or null to leave the kernel's.</summary>
    public string? Hostname { get; init; }

    /// <summary><c>eth0</c>'s address, or null for no network (eth0 stays down).</summary>
    public GuestIpv6Address? Ipv6 { get; init; }

    /// <summary>The IPv6 default gateway (needs <see cref="Ipv6"/>), or null for no default route.</summary>
    public IPAddress? Gateway { get; init; }

    /// <summary><c>eth0</c>'s MTU, or null for the guest's default (<see cref="GuestConfigLimits.DefaultMtu"/>).</summary>
    public int? Mtu { get; init; }

    /// <summary>The exact bytes of <c>/run/secrets/platform.env</c>, or null for no such file.</summary>
    public byte[]? Secrets { get; init; }

    /// <summary>Volume names, in disk order: the first is <c>/dev/vdd</c>, mounted at <c>/mnt/volumes/NAME</c>.</summary>
    public IReadOnlyList<string> Volumes { get; init; } = [];

    /// <inheritdoc/>
    public bool Equals(GuestConfig? other) =>
        other is not null &&
        Args.SequenceEqual(other.Args) &&
        Env.SequenceEqual(other.Env) &&
        WorkDir == other.WorkDir &&
        User == other.User &&
        Hostname == other.Hostname &&
        Equals(Ipv6, other.Ipv6) &&
        Equals(Gateway, other.Gateway) &&
        Mtu == other.Mtu &&
        (Secrets is null ? other.Secrets is null : other.Secrets is not null && Secrets.AsSpan().SequenceEqual(other.Secrets)) &&
        Volumes.SequenceEqual(other.Volumes);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Args.Count, Env.Count, WorkDir, User, Hostname, Ipv6, Mtu, Volumes.Count);

    private bool PrintMembers(StringBuilder builder)
    {
        // Null lists and entries are shown, not thrown on: this describes configs the writer refuses too.
        builder.Append(CultureInfo.InvariantCulture, $"Args = [{string.Join(", ", Args ?? [])}], ");
        builder.Append(CultureInfo.InvariantCulture, $"Env = [{string.Join(", ", (Env ?? []).Select(e => e?.Split('=')[0]))}] (values not shown), ");
        builder.Append(CultureInfo.InvariantCulture, $"WorkDir = {WorkDir}, User = {User}, Hostname = {Hostname}, ");
        builder.Append(CultureInfo.InvariantCulture, $"Ipv6 = {Ipv6}, Gateway = {Gateway}, Mtu = {Mtu}, ");
        builder.Append(CultureInfo.InvariantCulture, $"Secrets = {(Secrets is null ? "none" : $"{Secrets.Length} bytes")}, ");
        builder.Append(CultureInfo.InvariantCulture, $"Volumes = [{string.Join(", ", Volumes ?? [])}]");
        return true;
    }
}

/// <summary>An interface address: an IPv6 address and its prefix length (the host bits may be set, unlike <see cref="IPNetwork"/>).</summary>
/// <param name="Address">The address (IPv6).</param>
/// <param name="PrefixLength">The prefix length, 1 to 128.</param>
public sealed record GuestIpv6Address(IPAddress Address, int PrefixLength)
{
    /// <summary><c>ADDRESS/PREFIXLEN</c>.</summary>
    public override string ToString() => $"{Address}/{PrefixLength.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Parses <c>ADDRESS/PREFIXLEN</c>: an IPv6 address and a prefix length from 1 to 128.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out GuestIpv6Address? address)
    {
        address = null;
        var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        if (slash < 0 || !int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var prefix) ||
            prefix is < 1 or > 128 || !IPAddress.TryParse(text.AsSpan(0, slash), out var ip) ||
            ip.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }
        address = new GuestIpv6Address(ip, prefix);
        return true;
    }
}

/// <summary>The limits of the config disk format (docs/guest.md); init enforces the same numbers.</summary>
public static class GuestConfigLimits
{
    /// <summary>The first line of every config disk.</summary>
    public static ReadOnlySpan<byte> Magic => "TRCGUEST1\n"u8;

    /// <summary>The largest config disk, padding included.</summary>
    public const int MaxDiskBytes = 16 << 20;

    /// <summary>The largest value of one record.</summary>
    public const int MaxRecordBytes = 8 << 20;

    /// <summary>The longest record key.</summary>
    public const int MaxKeyBytes = 32;

    /// <summary>The most <c>arg</c> records, and the most <c>env</c> records.</summary>
    public const int MaxListRecords = 65536;

    /// <summary>The most volumes (<c>/dev/vdd</c> to <c>/dev/vds</c>).</summary>
    public const int MaxVolumes = 16;

    /// <summary>The longest working directory, in bytes.</summary>
    public const int MaxWorkDirBytes = 4095;

    /// <summary>The longest <c>user</c> value, in bytes.</summary>
    public const int MaxUserBytes = 256;

    /// <summary>The longest hostname, in bytes.</summary>
    public const int MaxHostnameBytes = 64;

    /// <summary>The longest volume name, in bytes.</summary>
    public const int MaxVolumeNameBytes = 63;

    /// <summary>The smallest MTU (IPv6's minimum link MTU).</summary>
    public const int MinMtu = 1280;

    /// <summary>The largest MTU.</summary>
    public const int MaxMtu = 65535;

    /// <summary>The MTU the guest uses when the config has none.</summary>
    public const int DefaultMtu = 1420;

    /// <summary>The config disk's size is a multiple of this.</summary>
    public const int SectorBytes = 512;

    /// <summary>
    /// The smallest config disk the writer makes: the kernel's partition scan reads the first 16
    /// sectors of every disk and logs an error for a shorter one.
    /// </summary>
    public const int MinDiskBytes = 8192;
}
