namespace Trc.Cli.Dev;

/// <summary>
/// Where <c>trc dev</c> keeps its state, and where the CLI looks for a local dev server.
/// Everything lives in one directory: <c>$TRC_DEV_DIR</c>, else <c>/var/lib/trc/dev</c> for root
/// (trc dev runs microVMs and needs root), else <c>~/.local/share/trc/dev</c>.
/// </summary>
internal static class DevPaths
{
    /// <summary>The CLI profile trc dev writes: url, token, org and env, in <c>trc login</c>'s format.</summary>
    public const string ProfileName = "cli.toml";

    /// <summary>The dev directory for this environment.</summary>
    public static string Directory(Func<string, string?> environment) =>
        environment("TRC_DEV_DIR") is { Length: > 0 } dir ? Path.GetFullPath(dir)
        : Environment.IsPrivilegedProcess ? "/var/lib/trc/dev"
        : Path.Combine(Home(environment), ".local", "share", "trc", "dev");

    /// <summary>
    /// The dev profiles the CLI tries when neither <c>TRC_URL</c> nor a login names a server: the one
    /// in <c>$TRC_DEV_DIR</c> when set, else the user's and root's default dev directories (a dev
    /// server started with sudo writes its profile for the user who ran sudo).
    /// </summary>
    public static IReadOnlyList<string> ProfileCandidates(Func<string, string?> environment) =>
        environment("TRC_DEV_DIR") is { Length: > 0 } dir
            ? [Path.Combine(Path.GetFullPath(dir), ProfileName)]
            : [Path.Combine(Home(environment), ".local", "share", "trc", "dev", ProfileName), Path.Combine("/var/lib/trc/dev", ProfileName)];

    /// <summary>
    /// A host tool's path: the first hit in PATH, then in the sbin and bin directories a PATH
    /// (sudo's, or an unprivileged user's) may leave out; null when there is none.
    /// </summary>
    public static string? FindTool(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(d => Path.Combine(d, name))
            .FirstOrDefault(File.Exists);

    private static string Home(Func<string, string?> environment) =>
        environment("HOME") is { Length: > 0 } home ? home : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
}
