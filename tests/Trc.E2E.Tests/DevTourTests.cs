using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Trc.Testing;
using Trc.Testing.Guest;
using Xunit.Abstractions;

namespace Trc.E2E.Tests;

/// <summary>A fact that runs only where trc dev can: as root, with QEMU, the guest kernel, unshare and nsenter.</summary>
public sealed class DevTourFactAttribute : FactAttribute
{
    /// <summary>Sets the skip reason when something is missing.</summary>
    public DevTourFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "trc dev needs root (taps, a bridge, network and mount namespaces)";
        }
        else if (GuestAssets.SkipReason is { } reason)
        {
            Skip = reason;
        }
        else if (new[] { "unshare", "nsenter", "ip", "curl", "openssl", "busybox" }.FirstOrDefault(t => HostTool.Find(t) is null) is { } missing)
        {
            Skip = $"{missing} is not installed (scripts/test-packages.txt)";
        }
    }
}

/// <summary>
/// The README's tour, run as written against a fresh <c>trc dev</c>: the blocks are read from
/// README.md and run one after the other by bash, and each step's visible result is checked.
/// trc dev runs in a network namespace of its own (so its edge has ports 443 and 80, and nothing
/// reaches the machine's network) and a mount namespace where <c>/var/lib/trc</c> is a temp
/// directory (so the README's <c>/var/lib/trc/dev</c> paths are this run's, and a trc dev of the
/// machine is not touched). The blocks run inside both (nsenter), with <c>trc</c> the build under
/// test. Then Ctrl-C's signal stops it cleanly, and a second start resumes: hello serves again.
/// </summary>
public sealed class DevTourTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(4);
    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(4);

    private readonly string _root = Directory.CreateTempSubdirectory("trc-tour-").FullName;
    private readonly List<string> _transcript = [];
    private string _namespace = "";

    public async Task InitializeAsync()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }
        _namespace = "trctour-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        await HostTool.RunCheckedAsync("ip", ["netns", "add", _namespace], CancellationToken.None);
        await HostTool.RunCheckedAsync("ip", ["-n", _namespace, "link", "set", "lo", "up"], CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        if (_namespace.Length > 0)
        {
            await HostTool.RunAsync("ip", ["netns", "delete", _namespace], CancellationToken.None);
        }
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [DevTourFact]
    public async Task The_README_tour_runs_as_written_against_a_fresh_trc_dev_which_stops_cleanly_and_resumes()
    {
        var readme = Path.Combine(GuestAssets.RepositoryRoot, "README.md");
        var tour = ReadmeTour.Read(readme);
        var assets = await GuestAssets.EnsureBuiltAsync();
        var varLibTrc = Directory.CreateDirectory(Path.Combine(_root, "var-lib-trc")).FullName;
        var home = Directory.CreateDirectory(Path.Combine(_root, "home")).FullName;
        var state = Directory.CreateDirectory(Path.Combine(_root, "state")).FullName;
        await File.WriteAllTextAsync(Path.Combine(state, "cwd"), GuestAssets.RepositoryRoot);
        Directory.CreateDirectory("/var/lib/trc");

        var dev = StartDev(varLibTrc, assets.Directory, home);
        try
        {
            await dev.WaitForAsync("Ctrl-C stops everything", StartTimeout);
            Assert.Contains("(first start)", dev.Output);
            Assert.Contains("port 443 (TLS by SNI)", dev.Output);

            var results = new List<string>();
            foreach (var block in tour)
            {
                results.Add(await RunBlockAsync(dev, block, state, home));
            }
            string Of(string command) => results[ReadmeTour.Find(tour, command).Index];

            // Deploy: the rollout is followed to its end.
            Assert.Contains("Deployment 1 completed: release 1 serves.", Of("trc deploy --image localhost:7081/hello:v1"));
            // Through the edge: the app's own page and certificate, checked by curl and openssl.
            var reach = tour.First(b => b.Script.Contains("openssl s_client", StringComparison.Ordinal));
            Assert.Matches(@"hello from hello/prod, release 1, instance [0-9a-f-]{36}", results[reach.Index]);
            Assert.Contains("subject=CN = hello.localhost", results[reach.Index]);
            Assert.Contains("Verify return code: 0 (ok)", results[reach.Index]);
            // Logs: the app's own line, and the platform's.
            var logs = Of("trc logs hello\n");
            Assert.Contains("stdout hello: serving https on port 8443 (release 1, greeting: hello)", logs);
            Assert.Contains("system pulling localhost:7081/hello@sha256:", logs);
            // A secret: a rollout of release 2, which serves the new greeting.
            var secret = Of("trc secrets set GREETING=bonjour");
            Assert.Contains("Deployment 2: release 2 rolls the new secrets out", secret);
            Assert.Contains("Deployment 2 completed: release 2 serves.", secret);
            Assert.Contains("bonjour from hello/prod, release 2", secret);
            // A broken release: the gate fails it (exit 6), release 2 keeps serving, the logs say why.
            var broken = Of("trc deploy --image localhost:7081/hello:broken");
            Assert.Contains("Deployment 3 failed: instance", broken);
            Assert.Contains("exited with code 1", broken);
            Assert.Contains("trc deploy exited 6", broken);
            Assert.Contains("bonjour from hello/prod, release 2", broken);
            Assert.Contains("hello: cannot serve TLS: /app/tls/key.pem is missing from the image", broken);
            // Rollback: release 4 (release 1's image, today's secrets), and the history.
            var rollback = Of("trc rollback");
            Assert.Contains("Deployment 4 completed: release 4 serves.", rollback);
            Assert.Matches(@"(?m)^4\s+4\s+rollback\s+completed", rollback);
            Assert.Matches(@"(?m)^3\s+3\s+deploy\s+failed\s+.*exited with code 1", rollback);
            Assert.Matches(@"(?m)^2\s+2\s+secrets\s+replaced", rollback);
            // Scale: two healthy instances, and the edge sends one connection to each.
            var scale = Of("trc scale 2 --wait");
            Assert.Contains("web: 2 instances ready.", scale);
            Assert.Equal(2, Regex.Matches(scale, @"(?m)^[0-9a-f]{8}\s+web\s+4\s+healthy\s").Count);
            var served = Regex.Matches(scale, @"bonjour from hello/prod, release 4, instance ([0-9a-f-]{36})").Select(m => m.Groups[1].Value).ToList();
            Assert.Equal(2, served.Count);
            Assert.NotEqual(served[0], served[1]);
            // Raw TCP: the greeting of an echo instance, then our line back.
            var echo = Of("busybox nc 127.0.0.1 7000");
            Assert.Contains("Deployment 1 completed: release 1 serves.", echo);
            Assert.Matches(@"echo from instance [0-9a-f-]{36}\nhello over raw TCP", echo);

            // Ctrl-C: instances first, then the rest; nothing left running.
            await dev.StopAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, dev.ExitCode);
            Assert.Contains("trc dev: stopped", dev.Output);
            Assert.Empty(QemuIn(dev.MountNamespace));
            var links = await HostTool.RunCheckedAsync("ip", ["-n", _namespace, "-o", "link"], CancellationToken.None);
            Assert.DoesNotMatch(@"trc[0-9a-f]{12}", links); // no tap left

            // A second start resumes: hello serves again (release 4, two instances), as the README says.
            dev = StartDev(varLibTrc, assets.Directory, home);
            await dev.WaitForAsync("Ctrl-C stops everything", StartTimeout);
            Assert.Contains("(resuming)", dev.Output);
            var again = await RunUntilAsync(dev, state, home,
                "trc ps --app hello && curl -s --resolve hello.localhost:443:127.0.0.1 --cacert /var/lib/trc/dev/examples/hello.crt https://hello.localhost/index.html",
                o => Regex.Matches(o, @"(?m)^[0-9a-f]{8}\s+web\s+4\s+healthy\s*\S*\s+dev").Count == 2 && o.Contains("bonjour from hello/prod, release 4", StringComparison.Ordinal),
                TimeSpan.FromMinutes(3));
            Assert.DoesNotContain("stopping", again); // the instances stopped at the last Ctrl-C were reported stopped
            await dev.StopAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, dev.ExitCode);
            Assert.Empty(QemuIn(dev.MountNamespace));
        }
        finally
        {
            await dev.DisposeAsync();
            foreach (var pid in dev.MountNamespace.Length > 0 ? QemuIn(dev.MountNamespace) : [])
            {
                _ = kill(pid, 9);
            }
            output.WriteLine("---- trc dev ----");
            output.WriteLine(dev.Output);
            output.WriteLine("---- tour ----");
            foreach (var line in _transcript)
            {
                output.WriteLine(line);
            }
        }
    }

    /// <summary>trc dev in a mount namespace where /var/lib/trc is <paramref name="varLibTrc"/>, inside the test's network namespace.</summary>
    private DevProcess StartDev(string varLibTrc, string guestAssets, string home)
    {
        var trc = Path.Combine(AppContext.BaseDirectory, "trc.dll");
        var psi = new ProcessStartInfo("unshare")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = _root,
        };
        foreach (var a in new[] { "--mount", "--propagation", "private", "--", "sh", "-c", "mount --bind \"$1\" /var/lib/trc && exec ip netns exec \"$2\" dotnet \"$3\" dev", "sh", varLibTrc, _namespace, trc })
        {
            psi.ArgumentList.Add(a);
        }
        Clean(psi, home);
        psi.Environment["TRC_GUEST_ASSETS"] = guestAssets;
        return new DevProcess(Process.Start(psi)!);
    }

    /// <summary>Runs one README block with bash inside trc dev's namespaces; it must succeed.</summary>
    private async Task<string> RunBlockAsync(DevProcess dev, TourBlock block, string state, string home)
    {
        var (code, text) = await RunInDevAsync(dev, state, home, block.Script, $"README.md:{block.Line}", StepTimeout);
        Assert.True(code == 0, $"README.md:{block.Line}: the tour block exited {code}:\n{block.Script}\n---- output ----\n{text}\n---- trc dev ----\n{dev.Output}");
        return text;
    }

    private async Task<string> RunUntilAsync(DevProcess dev, string state, string home, string script, Func<string, bool> done, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        var last = "";
        while (watch.Elapsed < timeout)
        {
            (_, last) = await RunInDevAsync(dev, state, home, script, "after the restart", TimeSpan.FromSeconds(30));
            if (done(last))
            {
                return last;
            }
            await Task.Delay(2000);
        }
        throw new TimeoutException($"not done in {timeout.TotalSeconds:0} s; last output:\n{last}\n---- trc dev ----\n{dev.Output}");
    }

    private async Task<(int Code, string Output)> RunInDevAsync(DevProcess dev, string state, string home, string script, string what, TimeSpan timeout)
    {
        var trc = Path.Combine(AppContext.BaseDirectory, "trc.dll");
        var file = Path.Combine(state, "step.sh");
        // The directory and PATH a block leaves are where the next one starts, as in one terminal.
        var text = $$"""
            set -eo pipefail
            cd "$(cat '{{state}}/cwd')"
            export PATH="$(cat '{{state}}/path' 2>/dev/null || echo "$PATH")"
            trap 'pwd > "{{state}}/cwd"; printf %s "$PATH" > "{{state}}/path"' EXIT
            trc() { dotnet '{{trc}}' "$@"; }
            {{script}}
            """;
        await File.WriteAllTextAsync(file, text);
        var psi = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in new[] { "--target", dev.Pid.ToString(CultureInfo.InvariantCulture), "--mount", "--net", "--", "bash", file })
        {
            psi.ArgumentList.Add(a);
        }
        Clean(psi, home);
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(psi)!;
        process.StandardInput.Close();
        var both = new StringBuilder();
        var gate = new Lock();
        void Pump(StreamReader reader) => Task.Run(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                lock (gate)
                {
                    both.Append(line).Append('\n');
                }
            }
        });
        Pump(process.StandardOutput);
        Pump(process.StandardError);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{what}: not done in {timeout.TotalSeconds:0} s:\n{script}\n---- output ----\n{both}\n---- trc dev ----\n{dev.Output}");
        }
        await Task.Delay(50);
        string result;
        lock (gate)
        {
            result = both.ToString();
        }
        _transcript.Add($"$ # {what} ({watch.Elapsed.TotalSeconds:0.0} s, exit {process.ExitCode})\n{script}{result}");
        return (process.ExitCode, result);
    }

    /// <summary>A clean environment: no TRC_* of the machine, a home of our own (no trc login config).</summary>
    private static void Clean(ProcessStartInfo psi, string home)
    {
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("TRC_", StringComparison.Ordinal) || k.StartsWith("XDG_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }
        psi.Environment["HOME"] = home;
    }

    /// <summary>QEMU processes in <paramref name="mountNamespace"/> (trc dev's: its VMs inherit it).</summary>
    private static List<int> QemuIn(string mountNamespace)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "comm")).StartsWith("qemu-system", StringComparison.Ordinal)
                    && new FileInfo(Path.Combine(dir, "ns", "mnt")).LinkTarget == mountNamespace)
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return found;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    /// <summary>The trc dev process and its output.</summary>
    private sealed class DevProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly Lock _gate = new();

        public DevProcess(Process process)
        {
            _process = process;
            _process.StandardInput.Close();
            Pump(process.StandardOutput);
            Pump(process.StandardError);
        }

        /// <summary>trc dev's pid (unshare, sh and ip netns exec each exec the next).</summary>
        public int Pid => _process.Id;

        public int ExitCode => _process.ExitCode;

        public string Output
        {
            get
            {
                lock (_gate)
                {
                    return _output.ToString();
                }
            }
        }

        /// <summary>trc dev's mount namespace (<c>mnt:[INODE]</c>), known once it is ready.</summary>
        public string MountNamespace { get; private set; } = "";

        public async Task WaitForAsync(string text, TimeSpan timeout)
        {
            var watch = Stopwatch.StartNew();
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                if (_process.HasExited)
                {
                    throw new InvalidOperationException($"trc dev exited ({_process.ExitCode}) before \"{text}\":\n{Output}");
                }
                if (watch.Elapsed > timeout)
                {
                    throw new TimeoutException($"no \"{text}\" from trc dev in {timeout.TotalSeconds:0} s:\n{Output}");
                }
                await Task.Delay(200);
            }
            MountNamespace = new FileInfo($"/proc/{_process.Id}/ns/mnt").LinkTarget ?? "";
        }

        /// <summary>
        /// Ctrl-C: SIGINT, unless the process inherited it ignored (as background jobs of a shell
        /// do; then SIGTERM, which trc dev treats alike), and the wait.
        /// </summary>
        public async Task StopAsync(TimeSpan timeout)
        {
            var ignored = File.ReadAllLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
            var sigintIgnored = (ulong.Parse(ignored["SigIgn:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture) & 0x2) != 0;
            _ = kill(_process.Id, sigintIgnored ? 15 : 2);
            using var cts = new CancellationTokenSource(timeout);
            await _process.WaitForExitAsync(cts.Token);
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _ = kill(_process.Id, 15);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                try
                {
                    await _process.WaitForExitAsync(cts.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(entireProcessTree: true);
                }
            }
            _process.Dispose();
        }

        private void Pump(StreamReader reader) => Task.Run(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                lock (_gate)
                {
                    _output.Append(line).Append('\n');
                }
            }
        });
    }
}
