using System.Text;

namespace Trc.Agent.Tests.Guest;

/// <summary>A config disk and what a parser must say about it: null for accepted, else <c>offset N: message</c>.</summary>
public sealed record DiskSample(string Name, byte[] Disk, string? Error)
{
    public override string ToString() => Name; // the theory's display name
}

/// <summary>
/// Annotated config disks, good and hostile. Pieces are Latin-1 strings (one char, one byte), so a
/// sample can hold any byte; an error's offset is computed from the pieces, not counted by hand.
/// Both <see cref="Trc.Agent.Guest.GuestConfigReader"/> and guest/init's parser are held to them.
/// </summary>
public static class ConfigDiskSamples
{
    private const string M = "TRCGUEST1\n";
    private const string End = "end 0\n\n";
    private const string Arg = "arg 1\nx\n";

    private static byte[] Join(string[] pieces) => Encoding.Latin1.GetBytes(string.Concat(pieces));

    private static DiskSample Good(string name, params string[] pieces) => new(name, Join(pieces), null);

    /// <summary>A refused disk; the offset is where piece number <paramref name="piece"/> starts, plus <paramref name="delta"/>.</summary>
    private static DiskSample Bad(string name, string message, int piece, int delta, params string[] pieces)
    {
        var offset = Encoding.Latin1.GetByteCount(string.Concat(pieces.Take(piece))) + delta;
        return new(name, Join(pieces), $"offset {offset}: {message}");
    }

    private static DiskSample Bad(string name, string message, int piece, params string[] pieces) => Bad(name, message, piece, 0, pieces);

    private static string Rec(string key, string value) => $"{key} {Encoding.Latin1.GetByteCount(value)}\n{value}\n";

    private static string Utf8(string text) => Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(text));

    /// <summary>A value no refusal may quote (<see cref="All"/> holds refused records carrying it).</summary>
    public const string Secret = "hunter2-s3cr3t";

    public static IEnumerable<DiskSample> All()
    {
        // Framing.
        yield return Good("minimal", M, Arg, End);
        yield return Good("minimal padded", M, Arg, End, new string('\0', 8192 - 25));
        yield return Bad("empty disk", "not a trc config disk (bad magic)", 0, "");
        yield return Bad("short magic", "not a trc config disk (bad magic)", 0, "TRCGUEST");
        yield return Bad("other version", "not a trc config disk (bad magic)", 0, "TRCGUEST2\n", Arg, End);
        yield return Bad("magic only", "missing end record", 1, M);
        yield return Bad("no end record", "missing end record", 2, M, Arg);
        yield return Bad("zeros instead of an end record", "malformed record header", 2, M, Arg, new string('\0', 512));
        yield return Bad("truncated key", "truncated record header", 1, M, "arg");
        yield return Bad("truncated length", "truncated record header", 1, M, "arg 12");
        yield return Bad("upper-case key", "malformed record header", 1, M, "ARG 1\nx\n", End);
        yield return Bad("empty key", "malformed record header", 1, M, " 1\nx\n", End);
        yield return Bad("two spaces", "malformed record header", 1, M, "arg  1\nx\n", End);
        yield return Bad("tab for space", "malformed record header", 1, M, "arg\t1\nx\n", End);
        yield return Bad("CR LF header", "malformed record header", 1, M, "arg 1\r\nx\n", End);
        yield return Bad("leading zero", "malformed record header", 1, M, "arg 01\nx\n", End);
        yield return Bad("sign", "malformed record header", 1, M, "arg +1\nx\n", End);
        yield return Bad("no length", "malformed record header", 1, M, "arg \nx\n", End);
        yield return Bad("nine digits", "malformed record header", 1, M, "arg 000000001\nx\n", End);
        yield return Bad("length just over the cap", "record length 8388609 is over 8388608", 1, M, "arg 8388609\n", End);
        yield return Bad("huge length", "record length 99999999 is over 8388608", 1, M, "arg 99999999\n", End);
        yield return Bad("length past the end", "record 'arg' of 200 bytes runs past the end of the disk", 1, M, "arg 200\nx\n", End);
        yield return Bad("length one past the end", "record 'arg' of 1 bytes runs past the end of the disk", 1, M, "arg 1\nx");
        yield return Bad("value without its newline", "record 'arg' does not end with a newline", 1, 7, M, "arg 1\nxy\n", End);
        yield return Good("longest key, unknown", M, Rec(new string('k', 32), "?"), Arg, End);
        yield return Bad("key one too long", "malformed record header", 1, M, Rec(new string('k', 33), "?"), Arg, End);
        yield return Good("unknown keys are skipped", M, Rec("future_key9", "anything\0\u00ff"), Arg, End);
        yield return Bad("end with a value", "the end record is not empty", 2, M, Arg, "end 1\nx\n");
        yield return Bad("garbage after the end", "non-zero byte after the end record", 3, 3, M, Arg, End, "\0\0\0x");
        yield return Bad("a second end", "non-zero byte after the end record", 3, M, Arg, End, End);
        yield return Bad("disk over 16 MiB", "the disk is larger than 16777216 bytes", 0, 16777216, M, Arg, End, new string('\0', 16777216 - 25 + 1));
        yield return Good("disk of exactly 16 MiB", M, Arg, End, new string('\0', 16777216 - 25));
        yield return Bad("NUL in a key", "malformed record header", 1, M, "ar\0 1\nx\n", End);
        yield return Bad("NUL in a length", "malformed record header", 1, M, "arg 1\0\nx\n", End);
        yield return Bad("high byte in a key", "malformed record header", 1, M, "\u00ffrg 1\nx\n", End);
        yield return Bad("longest length, nothing after it", "record 'arg' of 8388608 bytes runs past the end of the disk", 1, M, "arg 8388608\n", End);
        yield return Good("a value of exactly 8 MiB", M, Arg, Rec("secrets", new string('s', 8 << 20)), End);
        yield return Bad("end record cut after its header", "record 'end' of 0 bytes runs past the end of the disk", 2, M, Arg, "end 0\n");
        yield return Bad("end record with a zero for its newline", "record 'end' does not end with a newline", 2, 6, M, Arg, "end 0\n\0", End);

        // arg
        yield return Bad("no arg", "no arg record", 1, M, End);
        yield return Bad("empty program", "arg: the first arg (the program) is empty", 1, M, "arg 0\n\n", End);
        yield return Good("empty later arg", M, Arg, "arg 0\n\n", End);
        yield return Bad("NUL in arg", "arg: contains a NUL byte", 1, M, Rec("arg", "a\0b"), End);
        yield return Bad("bad UTF-8", "arg: not valid UTF-8", 1, M, Rec("arg", "\u00c3\u0028"), End);
        yield return Bad("overlong UTF-8", "arg: not valid UTF-8", 1, M, Rec("arg", "\u00c0\u00af"), End);
        yield return Bad("UTF-8 surrogate", "arg: not valid UTF-8", 1, M, Rec("arg", "\u00ed\u00a0\u0080"), End);
        yield return Bad("UTF-8 past U+10FFFF", "arg: not valid UTF-8", 1, M, Rec("arg", "\u00f4\u0090\u0080\u0080"), End);
        yield return Bad("truncated UTF-8", "arg: not valid UTF-8", 1, M, Rec("arg", "ab\u00e2\u0098"), End);
        yield return Good("UTF-8 everywhere", M, Rec("arg", Utf8("caf\u00e9 \u2603 \U0001F600")), End);
        yield return Good("newlines inside a value", M, Rec("arg", "a\nb\n"), End);

        // env
        yield return Good("env", M, Arg, Rec("env", "A=1"), Rec("env", "A=2"), Rec("env", "EMPTY="), Rec("env", "X=a=b"), End);
        yield return Bad("env without =", "env: not NAME=VALUE", 2, M, Arg, Rec("env", "NOEQUALS"), End);
        yield return Bad("env without a name", "env: not NAME=VALUE", 2, M, Arg, Rec("env", "=x"), End);
        yield return Bad("env name with a space", "env: bad variable name", 2, M, Arg, Rec("env", "A B=1"), End);
        yield return Bad("env name not ASCII", "env: bad variable name", 2, M, Arg, Rec("env", Utf8("\u00e9=1")), End);
        yield return Bad("NUL in env", "env: contains a NUL byte", 2, M, Arg, Rec("env", "A=\0"), End);

        // The list caps: 65536 arg and env records each.
        var args = Enumerable.Repeat(Arg, 65536).ToArray();
        yield return Good("65536 args", [M, .. args, End]);
        yield return Bad("65537 args", "more than 65536 arg records", 65537, [M, .. args, Arg, End]);
        var env = Enumerable.Repeat(Rec("env", "A=1"), 65536).ToArray();
        yield return Good("65536 env records", [M, Arg, .. env, End]);
        yield return Bad("65537 env records", "more than 65536 env records", 65538, [M, Arg, .. env, Rec("env", "A=1"), End]);

        // The singletons.
        foreach (var (key, value) in new[] { ("workdir", "/srv"), ("user", "app"), ("hostname", "h"), ("ipv6", "fd00::2/64"), ("gateway", "fd00::1"), ("mtu", "1500"), ("secrets", "S") })
        {
            var ipv6 = key == "gateway" ? Rec("ipv6", "fd00::2/64") : "";
            yield return Bad($"duplicate {key}", $"duplicate {key} record", 4, M, Arg, ipv6, Rec(key, value), Rec(key, value), End);
        }
        yield return Good("workdir", M, Arg, Rec("workdir", "/srv/app"), End);
        yield return Bad("relative workdir", "workdir: not an absolute path", 2, M, Arg, Rec("workdir", "srv"), End);
        yield return Bad("empty workdir", "workdir: not an absolute path", 2, M, Arg, Rec("workdir", ""), End);
        yield return Bad("long workdir", "workdir: longer than 4095 bytes", 2, M, Arg, Rec("workdir", "/" + new string('d', 4095)), End);
        foreach (var user in new[] { "app", "1000", "app:staff", "1000:50", Utf8("r\u00e9mi") })
        {
            yield return Good($"user {user}", M, Arg, Rec("user", user), End);
        }
        foreach (var user in new[] { "", "a:b:c", ":g", "u:", "::", "a\nb", "a\u007fb", new string('u', 257) })
        {
            yield return Bad($"user '{user.Replace("\n", "\\n")}'", "user: not NAME, UID, NAME:GROUP or UID:GID", 2, M, Arg, Rec("user", user), End);
        }
        yield return Good("hostname", M, Arg, Rec("hostname", "shop-web-1.internal"), End);
        foreach (var host in new[] { "", "under_score", "sp ace", new string('h', 65) })
        {
            yield return Bad($"hostname '{host}'", "hostname: not 1 to 64 letters, digits, '-' or '.'", 2, M, Arg, Rec("hostname", host), End);
        }

        // Addresses: hex and colons only, as inet_pton reads them.
        foreach (var address in new[] { "fd00::2/64", "FD00:0:0:0:0:0:0:2/128", "2001:db8::1/1", "::2/8", "1:2:3:4:5:6:7::/64", "::1:2:3:4:5:6:7/64" })
        {
            yield return Good($"ipv6 {address}", M, Arg, Rec("ipv6", address), End);
        }
        foreach (var address in new[] { "fd00::2", "fd00::2/0", "fd00::2/129", "fd00::2/064", "fd00::2/", "/64", "10.0.0.1/24", "::ffff:1.2.3.4/96",
                     "fd00::2%eth0/64", "[fd00::2]/64", "fd00:::2/64", "1:2:3:4:5:6:7:8:9/64", "fd00::2/64/64", "fd00::2::3/64", "12345::/64", "g::/64", ":/64" })
        {
            yield return Bad($"ipv6 {address}", "ipv6: not ADDRESS/PREFIX", 2, M, Arg, Rec("ipv6", address), End);
        }
        yield return Good("gateway", M, Arg, Rec("ipv6", "fd00::2/64"), Rec("gateway", "fe80::1"), End);
        yield return Bad("gateway with a zone", "gateway: not an IPv6 address", 3, M, Arg, Rec("ipv6", "fd00::2/64"), Rec("gateway", "fe80::1%1"), End);
        yield return Bad("gateway IPv4", "gateway: not an IPv6 address", 3, M, Arg, Rec("ipv6", "fd00::2/64"), Rec("gateway", "10.0.0.1"), End);
        yield return Bad("gateway without ipv6", "gateway without ipv6", 3, M, Arg, Rec("gateway", "fd00::1"), End);
        yield return Good("mtu", M, Arg, Rec("mtu", "1280"), End);
        yield return Good("mtu max", M, Arg, Rec("mtu", "65535"), End);
        foreach (var mtu in new[] { "1279", "65536", "01500", "1500x", "", "100000" })
        {
            yield return Bad($"mtu '{mtu}'", "mtu: not a number from 1280 to 65535", 2, M, Arg, Rec("mtu", mtu), End);
        }

        // secrets: any bytes.
        yield return Good("secrets", M, Arg, Rec("secrets", "A=1\nB=\0\u00ff\n\n"), End);
        yield return Good("empty secrets", M, Arg, Rec("secrets", ""), End);

        // volumes
        yield return Good("volumes", M, Arg, Rec("volume", "data"), Rec("volume", "cache_2.v-1"), End);
        foreach (var name in new[] { "", ".hidden", "a/b", "..", "sp ace", new string('v', 64) })
        {
            yield return Bad($"volume '{name}'", "volume: not 1 to 63 letters, digits, '-', '_' or '.', not starting with '.'", 2, M, Arg, Rec("volume", name), End);
        }
        yield return Bad("duplicate volume", "volume: duplicate name", 3, M, Arg, Rec("volume", "data"), Rec("volume", "data"), End);
        var sixteen = Enumerable.Range(0, 16).Select(i => Rec("volume", $"v{i}")).ToArray();
        yield return Good("sixteen volumes", [M, Arg, .. sixteen, End]);
        yield return Bad("seventeen volumes", "more than 16 volume records", 18, [M, Arg, .. sixteen, Rec("volume", "v16"), End]);
        yield return Bad("a seventeenth volume that is a duplicate", "volume: duplicate name", 18, [M, Arg, .. sixteen, Rec("volume", "v0"), End]);

        // A refused value is never quoted, whatever the key: no message may hold the marker.
        foreach (var (key, value, problem) in new[]
                 {
                     ("arg", Secret + "\0", "arg: contains a NUL byte"),
                     ("env", Secret, "env: not NAME=VALUE"),
                     ("env", Secret + " x=1", "env: bad variable name"),
                     ("workdir", Secret, "workdir: not an absolute path"),
                     ("user", Secret + ":a:b", "user: not NAME, UID, NAME:GROUP or UID:GID"),
                     ("hostname", Secret + "_", "hostname: not 1 to 64 letters, digits, '-' or '.'"),
                     ("ipv6", Secret + "/64", "ipv6: not ADDRESS/PREFIX"),
                     ("gateway", Secret, "gateway: not an IPv6 address"),
                     ("mtu", Secret, "mtu: not a number from 1280 to 65535"),
                     ("volume", "." + Secret, "volume: not 1 to 63 letters, digits, '-', '_' or '.', not starting with '.'"),
                 })
        {
            yield return Bad($"refused {key} '{value.Replace("\0", "\\0")}'", problem, 2, M, Arg, Rec(key, value), End);
        }
        yield return Bad("duplicate secrets", "duplicate secrets record", 3, M, Arg, Rec("secrets", Secret), Rec("secrets", Secret), End);
    }
}
