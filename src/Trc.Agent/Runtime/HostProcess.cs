using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Trc.Agent.Runtime;

/// <summary>
/// A VMM process known by pid and start time (so a recycled pid is never mistaken for it), which
/// need not be a child of this process: VMMs outlive the agent.
/// </summary>
/// <param name="Pid">The process id.</param>
/// <param name="StartTicks">Its start time in clock ticks since boot (<c>/proc/PID/stat</c> field 22).</param>
[SupportedOSPlatform("linux")]
public sealed partial record HostProcess(int Pid, long StartTicks)
{
    /// <summary>The process with this pid as it is now, or null when there is none.</summary>
    public static HostProcess? Find(int pid)
    {
        var ticks = ReadStartTicks(pid);
        return ticks is null ? null : new HostProcess(pid, ticks.Value);
    }

    /// <summary>Whether this very process still exists (and is not a zombie).</summary>
    public bool IsAlive
    {
        get
        {
            var stat = ReadStat(Pid);
            return stat is not null && stat.Value.StartTicks == StartTicks && stat.Value.State != 'Z' && stat.Value.State != 'X';
        }
    }

    /// <summary>Sends a signal; false when the process is gone.</summary>
    public bool Signal(int signal) => IsAlive && kill(Pid, signal) == 0;

    /// <summary>
    /// Sets the nice value of every thread the process has now (Linux keeps one per thread; threads
    /// made later take their creator's). Returns how many threads took it: 0 when the process is
    /// gone or this process may not raise priorities (not root, no CAP_SYS_NICE).
    /// </summary>
    public int Renice(int nice)
    {
        if (!IsAlive)
        {
            return 0;
        }
        var done = 0;
        try
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{Pid.ToString(CultureInfo.InvariantCulture)}/task"))
            {
                if (int.TryParse(Path.GetFileName(task), NumberStyles.None, CultureInfo.InvariantCulture, out var tid) && setpriority(PrioProcess, tid, nice) == 0)
                {
                    done++;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The process ended while we looked.
        }
        return done;
    }

    /// <summary>Waits until the process is gone, polling (it need not be our child).</summary>
    public async Task WaitForExitAsync(CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(20);
        while (IsAlive)
        {
            await Task.Delay(delay, ct).ConfigureAwait(false);
            delay = TimeSpan.FromMilliseconds(Math.Min(250, delay.TotalMilliseconds * 2));
        }
    }

    /// <summary>SIGKILL.</summary>
    public const int SigKill = 9;

    /// <summary>SIGTERM.</summary>
    public const int SigTerm = 15;

    private static long? ReadStartTicks(int pid) => ReadStat(pid)?.StartTicks;

    private static (char State, long StartTicks)? ReadStat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // "pid (comm) S ..." where comm may hold spaces and parentheses: fields start after the last ')'.
        var close = text.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }
        var fields = text[(close + 2)..].Split(' ');
        // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
        if (fields.Length < 20 || !long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start))
        {
            return null;
        }
        return (fields[0].Length > 0 ? fields[0][0] : '?', start);
    }

    private const int PrioProcess = 0;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setpriority(int which, int who, int prio);

    /// <summary>Runs a short command and returns its exit code and combined output (for <c>ip</c>, <c>mkfs</c>, probes).</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            if (ct.IsCancellationRequested)
            {
                throw;
            }
            return (-1, $"{file} did not finish within {timeout.TotalSeconds:0.#} s");
        }
        return (p.ExitCode, (await stdout.ConfigureAwait(false)) + (await stderr.ConfigureAwait(false)));
    }
}
