using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Trc.Oci.RootDisks;

/// <summary>How a tool run ended.</summary>
/// <param name="ExitCode">The exit code.</param>
/// <param name="StandardError">Its standard error (the first <see cref="ExternalTool.MaxCaptured"/> characters).</param>
internal readonly record struct ToolResult(int ExitCode, string StandardError);

/// <summary>Finds and runs the e2fsprogs tools.</summary>
internal static class ExternalTool
{
    public const int MaxCaptured = 64 * 1024;

    public const string Package = "e2fsprogs";

    // Debian and others leave sbin out of an unprivileged user's PATH, and mkfs.ext4 lives there.
    private static readonly string[] SbinDirectories = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

    /// <summary>The tool's path: <paramref name="configured"/> if set, else the first hit in PATH or sbin.</summary>
    /// <exception cref="RootDiskException">The tool is not there.</exception>
    public static string Locate(string name, string? configured)
    {
        if (configured is not null)
        {
            return File.Exists(configured)
                ? configured
                : throw new RootDiskException($"{name} was not found at {configured} (configured): install the {Package} package or fix the path");
        }
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(SbinDirectories))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new RootDiskException($"{name} was not found in PATH nor in {string.Join(", ", SbinDirectories)}: install the {Package} package");
    }

    /// <summary>
    /// Runs the tool to its end with C-locale messages (they are matched on), standard output
    /// discarded; cancellation kills it.
    /// </summary>
    public static async Task<ToolResult> RunAsync(string tool, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["LC_ALL"] = "C";
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new RootDiskException($"{Path.GetFileName(tool)} could not be started");
        }
        catch (Win32Exception e)
        {
            throw new RootDiskException($"{Path.GetFileName(tool)} ({tool}) could not be started: {e.Message}; it comes with the {Package} package", inner: e);
        }
        using (process)
        {
            process.StandardInput.Close();
            var output = DrainAsync(process.StandardOutput, 0);
            var error = DrainAsync(process.StandardError, MaxCaptured);
            try
            {
                await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // it ended on its own meanwhile
                }
                throw;
            }
            await output.ConfigureAwait(false);
            return new ToolResult(process.ExitCode, await error.ConfigureAwait(false));
        }
    }

    /// <summary>Reads a stream to its end, keeping at most <paramref name="keep"/> characters.</summary>
    private static async Task<string> DrainAsync(StreamReader reader, int keep)
    {
        var kept = new StringBuilder();
        var buffer = new char[8192];
        int n;
        while ((n = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            kept.Append(buffer, 0, Math.Min(n, keep - kept.Length));
        }
        return kept.ToString();
    }
}
