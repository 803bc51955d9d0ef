using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;

namespace Trc.Agent.Guest;

/// <summary>Why a <see cref="GuestConfig"/> cannot be written: the field (<c>Env[3]</c>, <c>Ipv6</c>, ...) and what is wrong. Never a value.</summary>
/// <param name="Field">The <see cref="GuestConfig"/> property, with the index for list items.</param>
/// <param name="Message">What is wrong with it.</param>
public sealed record GuestConfigProblem(string Field, string Message)
{
    /// <summary><c>Field: message</c>.</summary>
    public override string ToString() => $"{Field}: {Message}";
}

/// <summary>A <see cref="GuestConfig"/> that init would refuse (or that could not work in the guest).</summary>
public sealed class GuestConfigException(GuestConfigProblem problem) : Exception($"guest config: {problem}")
{
    /// <summary>The field and what is wrong with it.</summary>
    public GuestConfigProblem Problem { get; } = problem;
}

/// <summary>
/// Encodes a <see cref="GuestConfig"/> as a config disk (docs/guest.md, "Config disk"). Every value is
/// checked first with init's own rules (so a disk that is written boots past the config step) and a
/// few more that only the writer can know: strings must be encodable as UTF-8, an argument or
/// environment entry must fit the kernel's 128 KiB limit for one string, addresses must be usable.
/// </summary>
public static class GuestConfigWriter
{
    /// <summary>The kernel's limit for one argv or envp string (MAX_ARG_STRLEN), terminating NUL included.</summary>
    public const int MaxArgBytes = 128 * 1024;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The first problem with <paramref name="config"/>, or null when it can be written.</summary>
    public static GuestConfigProblem? Validate(GuestConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Build(config, null);
    }

    /// <summary>
    /// The disk image: the magic line, the records, the end record, then zeros to a multiple of
    /// <see cref="GuestConfigLimits.SectorBytes"/> and at least <see cref="GuestConfigLimits.MinDiskBytes"/>.
    /// </summary>
    /// <exception cref="GuestConfigException">A field is not acceptable; the exception names it.</exception>
    public static byte[] Encode(GuestConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var buffer = new ArrayBufferWriter<byte>(4096);
        if (Build(config, buffer) is { } problem)
        {
            throw new GuestConfigException(problem);
        }
        var disk = new byte[Padded(buffer.WrittenCount)];
        buffer.WrittenSpan.CopyTo(disk);
        return disk;
    }

    /// <summary>
    /// Writes the disk image to <paramref name="path"/>, readable and writable by the owner only (it
    /// holds the secrets). Replaces an existing file atomically.
    /// </summary>
    /// <exception cref="GuestConfigException">A field is not acceptable; nothing is written.</exception>
    [SupportedOSPlatform("linux")]
    public static void WriteFile(string path, GuestConfig config)
    {
        const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        var disk = Encode(config);
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = ownerOnly }))
            {
                stream.Write(disk);
            }
            // UnixCreateMode is filtered by the umask; 0600 must hold whatever the umask.
            File.SetUnixFileMode(temp, ownerOnly);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static long Padded(long size) =>
        Math.Max(GuestConfigLimits.MinDiskBytes, (size + GuestConfigLimits.SectorBytes - 1) / GuestConfigLimits.SectorBytes * GuestConfigLimits.SectorBytes);

    // Where records go: counted always, written when there is an output.
    private sealed class Sink(IBufferWriter<byte>? output)
    {
        public long Size { get; private set; }

        public void Magic()
        {
            Size += GuestConfigLimits.Magic.Length;
            output?.Write(GuestConfigLimits.Magic);
        }

        public void Record(string key, ReadOnlySpan<byte> value)
        {
            var header = Encoding.ASCII.GetBytes($"{key} {value.Length.ToString(CultureInfo.InvariantCulture)}\n");
            Size += header.Length + value.Length + 1;
            if (output is not null)
            {
                output.Write(header);
                output.Write(value);
                output.Write("\n"u8);
            }
        }
    }

    // Checks every field in disk order and, when output is given, writes the records.
    private static GuestConfigProblem? Build(GuestConfig config, IBufferWriter<byte>? output)
    {
        var sink = new Sink(output);
        sink.Magic();

        var args = config.Args;
        if (args is null || args.Count == 0)
        {
            return new("Args", "at least one is required (the program)");
        }
        if (args.Count > GuestConfigLimits.MaxListRecords)
        {
            return new("Args", $"more than {GuestConfigLimits.MaxListRecords}");
        }
        for (var i = 0; i < args.Count; i++)
        {
            var field = $"Args[{i}]";
            if (Text(field, args[i], null, out var bytes) is { } p)
            {
                return p;
            }
            if (i == 0 && bytes.Length == 0)
            {
                return new(field, "the program is empty");
            }
            if (CheckArgSize(field, bytes) is { } q)
            {
                return q;
            }
            sink.Record("arg", bytes);
        }

        var env = config.Env ?? [];
        if (env.Count > GuestConfigLimits.MaxListRecords)
        {
            return new("Env", $"more than {GuestConfigLimits.MaxListRecords}");
        }
        for (var i = 0; i < env.Count; i++)
        {
            var field = $"Env[{i}]";
            if (Text(field, env[i], null, out var bytes) is { } p)
            {
                return p;
            }
            if (GuestConfigRules.Env(bytes) is not null)
            {
                var eq = env[i].IndexOf('=', StringComparison.Ordinal);
                return new(field, eq <= 0
                    ? "not NAME=VALUE"
                    : $"'{Printable(env[i][..eq])}' is not a variable name (printable ASCII, no spaces)");
            }
            if (CheckArgSize(field, bytes) is { } q)
            {
                return q;
            }
            sink.Record("env", bytes);
        }

        if (config.WorkDir is { } workDir)
        {
            if (Text("WorkDir", workDir, GuestConfigRules.WorkDir, out var bytes) is { } p)
            {
                return p;
            }
            sink.Record("workdir", bytes);
        }

        if (config.User is { } user)
        {
            if (Text("User", user, GuestConfigRules.User, out var bytes) is { } p)
            {
                return p;
            }
            sink.Record("user", bytes);
        }

        if (config.Hostname is { } hostname)
        {
            if (Text("Hostname", hostname, GuestConfigRules.Hostname, out var bytes) is { } p)
            {
                return p;
            }
            sink.Record("hostname", bytes);
        }

        if (config.Ipv6 is { } ipv6)
        {
            if (CheckAddress("Ipv6", ipv6.Address) is { } p)
            {
                return p;
            }
            if (ipv6.PrefixLength is < 1 or > 128)
            {
                return new("Ipv6", "the prefix length is not from 1 to 128");
            }
            sink.Record("ipv6", Encoding.ASCII.GetBytes($"{Format(ipv6.Address)}/{ipv6.PrefixLength.ToString(CultureInfo.InvariantCulture)}"));
        }

        if (config.Gateway is { } gateway)
        {
            if (config.Ipv6 is null)
            {
                return new("Gateway", "a gateway needs an Ipv6 address");
            }
            if (CheckAddress("Gateway", gateway) is { } p)
            {
                return p;
            }
            sink.Record("gateway", Encoding.ASCII.GetBytes(Format(gateway)));
        }

        if (config.Mtu is { } mtu)
        {
            if (mtu is < GuestConfigLimits.MinMtu or > GuestConfigLimits.MaxMtu)
            {
                return new("Mtu", $"not from {GuestConfigLimits.MinMtu} to {GuestConfigLimits.MaxMtu}");
            }
            sink.Record("mtu", Encoding.ASCII.GetBytes(mtu.ToString(CultureInfo.InvariantCulture)));
        }

        if (config.Secrets is { } secrets)
        {
            if (secrets.Length > GuestConfigLimits.MaxRecordBytes)
            {
                return new("Secrets", $"{secrets.Length} bytes, more than {GuestConfigLimits.MaxRecordBytes}");
            }
            sink.Record("secrets", secrets);
        }

        var volumes = config.Volumes ?? [];
        if (volumes.Count > GuestConfigLimits.MaxVolumes)
        {
            return new("Volumes", $"more than {GuestConfigLimits.MaxVolumes}");
        }
        for (var i = 0; i < volumes.Count; i++)
        {
            var field = $"Volumes[{i}]";
            if (Text(field, volumes[i], GuestConfigRules.Volume, out var bytes) is { } p)
            {
                return p;
            }
            for (var j = 0; j < i; j++)
            {
                if (string.Equals(volumes[j], volumes[i], StringComparison.Ordinal))
                {
                    return new(field, $"the same name as Volumes[{j}]");
                }
            }
            sink.Record("volume", bytes);
        }

        sink.Record("end", []);
        var padded = Padded(sink.Size);
        return padded > GuestConfigLimits.MaxDiskBytes
            ? new("Config", $"the disk would be {padded} bytes, more than {GuestConfigLimits.MaxDiskBytes}")
            : null;
    }

    private delegate string? ValueRule(ReadOnlySpan<byte> value);

    // A string field as init reads it: encodable as UTF-8, text (no NUL), and acceptable to its rule.
    private static GuestConfigProblem? Text(string field, string? value, ValueRule? rule, out byte[] bytes)
    {
        bytes = [];
        if (value is null)
        {
            return new(field, "is null");
        }
        try
        {
            bytes = StrictUtf8.GetBytes(value);
        }
        catch (EncoderFallbackException)
        {
            return new(field, "not valid Unicode (a lone surrogate)");
        }
        var problem = GuestConfigRules.Text(bytes) ?? rule?.Invoke(bytes);
        return problem is null ? null : new(field, problem);
    }

    private static GuestConfigProblem? CheckArgSize(string field, byte[] bytes) =>
        bytes.Length >= MaxArgBytes ? new(field, $"{bytes.Length} bytes, the kernel takes at most {MaxArgBytes - 1}") : null;

    private static GuestConfigProblem? CheckAddress(string field, IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return new(field, "not an IPv6 address");
        }
        if (address.ScopeId != 0)
        {
            return new(field, "has a zone (scope id); the guest's interface is always eth0");
        }
        if (address.Equals(IPAddress.IPv6Any) || address.Equals(IPAddress.IPv6Loopback) || address.IsIPv6Multicast || address.IsIPv4MappedToIPv6)
        {
            return new(field, "not a unicast address");
        }
        return null;
    }

    // Eight groups, lower-case hex, no "::": always in init's accepted alphabet (never dotted IPv4).
    private static string Format(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out _);
        var groups = new string[8];
        for (var i = 0; i < 8; i++)
        {
            groups[i] = ((b[2 * i] << 8) | b[2 * i + 1]).ToString("x", CultureInfo.InvariantCulture);
        }
        return string.Join(':', groups);
    }

    // A name from an image may hold anything: quoted with control and non-ASCII characters as '?'
    // and cut at 64, so a message never carries a forged line into a log.
    private static string Printable(string name)
    {
        var cut = name.Length > 64 ? name[..64] + "..." : name;
        return string.Create(cut.Length, cut, (span, text) =>
        {
            for (var i = 0; i < text.Length; i++)
            {
                span[i] = text[i] is >= ' ' and <= '~' ? text[i] : '?';
            }
        });
    }
}
