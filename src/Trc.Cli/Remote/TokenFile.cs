namespace Trc.Cli.Remote;

/// <summary>Reads a file holding one token (the admin token for edges, the node token for agents) without ever echoing it.</summary>
internal static class TokenFile
{
    /// <summary>The token in <paramref name="file"/>; false with the exit code when it cannot be used (said on stderr as <c>trc ROLE: OPTION FILE: why</c>).</summary>
    public static bool TryRead(CliConsole console, string role, string option, string file, out string token, out int code)
    {
        token = "";
        code = ExitCodes.Invalid;
        try
        {
            var path = Path.GetFullPath(file, console.WorkingDirectory);
            if (new FileInfo(path).Length > 4096)
            {
                console.Err.WriteLine($"trc {role}: {option} {file}: more than 4096 bytes; a token file holds one token");
                return false;
            }
            token = File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            console.Err.WriteLine($"trc {role}: {option} {file}: {e.Message}");
            code = ExitCodes.IoError;
            return false;
        }
        if (token.Length == 0 || token.Any(c => c is <= ' ' or > '~'))
        {
            // Never echo the token: say where it is wrong, not what it is.
            console.Err.WriteLine($"trc {role}: {option} {file}: {(token.Length == 0 ? "empty" : "not one token (it must be printable ASCII without spaces)")}");
            token = "";
            return false;
        }
        return true;
    }
}
