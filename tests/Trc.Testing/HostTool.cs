using System.ComponentModel;
using System.Diagnostics;

namespace Trc.Testing;

/// <summary>An external tool exited non-zero; the message carries its command line and stderr (else stdout).</summary>
public sealed class ExternalToolException(string commandLine, int exitCode, string stderr, string stdout)
    : Exception($"`{commandLine}` exited with {exitCode}: {(stderr.Trim().Length > 0 ? stderr.Trim() : stdout.Trim())}")
{
    public string CommandLine { get; } = commandLine;

    public int ExitCode { get; } = exitCode;

    public string Stderr { get; } = stderr;
}

/// <summary>How an external program ended.</summary>
public sealed record ToolResult(string CommandLine, int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Throws <see cref="ExternalToolException"/> unless the exit code is 0.</summary>
    public ToolResult EnsureSuccess() =>
        ExitCode == 0 ? this : throw new ExternalToolException(CommandLine, ExitCode, Stderr, Stdout);
}

/// <summary>Runs the host programs the fixtures need (umoci, skopeo, mkfs.ext4, ip, busybox, the asset script).</summary>
public static class HostTool
{
    /// <summary>
    /// Runs a program to its end, stdin closed, stdout and stderr captured; never throws for a
    /// non-zero exit (see <see cref="ToolResult.EnsureSuccess"/>), only when it cannot start. On
    /// cancellation the program and its children are killed.
    /// </summary>
    public static async Task<ToolResult> RunAsync(string file, IEnumerable<string> arguments, CancellationToken ct, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }
        var commandLine = file + " " + string.Join(' ', psi.ArgumentList.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a));
        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            throw new ExternalToolException(commandLine, -1, $"could not start {file}: {e.Message} (see scripts/test-packages.txt)", "");
        }
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return new ToolResult(commandLine, process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs a program; returns its stdout, or throws <see cref="ExternalToolException"/> with its stderr.</summary>
    public static async Task<string> RunCheckedAsync(string file, IEnumerable<string> arguments, CancellationToken ct, string? workingDirectory = null) =>
        (await RunAsync(file, arguments, ct, workingDirectory)).EnsureSuccess().Stdout;

    /// <summary>The full path of a program on PATH (or in an sbin directory, which a non-login PATH may lack), or null.</summary>
    public static string? Find(string program)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        return dirs.Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
    }
}
