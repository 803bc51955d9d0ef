using System.Diagnostics;
using System.Net;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Trc.Agent.Guest;

namespace Trc.Agent.Tests.Guest;

public sealed class GuestConfigReaderTests
{
    public static TheoryData<DiskSample> Samples => [.. ConfigDiskSamples.All()];

    [Theory]
    [MemberData(nameof(Samples))]
    public void Each_sample_is_accepted_or_refused_with_its_offset_and_reason(DiskSample sample)
    {
        var ok = GuestConfigReader.TryRead(sample.Disk, out var config, out var error);
        Assert.Equal(sample.Error, error?.ToString());
        Assert.Equal(sample.Error is null, ok);
        Assert.Equal(ok, config is not null);
    }

    [Fact]
    public void A_disk_reads_into_the_config_it_describes()
    {
        var disk = Encoding.Latin1.GetBytes(
            "TRCGUEST1\n" +
            "arg 4\n/app\narg 2\n-v\n" +
            "env 3\nA=1\nenv 5\nB=x=y\n" +
            "workdir 4\n/srv\nuser 9\n1000:1000\nhostname 1\nh\n" +
            "ipv6 12\nfd00:7::2/64\ngateway 9\nfd00:7::1\nmtu 4\n1400\n" +
            "secrets 3\na\0b\nvolume 4\ndata\n" +
            "end 0\n\n");
        var config = GuestConfigReader.Read(disk);
        Assert.Equal(new GuestConfig
        {
            Args = ["/app", "-v"],
            Env = ["A=1", "B=x=y"],
            WorkDir = "/srv",
            User = "1000:1000",
            Hostname = "h",
            Ipv6 = new GuestIpv6Address(IPAddress.Parse("fd00:7::2"), 64),
            Gateway = IPAddress.Parse("fd00:7::1"),
            Mtu = 1400,
            Secrets = "a\0b"u8.ToArray(),
            Volumes = ["data"],
        }, config);
    }

    [Fact]
    public void Read_throws_a_format_exception_with_init_s_message()
    {
        var e = Assert.Throws<FormatException>(() => GuestConfigReader.Read("TRCGUEST1\nend 0\n\n"u8));
        Assert.Equal("config: offset 10: no arg record", e.Message);
    }

    [Fact]
    public void An_error_names_the_key_but_never_the_value()
    {
        var disk = Encoding.Latin1.GetBytes("TRCGUEST1\narg 1\nx\nenv 15\nhunter2-no-name\nend 0\n\n");
        Assert.False(GuestConfigReader.TryRead(disk, out _, out var error));
        Assert.Equal("offset 18: env: not NAME=VALUE", error.ToString());
    }

    [Fact]
    public void No_refusal_quotes_a_value_neither_in_the_error_nor_in_the_exception()
    {
        var refused = ConfigDiskSamples.All().Where(s => s.Disk.AsSpan().IndexOf(Encoding.ASCII.GetBytes(ConfigDiskSamples.Secret)) >= 0 && s.Error is not null).ToList();
        Assert.True(refused.Count >= 10, "the samples hold refused records with the marker");
        foreach (var sample in refused)
        {
            Assert.False(GuestConfigReader.TryRead(sample.Disk, out _, out var error));
            Assert.DoesNotContain(ConfigDiskSamples.Secret, error.ToString(), StringComparison.Ordinal);
            var e = Assert.Throws<FormatException>(() => GuestConfigReader.Read(sample.Disk));
            Assert.DoesNotContain(ConfigDiskSamples.Secret, e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>Valid disks, then damaged: bytes flipped, cut short, spliced, lengths inflated.</summary>
    public static readonly Gen<byte[]> DamagedDisks =
        from config in GuestConfigGen.Configs
        let disk = GuestConfigWriter.Encode(config)
        let used = Array.LastIndexOf(disk, (byte)'\n') + 1
        from kind in Gen.Choose(0, 5)
        from at in Gen.Choose(0, used)
        from value in Gen.Choose(0, 255)
        from count in Gen.Choose(1, 12)
        select Damage(disk, used, kind, at, (byte)value, count);

    private static byte[] Damage(byte[] disk, int used, int kind, int at, byte value, int count)
    {
        at = Math.Min(at, used - 1);
        switch (kind)
        {
            case 0: // one byte changed
                var flipped = (byte[])disk.Clone();
                flipped[at] = value;
                return flipped;
            case 1: // cut short
                return disk[..at];
            case 2: // bytes removed from the middle
                return [.. disk[..at], .. disk[Math.Min(used, at + count)..]];
            case 3: // bytes inserted
                return [.. disk[..at], .. Enumerable.Repeat(value, count), .. disk[at..]];
            case 4: // a length inflated (the first digit run after 'at' becomes nines)
                var inflated = (byte[])disk.Clone();
                for (var i = at; i < used && i < at + 64; i++)
                {
                    if (inflated[i] is >= (byte)'0' and <= (byte)'9')
                    {
                        for (var j = i; j < used && inflated[j] is >= (byte)'0' and <= (byte)'9'; j++)
                        {
                            inflated[j] = (byte)'9';
                        }
                        break;
                    }
                }
                return inflated;
            default: // noise after a prefix
                return [.. disk[..at], .. Enumerable.Range(0, count * 20).Select(i => (byte)(value * 31 + i * 7))];
        }
    }

    [Fact]
    public void Damaged_disks_give_an_error_or_a_config_never_an_exception_or_a_hang()
    {
        var property = Prop.ForAll(DamagedDisks.ToArbitrary(), disk =>
        {
            var clock = Stopwatch.StartNew();
            var ok = GuestConfigReader.TryRead(disk, out var config, out var error);
            var consistent = ok ? config is not null && error is null : config is null && error is not null && error.Offset >= 0 && error.Offset <= Math.Max(disk.Length, GuestConfigLimits.MaxDiskBytes);
            return (consistent && clock.Elapsed < TimeSpan.FromSeconds(1)).ToProperty();
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2000), property);
    }

    [Fact]
    public void Random_bytes_after_the_magic_never_throw()
    {
        var property = Prop.ForAll(Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b)).ToArbitrary(), bytes =>
        {
            GuestConfigReader.TryRead([.. GuestConfigLimits.Magic, .. bytes], out _, out _);
            GuestConfigReader.TryRead(bytes, out _, out _);
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2000), property);
    }
}
