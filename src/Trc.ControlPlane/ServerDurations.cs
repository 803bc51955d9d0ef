using System.Globalization;
using Trc.Core.Manifest;

namespace Trc.ControlPlane;

/// <summary>
/// Durations in the server's settings and queries: the manifest's forms (<c>500ms</c>, <c>15s</c>,
/// <c>10m</c>, <c>2h</c>) and whole days (<c>7d</c>).
/// </summary>
public static class ServerDurations
{
    /// <summary>Parses a duration; false (with a message) when malformed.</summary>
    public static bool TryParse(string text, out TimeSpan value, out string error)
    {
        if (text.Length is > 1 and <= 8 && text.EndsWith('d') && text[0] is >= '1' and <= '9'
            && int.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var days) && days <= 36500)
        {
            value = TimeSpan.FromDays(days);
            error = "";
            return true;
        }
        if (Duration.TryParse(text, out value, out _))
        {
            error = "";
            return true;
        }
        error = $"'{Core.Toml.TomlKeys.Printable(text, 40)}' is not a duration: write a positive whole number and a unit, like \"500ms\", \"15s\", \"10m\", \"2h\" or \"7d\"";
        return false;
    }
}
