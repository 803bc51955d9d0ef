using System.Text;

namespace Trc.Cli;

/// <summary>The streams a command uses, so that tests can run the CLI in-process.</summary>
public sealed class CliConsole
{
    /// <summary>Wraps streams; text written to <see cref="Out"/> is UTF-8 without BOM, LF line ends.</summary>
    public CliConsole(Stream input, Stream output, TextWriter error)
    {
        In = input;
        OutStream = output;
        Out = new StreamWriter(output, new UTF8Encoding(false), leaveOpen: true) { AutoFlush = true, NewLine = "\n" };
        Err = error;
    }

    /// <summary>Standard input, as bytes.</summary>
    public Stream In { get; }

    /// <summary>Standard output, as bytes (for exact file output).</summary>
    public Stream OutStream { get; }

    /// <summary>Standard output, as text.</summary>
    public TextWriter Out { get; }

    /// <summary>Standard error.</summary>
    public TextWriter Err { get; }

    /// <summary>
    /// Reads an environment variable (TRC_URL, TRC_TOKEN, TRC_ORG, TRC_ENV, HOME, XDG_CONFIG_HOME).
    /// The process's environment by default; tests substitute their own, so that parallel tests
    /// never share it.
    /// </summary>
    public Func<string, string?> GetEnvironmentVariable { get; init; } = Environment.GetEnvironmentVariable;

    /// <summary>The directory relative paths (and the default <c>./trc.toml</c>) are resolved against.</summary>
    public string WorkingDirectory { get; init; } = Environment.CurrentDirectory;

    /// <summary>
    /// Reads one line from the terminal without echoing it (for tokens), or null when standard
    /// input is not a terminal: then secrets are read from <see cref="In"/>.
    /// </summary>
    public Func<string?>? ReadHiddenLine { get; init; }

    /// <summary>The process's own standard streams.</summary>
    public static CliConsole FromProcess()
    {
        var err = new StreamWriter(Console.OpenStandardError(), new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
        return new CliConsole(Console.OpenStandardInput(), Console.OpenStandardOutput(), err)
        {
            ReadHiddenLine = Console.IsInputRedirected ? null : ReadHiddenTerminalLine,
        };
    }

    private static string ReadHiddenTerminalLine()
    {
        var line = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            switch (key.Key)
            {
                case ConsoleKey.Enter:
                    return line.ToString();
                case ConsoleKey.Backspace when line.Length > 0:
                    line.Length--;
                    break;
                default:
                    if (!char.IsControl(key.KeyChar) && line.Length < 4096)
                    {
                        line.Append(key.KeyChar);
                    }
                    break;
            }
        }
    }

    /// <summary>Reads all of standard input.</summary>
    public byte[] ReadAllInput()
    {
        using var buffer = new MemoryStream();
        In.CopyTo(buffer);
        return buffer.ToArray();
    }
}

/// <summary>Process exit codes shared by every command.</summary>
public static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>The input was read and found invalid (a manifest error, a TOML syntax error, ...).</summary>
    public const int Invalid = 1;

    /// <summary>The command line itself was wrong (unknown option, missing argument).</summary>
    public const int Usage = 2;

    /// <summary>A file could not be read or written.</summary>
    public const int IoError = 3;

    /// <summary>Not logged in, the token was refused (401), or it may not do this (403).</summary>
    public const int NotAuthorized = 4;

    /// <summary>The server could not be reached, did not answer in time, or failed (5xx).</summary>
    public const int Unavailable = 5;

    /// <summary>A rollout this command followed failed its health gate, timed out, or was superseded.</summary>
    public const int RolloutFailed = 6;

    /// <summary>Stopped by Ctrl+C (the shell's convention, 128 + SIGINT).</summary>
    public const int Interrupted = 130;
}
