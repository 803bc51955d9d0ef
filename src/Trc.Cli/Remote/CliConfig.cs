using System.Text;
using Trc.Core.Toml;

namespace Trc.Cli.Remote;

/// <summary>
/// The user CLI's settings, <c>$XDG_CONFIG_HOME/trc/config.toml</c> (else
/// <c>~/.config/trc/config.toml</c>), written by <c>trc login</c>. It holds a token, so it is
/// created readable by its owner only (0600, in a 0700 directory) and replaced atomically.
/// </summary>
/// <param name="Url">The server's URL.</param>
/// <param name="Token">The API token.</param>
/// <param name="Org">The default org.</param>
/// <param name="Env">The default env.</param>
internal sealed record CliConfig(string? Url, string? Token, string? Org, string? Env)
{
    private const int MaxFileBytes = 64 * 1024;

    public static CliConfig Empty { get; } = new(null, null, null, null);

    /// <summary>Where the file lives for this console's environment.</summary>
    public static string PathFor(CliConsole console)
    {
        // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
        var xdg = console.GetEnvironmentVariable("XDG_CONFIG_HOME");
        var home = console.GetEnvironmentVariable("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg) ? xdg : Path.Combine(home, ".config");
        return Path.Combine(root, "trc", "config.toml");
    }

    /// <summary>Reads the file; a missing file is an empty config. Warns on stderr when others may read it.</summary>
    public static CliConfig Load(CliConsole console, string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                return Empty;
            }
            if (info.Length > MaxFileBytes)
            {
                throw new CliFailure(ExitCodes.Invalid, $"{path}: the file is {info.Length} bytes; a trc config is at most {MaxFileBytes}");
            }
            bytes = File.ReadAllBytes(path);
            if (!OperatingSystem.IsWindows() && (info.UnixFileMode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            {
                console.Err.WriteLine($"trc: warning: {path} holds your token and others may read it; run: chmod 600 {path}");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliFailure(ExitCodes.IoError, $"{path}: cannot read: {e.Message}");
        }
        var parsed = Toml.Parse(bytes);
        if (!parsed.IsSuccess)
        {
            throw new CliFailure(ExitCodes.Invalid, $"{path}:{parsed.Error}; fix the file or run trc login again");
        }
        var root = parsed.Document!.Root;
        string? Read(string key)
        {
            if (!root.TryGetValue(key, out var value))
            {
                return null;
            }
            return value is TomlString s
                ? s.Value
                : throw new CliFailure(ExitCodes.Invalid, $"{path}:{value.Position.Line}:{value.Position.Column}: {key} must be a string, not {value.TypeNameWithArticle}");
        }
        // Other keys are ignored: a newer trc may add some.
        return new CliConfig(Read("url"), Read("token"), Read("org"), Read("env"));
    }

    /// <summary>
    /// Writes the file: a new file created 0600 from the start (never a wider mode, not even for a
    /// moment), then renamed over the old one.
    /// </summary>
    public void Save(string path)
    {
        var text = new StringBuilder()
            .Append("# trc CLI settings, written by `trc login`. This file holds an API token: keep it private (mode 0600).\n");
        foreach (var (key, value) in new[] { ("url", Url), ("token", Token), ("org", Org), ("env", Env) })
        {
            if (value is not null)
            {
                text.Append(key).Append(" = ").Append(Quote(value)).Append('\n');
            }
        }
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temp = Path.Combine(directory, $".config.toml.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(directory);
            }
            else
            {
                Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(new UTF8Encoding(false).GetBytes(text.ToString()));
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new CliFailure(ExitCodes.IoError, $"{path}: cannot write: {e.Message}");
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>A TOML basic string.</summary>
    private static string Quote(string value)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (char.IsControl(c))
                    {
                        sb.Append("\\u").Append(((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}
