using System.Net;
using System.Net.Sockets;
using System.Text.Unicode;

namespace Trc.Agent.Guest;

/// <summary>
/// The per-value rules of the config disk, over the bytes as they are on the disk. These are
/// guest/init/config.c's rules with its messages, word for word: the reader reports exactly what
/// init would, and the writer refuses exactly what init would refuse (and a little more).
/// Each check returns null when the value is acceptable, else the message (never the value).
/// </summary>
internal static class GuestConfigRules
{
    public static string? Text(ReadOnlySpan<byte> value)
    {
        if (value.Contains((byte)0))
        {
            return "contains a NUL byte";
        }
        return Utf8.IsValid(value) ? null : "not valid UTF-8";
    }

    public static string? Env(ReadOnlySpan<byte> value)
    {
        var eq = value.IndexOf((byte)'=');
        if (eq <= 0)
        {
            return "not NAME=VALUE";
        }
        foreach (var b in value[..eq])
        {
            if (b is < 0x21 or > 0x7e)
            {
                return "bad variable name";
            }
        }
        return null;
    }

    public static string? WorkDir(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty || value[0] != (byte)'/')
        {
            return "not an absolute path";
        }
        return value.Length > GuestConfigLimits.MaxWorkDirBytes ? $"longer than {GuestConfigLimits.MaxWorkDirBytes} bytes" : null;
    }

    public static string? User(ReadOnlySpan<byte> value)
    {
        const string bad = "not NAME, UID, NAME:GROUP or UID:GID";
        if (value.IsEmpty || value.Length > GuestConfigLimits.MaxUserBytes)
        {
            return bad;
        }
        int colons = 0, part = 0;
        foreach (var b in value)
        {
            if (b is < 0x20 or 0x7f)
            {
                return bad;
            }
            if (b == (byte)':')
            {
                if (part == 0 || ++colons > 1)
                {
                    return bad;
                }
                part = 0;
            }
            else
            {
                part++;
            }
        }
        return part == 0 ? bad : null;
    }

    public static string? Hostname(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty || value.Length > GuestConfigLimits.MaxHostnameBytes)
        {
            return "not 1 to 64 letters, digits, '-' or '.'";
        }
        foreach (var b in value)
        {
            if (!(IsAsciiLetterOrDigit(b) || b is (byte)'-' or (byte)'.'))
            {
                return "not 1 to 64 letters, digits, '-' or '.'";
            }
        }
        return null;
    }

    public static string? Volume(ReadOnlySpan<byte> value)
    {
        const string bad = "not 1 to 63 letters, digits, '-', '_' or '.', not starting with '.'";
        if (value.IsEmpty || value.Length > GuestConfigLimits.MaxVolumeNameBytes || value[0] == (byte)'.')
        {
            return bad;
        }
        foreach (var b in value)
        {
            if (!(IsAsciiLetterOrDigit(b) || b is (byte)'-' or (byte)'.' or (byte)'_'))
            {
                return bad;
            }
        }
        return null;
    }

    /// <summary><c>ADDRESS/PREFIX</c>, prefix 1 to 128 without a leading zero.</summary>
    public static GuestIpv6Address? Ipv6(ReadOnlySpan<byte> value)
    {
        var slash = value.IndexOf((byte)'/');
        if (slash < 0 || !TryParseDecimal(value[(slash + 1)..], 3, out var prefix) || prefix is < 1 or > 128)
        {
            return null;
        }
        var address = Address(value[..slash]);
        return address is null ? null : new GuestIpv6Address(address, (int)prefix);
    }

    /// <summary>
    /// An IPv6 address in hex-and-colons form: no embedded IPv4, zone or brackets (what init's
    /// inet_pton accepts within that alphabet).
    /// </summary>
    public static IPAddress? Address(ReadOnlySpan<byte> value)
    {
        if (value.Length is < 2 or > 39)
        {
            return null;
        }
        Span<char> chars = stackalloc char[value.Length];
        for (var i = 0; i < value.Length; i++)
        {
            var b = value[i];
            if (!(char.IsAsciiHexDigit((char)b) || b == (byte)':'))
            {
                return null;
            }
            chars[i] = (char)b;
        }
        return IPAddress.TryParse(chars, out var address) && address.AddressFamily == AddressFamily.InterNetworkV6 ? address : null;
    }

    public static int? Mtu(ReadOnlySpan<byte> value) =>
        TryParseDecimal(value, 5, out var mtu) && mtu is >= GuestConfigLimits.MinMtu and <= GuestConfigLimits.MaxMtu ? (int)mtu : null;

    /// <summary>1 to <paramref name="maxDigits"/> decimal digits without a leading zero (init's parse_decimal).</summary>
    public static bool TryParseDecimal(ReadOnlySpan<byte> digits, int maxDigits, out long value)
    {
        value = 0;
        if (digits.IsEmpty || digits.Length > maxDigits || (digits.Length > 1 && digits[0] == (byte)'0'))
        {
            return false;
        }
        foreach (var b in digits)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                return false;
            }
            value = value * 10 + (b - '0');
        }
        return true;
    }

    private static bool IsAsciiLetterOrDigit(byte b) => char.IsAsciiLetterOrDigit((char)b);
}
