using System.Globalization;
using System.Net;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Trc.Agent.Guest;
using Trc.Testing;
using Trc.Testing.Guest;

namespace Trc.Agent.Tests.Guest;

/// <summary>
/// guest/init's own config parser (the static binary run on the host: <c>init --check-config
/// FILE...</c>) against <see cref="GuestConfigReader"/>: on every sample, damaged disk and generated
/// config, both must accept the same disks with the same content, and refuse the same disks with the
/// same message at the same offset.
/// </summary>
public sealed class InitConfigParserTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("trc-init-parser-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>What the C parser said about each disk, in order.</summary>
    private async Task<IReadOnlyList<string>> RunInitAsync(IReadOnlyList<byte[]> disks)
    {
        var assets = await GuestAssets.EnsureBuiltAsync();
        var files = new List<string>();
        for (var i = 0; i < disks.Count; i++)
        {
            var path = Path.Combine(_dir, $"{i}.img");
            await File.WriteAllBytesAsync(path, disks[i]);
            files.Add(path);
        }
        var result = await HostTool.RunAsync(assets.Init, ["--check-config", .. files], CancellationToken.None);
        Assert.True(result.ExitCode is 0 or 1, $"init --check-config exited {result.ExitCode}: {result.Stderr}");
        var outputs = new List<string>();
        StringBuilder? current = null;
        foreach (var line in result.Stdout.Split('\n'))
        {
            if (line.StartsWith("file ", StringComparison.Ordinal))
            {
                if (current is not null)
                {
                    outputs.Add(current.ToString());
                }
                current = new StringBuilder();
            }
            else if (line.Length > 0)
            {
                current!.Append(line).Append('\n');
            }
        }
        if (current is not null)
        {
            outputs.Add(current.ToString());
        }
        Assert.Equal(disks.Count, outputs.Count);
        return outputs;
    }

    /// <summary>
    /// The reader's verdict in init's words. init prints values as hex of their bytes, and secrets
    /// only as a length; addresses are compared parsed (init prints the text it was given).
    /// </summary>
    private static string Expected(byte[] disk)
    {
        if (!GuestConfigReader.TryRead(disk, out var config, out var error))
        {
            return $"error: {error}\n";
        }
        var text = new StringBuilder("ok\n");
        void Hex(string key, string value) => text.Append(key).Append(' ').Append(Convert.ToHexStringLower(Encoding.UTF8.GetBytes(value))).Append('\n');
        config.Args.ToList().ForEach(a => Hex("arg", a));
        config.Env.ToList().ForEach(e => Hex("env", e));
        if (config.WorkDir is not null)
        {
            Hex("workdir", config.WorkDir);
        }
        if (config.User is not null)
        {
            Hex("user", config.User);
        }
        if (config.Hostname is not null)
        {
            Hex("hostname", config.Hostname);
        }
        if (config.Ipv6 is not null)
        {
            text.Append($"ipv6 {config.Ipv6}\n");
        }
        if (config.Gateway is not null)
        {
            text.Append($"gateway {config.Gateway}\n");
        }
        if (config.Mtu is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"mtu {config.Mtu}\n");
        }
        if (config.Secrets is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"secrets {config.Secrets.Length}\n");
        }
        config.Volumes.ToList().ForEach(v => Hex("volume", v));
        return text.ToString();
    }

    // init's address lines carry the text as given: parse it, so "FD00:0::2" and "fd00::2" compare equal.
    private static string Normalize(string initOutput) => string.Concat(initOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
    {
        if (line.StartsWith("ipv6 ", StringComparison.Ordinal))
        {
            GuestIpv6Address.TryParse(Encoding.UTF8.GetString(Convert.FromHexString(line[5..])), out var address);
            return $"ipv6 {address}\n";
        }
        if (line.StartsWith("gateway ", StringComparison.Ordinal))
        {
            return $"gateway {IPAddress.Parse(Encoding.UTF8.GetString(Convert.FromHexString(line[8..])))}\n";
        }
        return line + "\n";
    }));

    private async Task AssertSameVerdictsAsync(IReadOnlyList<byte[]> disks, Func<int, string> describe)
    {
        var outputs = await RunInitAsync(disks);
        var differences = new List<string>();
        for (var i = 0; i < disks.Count; i++)
        {
            var expected = Expected(disks[i]);
            var actual = Normalize(outputs[i]);
            if (expected != actual)
            {
                differences.Add($"{describe(i)}:\n  reader: {expected.TrimEnd().Replace("\n", "\n          ")}\n  init:   {actual.TrimEnd().Replace("\n", "\n          ")}");
            }
        }
        Assert.True(differences.Count == 0, $"{differences.Count} of {disks.Count} disks parse differently:\n{string.Join('\n', differences.Take(10))}");
    }

    [GuestBootFact]
    public async Task Init_and_the_reader_agree_on_every_sample()
    {
        var samples = ConfigDiskSamples.All().ToList();
        await AssertSameVerdictsAsync([.. samples.Select(s => s.Disk)], i => samples[i].Name);
    }

    [GuestBootFact]
    public async Task Init_accepts_every_config_the_writer_makes_with_the_same_content()
    {
        var configs = Gen.Sample(GuestConfigGen.Configs, 300, 30);
        var disks = configs.Select(GuestConfigWriter.Encode).ToList();
        await AssertSameVerdictsAsync(disks, i => configs[i].ToString());
        Assert.All(disks, d => Assert.True(GuestConfigReader.TryRead(d, out _, out _)));
    }

    [GuestBootFact]
    public async Task Init_and_the_reader_agree_on_damaged_disks()
    {
        var disks = Gen.Sample(GuestConfigReaderTests.DamagedDisks, 600, 30);
        await AssertSameVerdictsAsync(disks, i => Convert.ToHexStringLower(disks[i].AsSpan(0, Math.Min(200, disks[i].Length))));
    }

    [GuestBootFact]
    public async Task A_disk_init_cannot_read_is_an_error_of_its_own_not_a_refusal()
    {
        var assets = await GuestAssets.EnsureBuiltAsync();
        var missing = Path.Combine(_dir, "missing.img");
        var result = await HostTool.RunAsync(assets.Init, ["--check-config", missing, _dir], CancellationToken.None);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"file {missing}\nfile {_dir}\n", result.Stdout);
        Assert.Equal($"init: {missing}: No such file or directory\ninit: {_dir}: Is a directory\n", result.Stderr);
    }

    private static readonly Gen<string> AddressLike =
        Gen.Choose(1, 41).SelectMany(n => Gen.ArrayOf(Gen.Frequency(
            (6, Gen.Elements("0123456789abcdefABCDEF".ToCharArray())),
            (4, Gen.Constant(':')),
            (1, Gen.Elements('.', 'g', '%', '/'))), n)).Select(c => new string(c));

    [GuestBootFact]
    public async Task Init_and_the_reader_agree_on_which_strings_are_ipv6_addresses()
    {
        // inet_pton against IPAddress.TryParse, within (and just outside) the hex-and-colons alphabet.
        var addresses = Gen.Sample(AddressLike, 1500, 40).Concat(["1::", "::", "::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1::2::3",
            ":1::", "1:::", "1:2:3:4:5:6:7:8:9", "00000::", "0000::", "fFfF::", "1:2:3:4:5:6::7:8"]).ToList();
        var disks = addresses.Select(a => Encoding.Latin1.GetBytes($"TRCGUEST1\narg 1\nx\nipv6 {a.Length + 3}\n{a}/64\ngateway {a.Length}\n{a}\nend 0\n\n")).ToList();
        await AssertSameVerdictsAsync(disks, i => $"'{addresses[i]}'");
    }

    [GuestBootFact]
    public async Task Init_and_the_reader_agree_on_which_bytes_are_utf8()
    {
        var pieces = Gen.Elements<byte[]>([0x41], [0xc3, 0xa9], [0xe2, 0x98, 0x83], [0xf0, 0x9f, 0x98, 0x80], [0x80], [0xbf], [0xc0], [0xc1], [0xc2], [0xe0], [0xe0, 0x80], [0xed, 0xa0],
            [0xed, 0x9f, 0xbf], [0xee, 0x80, 0x80], [0xef, 0xbf, 0xbf], [0xf4, 0x8f, 0xbf, 0xbf], [0xf4, 0x90], [0xf5], [0xf8], [0xff], [0x0a]);
        var values = Gen.Sample(Gen.Choose(1, 6).SelectMany(n => Gen.ArrayOf(pieces, n)).Select(p => p.SelectMany(b => b).ToArray()), 1000, 20);
        var disks = values.Select(v => (byte[])[.. "TRCGUEST1\narg 1\nx\n"u8, .. Encoding.ASCII.GetBytes($"arg {v.Length}\n"), .. v, .. "\nend 0\n\n"u8]).ToList();
        await AssertSameVerdictsAsync(disks, i => Convert.ToHexStringLower(values[i]));
    }
}
