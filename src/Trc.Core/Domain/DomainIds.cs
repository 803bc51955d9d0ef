using System.Security.Cryptography;
using System.Text;

namespace Trc.Core.Domain;

/// <summary>
/// Aggregate ids derived from names (RFC 9562 version 5 UUIDs). Because an org's id is a function
/// of its name, "an org name is unique" is simply "create appends to an aggregate that does not
/// exist yet"; the same for apps within an org, envs within an app, hostnames and IPv4 addresses
/// platform-wide. Names never change, so neither do ids.
/// </summary>
public static class DomainIds
{
    private static readonly Guid Namespace = new("6a0b5f56-1f0e-4d8e-9a57-3c3f4e6d2b10");

    /// <summary>An org's id.</summary>
    public static Guid Org(string name) => V5(Namespace, "org:" + name);

    /// <summary>An app's id within its org.</summary>
    public static Guid App(Guid orgId, string name) => V5(orgId, "app:" + name);

    /// <summary>An env's id within its app.</summary>
    public static Guid Env(Guid appId, string name) => V5(appId, "env:" + name);

    /// <summary>A hostname's id, platform-wide (the hostname is lower-case already).</summary>
    public static Guid Hostname(string hostname) => V5(Namespace, "hostname:" + hostname);

    /// <summary>A public IPv4 address's id, platform-wide.</summary>
    public static Guid Ipv4Address(string address) => V5(Namespace, "ipv4:" + address);

    /// <summary>A version 5 (SHA-1, name-based) UUID.</summary>
    public static Guid V5(Guid @namespace, string name)
    {
        Span<byte> ns = stackalloc byte[16];
        @namespace.TryWriteBytes(ns, bigEndian: true, out _);
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var input = new byte[16 + nameBytes.Length];
        ns.CopyTo(input);
        nameBytes.CopyTo(input, 16);
        Span<byte> hash = stackalloc byte[20];
        SHA1.HashData(input, hash);
        var bytes = hash[..16].ToArray();
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x50);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true);
    }
}
