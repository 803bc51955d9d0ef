namespace Trc.Cli.Dev;

/// <summary>Who owns a file, and whether a file holding a token may be trusted.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class FileOwner
{
    private const int GroupOrOtherWrite = 0x12; // 0o022

    /// <summary>
    /// Whether a file others could have planted or changed: it must be a regular file (not a
    /// symlink), owned by this user or root, and neither it nor its directory writable by group or
    /// others. Null when trusted, else why not.
    /// </summary>
    public static string? Untrusted(string path)
    {
        var me = LinuxFiles.EffectiveUser;
        foreach (var (target, what) in new[] { (path, "the file"), (Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/", "its directory") })
        {
            if (LinuxFiles.Stat(target) is not { } st)
            {
                return $"{what} cannot be read";
            }
            var kind = st.Mode & 0xF000;
            if (target == path && kind != 0x8000)
            {
                return "it is not a regular file (a symlink?)";
            }
            if (st.Uid != me && st.Uid != 0)
            {
                return $"{what} belongs to uid {st.Uid}, neither you nor root";
            }
            if ((st.Mode & GroupOrOtherWrite) != 0)
            {
                return $"{what} is writable by group or others (mode {Convert.ToString(st.Mode & 0xFFF, 8)})";
            }
        }
        return null;
    }
}
