using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Trc.Testing.Registry;

namespace Trc.Testing.Guest;

/// <summary>How an external program ended.</summary>
public sealed record ToolResult(string CommandLine, int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Throws <see cref="ExternalToolException"/> unless the exit code is 0.</summary>
    public ToolResult EnsureSuccess() =>
        ExitCode == 0 ? this : throw new ExternalToolException(CommandLine, ExitCode, Stderr, Stdout);
}

/// <summary>Runs the host tools the guest fixtures need (mkfs.ext4, ip, busybox, the asset script).</summary>
public static class GuestTool
{
    /// <summary>Runs a program to its end; never throws for a non-zero exit (see <see cref="ToolResult.EnsureSuccess"/>).</summary>
    public static async Task<ToolResult> RunAsync(string file, IEnumerable<string> arguments, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
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

    /// <summary>Runs a program; returns its stdout or throws with its stderr.</summary>
    public static async Task<string> RunCheckedAsync(string file, IEnumerable<string> arguments, CancellationToken ct) =>
        (await RunAsync(file, arguments, ct)).EnsureSuccess().Stdout;

    /// <summary>The full path of a program on PATH (or in an sbin directory, which a non-login PATH may lack), or null.</summary>
    public static string? Find(string program)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        return dirs.Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
    }

    /// <summary>chown(2): .NET has no managed way to change a file's owner.</summary>
    public static void Chown(string path, int uid, int gid)
    {
        if (chown(path, uid, gid) != 0)
        {
            throw new IOException($"chown {path} {uid}:{gid}: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    // DllImport rather than LibraryImport: the generated stubs would need AllowUnsafeBlocks.
    [DllImport("libc", SetLastError = true)]
    private static extern int chown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int owner, int group);
}
