using System.Net;
using FsCheck;
using FsCheck.Fluent;
using Trc.Agent.Guest;

namespace Trc.Agent.Tests.Guest;

/// <summary>Generators of valid <see cref="GuestConfig"/>s, leaning on the edges of the rules.</summary>
public static class GuestConfigGen
{
    private static readonly string[] TextPieces =
        ["a", "Z", "0", " ", "=", ":", "/", "\n", "\t", "\r", "\u001e", "\u00e9", "\u2603", "\U0001F600", "$HOME", "'", "\"", "\\", "\u007f"];

    public static readonly Gen<string> Text =
        Gen.Choose(0, 8).SelectMany(n => Gen.ArrayOf(Gen.Elements(TextPieces), n)).Select(parts => string.Concat(parts));

    private static readonly char[] NameChars = "ABCXYZabcxyz0189_.-".ToCharArray();

    private static readonly Gen<string> EnvName =
        Gen.Choose(1, 10).SelectMany(n => Gen.ArrayOf(Gen.Elements(NameChars), n)).Select(c => new string(c));

    private static readonly Gen<string> HostName =
        Gen.Frequency(
            (4, Gen.Choose(1, 20).SelectMany(n => Gen.ArrayOf(Gen.Elements("abcxyz019-.".ToCharArray()), n)).Select(c => new string(c))),
            (1, Gen.Constant(new string('h', 64))));

    private static readonly Gen<string> VolumeName =
        Gen.Choose(0, 62).SelectMany(n => Gen.ArrayOf(Gen.Elements("abz09_.-".ToCharArray()), n)).Select(c => "v" + new string(c));

    public static readonly Gen<IPAddress> Address =
        Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b), 16).Select(bytes =>
        {
            bytes[0] = 0xfd; // a unique-local address: never multicast, loopback, unspecified or v4-mapped
            return new IPAddress(bytes);
        });

    private static Gen<T?> Maybe<T>(Gen<T> gen) where T : class => Gen.Frequency((1, Gen.Constant<T?>(null)), (2, gen.Select(v => (T?)v)));

    private static Gen<int?> MaybeInt(Gen<int> gen) => Gen.Frequency((1, Gen.Constant<int?>(null)), (2, gen.Select(v => (int?)v)));

    public static readonly Gen<GuestConfig> Configs =
        from first in Text.Where(t => t.Length > 0)
        from rest in Gen.Choose(0, 4).SelectMany(n => Gen.ArrayOf(Text, n))
        from env in Gen.Choose(0, 5).SelectMany(n => Gen.ArrayOf(from name in EnvName from value in Text select $"{name}={value}", n))
        from workDir in Maybe(Text.Select(t => "/" + t))
        from user in Maybe(Gen.Elements("app", "1000", "app:extra", "1000:2000", "nobody", "r\u00e9mi"))
        from hostname in Maybe(HostName)
        from address in Maybe(Address)
        from prefix in Gen.Choose(1, 128)
        from gateway in Maybe(Address)
        from mtu in MaybeInt(Gen.Choose(1280, 65535))
        from secrets in Maybe(Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b)))
        from volumes in Gen.Choose(0, 4).SelectMany(n => Gen.ArrayOf(VolumeName, n))
        select new GuestConfig
        {
            Args = [first, .. rest],
            Env = env,
            WorkDir = workDir,
            User = user,
            Hostname = hostname,
            Ipv6 = address is null ? null : new GuestIpv6Address(address, prefix),
            Gateway = address is null ? null : gateway,
            Mtu = mtu,
            Secrets = secrets,
            Volumes = volumes.Distinct().ToArray(),
        };
}
