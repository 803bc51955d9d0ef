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

    /// <summary>The process's own standard streams.</summary>
    public static CliConsole FromProcess()
    {
        var err = new StreamWriter(Console.OpenStandardError(), new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
        return new CliConsole(Console.OpenStandardInput(), Console.OpenStandardOutput(), err);
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
}
