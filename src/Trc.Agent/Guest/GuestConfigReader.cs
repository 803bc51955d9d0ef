using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Text;

namespace Trc.Agent.Guest;

/// <summary>Why a config disk was refused: the byte offset and what is wrong there (never a value).</summary>
/// <param name="Offset">The offset of the record header (or of the offending byte) in the disk.</param>
/// <param name="Message">What is wrong, as init reports it.</param>
public sealed record GuestConfigError(long Offset, string Message)
{
    /// <summary><c>offset N: message</c>, exactly as init writes it after <c>config: </c> in its <c>RS F</c> frame.</summary>
    public override string ToString() => $"offset {Offset.ToString(CultureInfo.InvariantCulture)}: {Message}";
}

/// <summary>
/// Parses a config disk (docs/guest.md, "Config disk") with guest/init's rules, byte for byte: what
/// init accepts this accepts, and a refusal carries init's own message and offset. For tests and for
/// checking a disk without booting it; hostile input gives an error, never an exception.
/// </summary>
public static class GuestConfigReader
{
    /// <summary>Parses a whole disk image, padding included.</summary>
    public static bool TryRead(ReadOnlySpan<byte> disk, [NotNullWhen(true)] out GuestConfig? config, [NotNullWhen(false)] out GuestConfigError? error)
    {
        config = null;
        error = Parse(disk, out var parsed);
        if (error is not null)
        {
            return false;
        }
        config = parsed!;
        return true;
    }

    /// <summary>Parses a whole disk image; throws <see cref="FormatException"/> with init's message when it is refused.</summary>
    public static GuestConfig Read(ReadOnlySpan<byte> disk) =>
        TryRead(disk, out var config, out var error) ? config : throw new FormatException($"config: {error}");

    private static bool IsKeyByte(byte b) => b is >= (byte)'a' and <= (byte)'z' or >= (byte)'0' and <= (byte)'9' or (byte)'_';

    private static GuestConfigError? Parse(ReadOnlySpan<byte> disk, out GuestConfig? config)
    {
        config = null;
        if (disk.Length > GuestConfigLimits.MaxDiskBytes)
        {
            return new(GuestConfigLimits.MaxDiskBytes, $"the disk is larger than {GuestConfigLimits.MaxDiskBytes} bytes");
        }
        if (!disk.StartsWith(GuestConfigLimits.Magic))
        {
            return new(0, "not a trc config disk (bad magic)");
        }

        var state = new State();
        var pos = GuestConfigLimits.Magic.Length;
        while (true)
        {
            if (pos >= disk.Length)
            {
                return new(pos, "missing end record");
            }

            // Header: KEY SP LEN LF. The scans stop one byte past each limit, so "too long" is seen.
            var i = pos;
            while (i < disk.Length && i - pos <= GuestConfigLimits.MaxKeyBytes && IsKeyByte(disk[i]))
            {
                i++;
            }
            var keyLength = i - pos;
            if (i == disk.Length)
            {
                return new(pos, "truncated record header");
            }
            if (keyLength == 0 || keyLength > GuestConfigLimits.MaxKeyBytes || disk[i] != (byte)' ')
            {
                return new(pos, "malformed record header");
            }
            var digits = ++i;
            while (i < disk.Length && i - digits <= 8 && disk[i] is >= (byte)'0' and <= (byte)'9')
            {
                i++;
            }
            if (i == disk.Length)
            {
                return new(pos, "truncated record header");
            }
            if (disk[i] != (byte)'\n' || !GuestConfigRules.TryParseDecimal(disk[digits..i], 8, out var length))
            {
                return new(pos, "malformed record header");
            }
            if (length > GuestConfigLimits.MaxRecordBytes)
            {
                return new(pos, $"record length {length} is over {GuestConfigLimits.MaxRecordBytes}");
            }
            var key = Encoding.ASCII.GetString(disk.Slice(pos, keyLength));
            var value = i + 1;
            if (disk.Length - value < length + 1)
            {
                return new(pos, $"record '{key}' of {length} bytes runs past the end of the disk");
            }
            if (disk[value + (int)length] != (byte)'\n')
            {
                return new(value + length, $"record '{key}' does not end with a newline");
            }

            if (key == "end")
            {
                if (length != 0)
                {
                    return new(pos, "the end record is not empty");
                }
                var rest = disk[(value + 1)..];
                var nonZero = rest.IndexOfAnyExcept((byte)0);
                if (nonZero >= 0)
                {
                    return new(value + 1 + nonZero, "non-zero byte after the end record");
                }
                if (state.Args.Count == 0)
                {
                    return new(pos, "no arg record");
                }
                if (state.Gateway is not null && state.Ipv6 is null)
                {
                    return new(pos, "gateway without ipv6");
                }
                config = state.ToConfig();
                return null;
            }
            var problem = state.Apply(key, disk.Slice(value, (int)length));
            if (problem is not null)
            {
                return new(pos, problem);
            }
            pos = value + (int)length + 1;
        }
    }

    private sealed class State
    {
        public readonly List<string> Args = [];
        public readonly List<string> Env = [];
        public readonly List<string> Volumes = [];
        public string? WorkDir, User, Hostname;
        public GuestIpv6Address? Ipv6;
        public IPAddress? Gateway;
        public int? Mtu;
        public byte[]? Secrets;

        public GuestConfig ToConfig() => new()
        {
            Args = Args,
            Env = Env,
            WorkDir = WorkDir,
            User = User,
            Hostname = Hostname,
            Ipv6 = Ipv6,
            Gateway = Gateway,
            Mtu = Mtu,
            Secrets = Secrets,
            Volumes = Volumes,
        };

        /// <summary>
        /// One record; returns init's message (without the offset) when it is refused. The checks run
        /// in init's order (guest/init/config.c, apply), so both report the same first problem.
        /// </summary>
        public string? Apply(string key, ReadOnlySpan<byte> v)
        {
            if (key is "arg" or "env" or "volume")
            {
                return ApplyList(key, v);
            }
            bool seen;
            switch (key)
            {
                case "workdir": seen = WorkDir is not null; break;
                case "user": seen = User is not null; break;
                case "hostname": seen = Hostname is not null; break;
                case "ipv6": seen = Ipv6 is not null; break;
                case "gateway": seen = Gateway is not null; break;
                case "mtu": seen = Mtu is not null; break;
                case "secrets": seen = Secrets is not null; break;
                default: return null; // unknown keys are ignored, so new ones can be added
            }
            if (seen)
            {
                return $"duplicate {key} record";
            }
            if (key == "secrets")
            {
                Secrets = v.ToArray(); // any bytes
                return null;
            }
            if (GuestConfigRules.Text(v) is { } text)
            {
                return $"{key}: {text}";
            }
            // Set, then checked: a refused record ends the parse, so a refused value is never read.
            switch (key)
            {
                case "workdir":
                    WorkDir = Encoding.UTF8.GetString(v);
                    return Prefixed(key, GuestConfigRules.WorkDir(v));
                case "user":
                    User = Encoding.UTF8.GetString(v);
                    return Prefixed(key, GuestConfigRules.User(v));
                case "hostname":
                    Hostname = Encoding.ASCII.GetString(v);
                    return Prefixed(key, GuestConfigRules.Hostname(v));
                case "ipv6":
                    Ipv6 = GuestConfigRules.Ipv6(v);
                    return Ipv6 is null ? "ipv6: not ADDRESS/PREFIX" : null;
                case "gateway":
                    Gateway = GuestConfigRules.Address(v);
                    return Gateway is null ? "gateway: not an IPv6 address" : null;
                default: // mtu
                    Mtu = GuestConfigRules.Mtu(v);
                    return Mtu is null ? "mtu: not a number from 1280 to 65535" : null;
            }
        }

        private static string? Prefixed(string key, string? problem) => problem is null ? null : $"{key}: {problem}";

        private string? ApplyList(string key, ReadOnlySpan<byte> v)
        {
            if (GuestConfigRules.Text(v) is { } text)
            {
                return $"{key}: {text}";
            }
            switch (key)
            {
                case "arg":
                    if (Args.Count == 0 && v.IsEmpty)
                    {
                        return "arg: the first arg (the program) is empty";
                    }
                    return Add(key, Args, GuestConfigLimits.MaxListRecords, Encoding.UTF8.GetString(v));
                case "env":
                    return Prefixed(key, GuestConfigRules.Env(v)) ?? Add(key, Env, GuestConfigLimits.MaxListRecords, Encoding.UTF8.GetString(v));
                default: // volume
                    if (Prefixed(key, GuestConfigRules.Volume(v)) is { } problem)
                    {
                        return problem;
                    }
                    var name = Encoding.ASCII.GetString(v);
                    return Volumes.Contains(name) ? "volume: duplicate name" : Add(key, Volumes, GuestConfigLimits.MaxVolumes, name);
            }
        }

        private static string? Add(string key, List<string> list, int max, string value)
        {
            if (list.Count == max)
            {
                return $"more than {max} {key} records";
            }
            list.Add(value);
            return null;
        }
    }
}
