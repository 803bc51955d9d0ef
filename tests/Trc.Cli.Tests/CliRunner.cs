using System.Diagnostics;
using System.Text;

namespace Trc.Cli.Tests;

/// <summary>What a CLI run produced.</summary>
public sealed record CliResult(int ExitCode, byte[] StdoutBytes, string Stderr)
{
    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);

    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>Runs the CLI in-process (fast) or as the real executable (to prove the process contract).</summary>
public static class CliRunner
{
    /// <summary>The repository root: the first directory above the test binaries holding trc.slnx.</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    private static string FindRepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "trc.slnx")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? Environment.GetEnvironmentVariable("TRC_REPOSITORY_ROOT") ?? Environment.CurrentDirectory;
    }

    public static CliResult Run(string[] args, byte[]? stdin = null)
    {
        using var input = new MemoryStream(stdin ?? []);
        using var output = new MemoryStream();
        using var error = new StringWriter { NewLine = "\n" };
        var code = TrcCli.Run(args, new CliConsole(input, output, error));
        return new CliResult(code, output.ToArray(), error.ToString());
    }

    public static CliResult Run(string[] args, string stdin) => Run(args, Encoding.UTF8.GetBytes(stdin));

    /// <summary>Runs <c>dotnet trc.dll ARGS</c> as a child process with a 60 s limit.</summary>
    public static async Task<CliResult> RunProcessAsync(string[] args, byte[]? stdin = null)
    {
        var trc = Path.Combine(AppContext.BaseDirectory, "trc.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(trc);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var process = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var stdoutTask = CopyAsync(process.StandardOutput.BaseStream, cts.Token);
        var stderrTask = process.StandardError.ReadToEndAsync(cts.Token);
        await process.StandardInput.BaseStream.WriteAsync(stdin ?? [], cts.Token);
        process.StandardInput.Close();
        await process.WaitForExitAsync(cts.Token);
        return new CliResult(process.ExitCode, await stdoutTask, await stderrTask);
    }

    private static async Task<byte[]> CopyAsync(Stream stream, CancellationToken token)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, token);
        return buffer.ToArray();
    }
}
