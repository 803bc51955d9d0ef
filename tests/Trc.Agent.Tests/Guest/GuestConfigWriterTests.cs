using System.Net;
using System.Runtime.Versioning;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Trc.Agent.Guest;

namespace Trc.Agent.Tests.Guest;

public sealed class GuestConfigWriterTests
{
    private static readonly GuestConfig Minimal = new() { Args = ["/bin/app"] };

    [Fact]
    public void A_config_is_encoded_record_by_record_in_disk_order()
    {
        var config = new GuestConfig
        {
            Args = ["/bin/app", "--port", ""],
            Env = ["A=1", "TRC_APP=shop"],
            WorkDir = "/srv",
            User = "app:app",
            Hostname = "shop-web-1",
            Ipv6 = new GuestIpv6Address(IPAddress.Parse("fd00:7::2"), 64),
            Gateway = IPAddress.Parse("fd00:7::1"),
            Mtu = 1400,
            Secrets = "K=v\n"u8.ToArray(),
            Volumes = ["data"],
        };
        var expected =
            "TRCGUEST1\n" +
            "arg 8\n/bin/app\n" + "arg 6\n--port\n" + "arg 0\n\n" +
            "env 3\nA=1\n" + "env 12\nTRC_APP=shop\n" +
            "workdir 4\n/srv\n" +
            "user 7\napp:app\n" +
            "hostname 10\nshop-web-1\n" +
            "ipv6 21\nfd00:7:0:0:0:0:0:2/64\n" + // eight groups: never "::" or dotted IPv4
            "gateway 18\nfd00:7:0:0:0:0:0:1\n" +
            "mtu 4\n1400\n" +
            "secrets 4\nK=v\n\n" +
            "volume 4\ndata\n" +
            "end 0\n\n";
        var disk = GuestConfigWriter.Encode(config);
        Assert.Equal(expected, Encoding.UTF8.GetString(disk, 0, expected.Length));
        Assert.All(disk.Skip(expected.Length), b => Assert.Equal(0, b));
    }

    [Fact]
    public void The_disk_is_padded_with_zeros_to_whole_sectors_and_at_least_the_minimum()
    {
        var small = GuestConfigWriter.Encode(Minimal);
        Assert.Equal(GuestConfigLimits.MinDiskBytes, small.Length);

        var big = GuestConfigWriter.Encode(Minimal with { Secrets = new byte[20_000] });
        Assert.Equal(0, big.Length % GuestConfigLimits.SectorBytes);
        Assert.InRange(big.Length, 20_000, 20_000 + 2 * GuestConfigLimits.SectorBytes);
    }

    [Fact]
    public void Any_valid_config_reads_back_equal()
    {
        var property = Prop.ForAll(GuestConfigGen.Configs.ToArbitrary(), config =>
        {
            var disk = GuestConfigWriter.Encode(config);
            var ok = GuestConfigReader.TryRead(disk, out var back, out var error);
            return (ok && back!.Equals(config)).ToProperty().Label(error?.ToString() ?? config.ToString());
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(1000), property);
    }

    public static TheoryData<string, GuestConfig> Invalid => new()
    {
        { "Args", Minimal with { Args = [] } },
        { "Args[0]", Minimal with { Args = [""] } },
        { "Args", Minimal with { Args = null! } },
        { "Args", Minimal with { Args = Enumerable.Repeat("a", GuestConfigLimits.MaxListRecords + 1).ToArray() } },
        { "Args[1]", Minimal with { Args = ["/bin/app", null!] } },
        { "Args[1]", Minimal with { Args = ["/bin/app", "a\0b"] } },
        { "Args[1]", Minimal with { Args = ["/bin/app", "\ud800"] } },                          // a lone surrogate has no UTF-8
        { "Args[1]", Minimal with { Args = ["/bin/app", new string('a', GuestConfigWriter.MaxArgBytes)] } },
        { "Env", Minimal with { Env = Enumerable.Repeat("A=1", GuestConfigLimits.MaxListRecords + 1).ToArray() } },
        { "Env[1]", Minimal with { Env = ["A=1", null!] } },
        { "Env[0]", Minimal with { Env = ["NOEQUALS"] } },
        { "Env[0]", Minimal with { Env = ["=value"] } },
        { "Env[1]", Minimal with { Env = ["A=1", "HAS SPACE=1"] } },
        { "Env[0]", Minimal with { Env = ["A\u00e9=1"] } },
        { "Env[0]", Minimal with { Env = ["A=\0"] } },
        { "WorkDir", Minimal with { WorkDir = "relative" } },
        { "WorkDir", Minimal with { WorkDir = "" } },
        { "WorkDir", Minimal with { WorkDir = "/" + new string('d', 4095) } },
        { "User", Minimal with { User = "" } },
        { "User", Minimal with { User = "a:b:c" } },
        { "User", Minimal with { User = ":group" } },
        { "User", Minimal with { User = "user:" } },
        { "User", Minimal with { User = "bad\nname" } },
        { "Hostname", Minimal with { Hostname = "under_score" } },
        { "Hostname", Minimal with { Hostname = new string('h', 65) } },
        { "Ipv6", Minimal with { Ipv6 = new(IPAddress.Parse("10.0.0.2"), 24) } },
        { "Ipv6", Minimal with { Ipv6 = new(IPAddress.Parse("fd00::2"), 0) } },
        { "Ipv6", Minimal with { Ipv6 = new(IPAddress.Parse("fd00::2"), 129) } },
        { "Ipv6", Minimal with { Ipv6 = new(IPAddress.Parse("ff02::1"), 64) } },
        { "Ipv6", Minimal with { Ipv6 = new(IPAddress.Parse("::ffff:10.0.0.1"), 64) } },
        { "Ipv6", Minimal with { Ipv6 = new(IPAddress.Parse("fe80::1%2"), 64) } },
        { "Gateway", Minimal with { Gateway = IPAddress.Parse("fd00::1") } },                       // no Ipv6
        { "Gateway", Minimal with { Ipv6 = new(IPAddress.Parse("fd00::2"), 64), Gateway = IPAddress.IPv6Any } },
        { "Mtu", Minimal with { Mtu = 1279 } },
        { "Mtu", Minimal with { Mtu = 65536 } },
        { "Secrets", Minimal with { Secrets = new byte[GuestConfigLimits.MaxRecordBytes + 1] } },
        { "Volumes[0]", Minimal with { Volumes = [null!] } },
        { "Volumes[0]", Minimal with { Volumes = [".hidden"] } },
        { "Volumes[0]", Minimal with { Volumes = ["a/b"] } },
        { "Volumes[0]", Minimal with { Volumes = [new string('v', 64)] } },
        { "Volumes[1]", Minimal with { Volumes = ["data", "data"] } },
        { "Volumes", Minimal with { Volumes = Enumerable.Range(0, 17).Select(i => $"v{i}").ToArray() } },
        // 130 arguments just under the kernel's limit each: over 16 MiB in all.
        { "Config", Minimal with { Args = Enumerable.Repeat(new string('a', GuestConfigWriter.MaxArgBytes - 1), 130).ToArray() } },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void An_invalid_field_is_refused_with_its_name(string field, GuestConfig config)
    {
        var problem = GuestConfigWriter.Validate(config);
        Assert.NotNull(problem);
        Assert.Equal(field, problem.Field);
        var thrown = Assert.Throws<GuestConfigException>(() => GuestConfigWriter.Encode(config));
        Assert.Equal(problem, thrown.Problem);
        Assert.StartsWith($"guest config: {field}: ", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_variable_name_from_an_image_is_quoted_without_control_characters()
    {
        var problem = GuestConfigWriter.Validate(Minimal with { Env = ["EVIL\nRS X 0 0\u001b[2J" + new string('A', 100) + "=v"] });
        Assert.Equal("Env[0]", problem!.Field);
        Assert.StartsWith("'EVIL?RS X 0 0?[2J", problem.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', problem.Message);
        Assert.DoesNotContain('\u001b', problem.Message);
        Assert.Contains("...' is not a variable name", problem.Message);
    }

    [Fact]
    public void A_problem_never_quotes_a_secret_or_an_environment_value()
    {
        var problem = GuestConfigWriter.Validate(Minimal with { Env = ["BAD NAME=hunter2"] });
        Assert.DoesNotContain("hunter2", problem!.ToString(), StringComparison.Ordinal);
        var text = (Minimal with { Env = ["PASSWORD=hunter2"], Secrets = "TOKEN=hunter2"u8.ToArray() }).ToString();
        Assert.DoesNotContain("hunter2", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_refusal_never_quotes_the_value_in_the_problem_or_the_exception()
    {
        const string secret = "hunter2";
        GuestConfig[] configs =
        [
            Minimal with { Env = ["NO VALUE hunter2"] },
            Minimal with { Env = ["A=" + secret + "\0"] },
            Minimal with { Env = ["A=" + new string('x', GuestConfigWriter.MaxArgBytes) + secret] },
            Minimal with { WorkDir = secret },
            Minimal with { User = secret + ":a:b" },
            Minimal with { Hostname = secret + "_" },
            Minimal with { Volumes = ["." + secret] },
            Minimal with { Secrets = [.. Encoding.ASCII.GetBytes(secret), .. new byte[GuestConfigLimits.MaxRecordBytes]] },
        ];
        foreach (var config in configs)
        {
            var problem = GuestConfigWriter.Validate(config);
            Assert.NotNull(problem);
            Assert.DoesNotContain(secret, problem.ToString(), StringComparison.Ordinal);
            var e = Assert.Throws<GuestConfigException>(() => GuestConfigWriter.Encode(config));
            Assert.DoesNotContain(secret, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_config_with_null_lists_or_entries_still_describes_itself()
    {
        var text = new GuestConfig { Args = null!, Env = ["A=1", null!], Volumes = null! }.ToString();
        Assert.Contains("Env = [A, ]", text, StringComparison.Ordinal);
    }

    [Fact]
    [SupportedOSPlatform("linux")]
    public async Task The_file_is_private_to_its_owner_and_replaced_whole()
    {
        var dir = Directory.CreateTempSubdirectory("trc-config-");
        try
        {
            var path = Path.Combine(dir.FullName, "config.img");
            await File.WriteAllTextAsync(path, new string('x', 100_000));
            File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32("644", 8));

            GuestConfigWriter.WriteFile(path, Minimal with { Secrets = "S=1"u8.ToArray() });
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal(GuestConfigWriter.Encode(Minimal with { Secrets = "S=1"u8.ToArray() }), await File.ReadAllBytesAsync(path));

            GuestConfigWriter.WriteFile(path, Minimal);
            Assert.Equal(GuestConfigWriter.Encode(Minimal), await File.ReadAllBytesAsync(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Single(dir.GetFiles()); // no temporary file left
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    [SupportedOSPlatform("linux")]
    public void An_invalid_config_writes_nothing()
    {
        var dir = Directory.CreateTempSubdirectory("trc-config-");
        try
        {
            var path = Path.Combine(dir.FullName, "config.img");
            Assert.Throws<GuestConfigException>(() => GuestConfigWriter.WriteFile(path, Minimal with { Args = [] }));
            Assert.Empty(dir.GetFiles());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
