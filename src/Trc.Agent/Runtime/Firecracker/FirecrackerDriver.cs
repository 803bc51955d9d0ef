using System.Runtime.Versioning;
using System.Text;
using System.Text.Json;

namespace Trc.Agent.Runtime.Firecracker;

/// <summary>
/// Runs microVMs with Firecracker (docs/firecracker.md), normally through its jailer. A start
/// links the VM's files into a fresh jail, spawns the jailer in a new session with the serial
/// console on two FIFOs in the state directory, joins the VMM to its cgroup, records it in
/// <c>vmm.json</c>, configures it over the API socket (boot source, drives, machine, network) and
/// starts the guest. The VMM is never tied to the agent: a later agent adopts it with
/// <see cref="RecoverAsync"/> and reads and writes its console again through the same FIFOs.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class FirecrackerDriver : IVmDriver
{
    // The VMM needs no environment (the jailer clears it anyway); a PATH for any shell in between.
    private static readonly string[] VmmEnvironment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"];

    private readonly FirecrackerOptions _options;
    private readonly Cgroups? _cgroups;
    private readonly TimeProvider _time;
    private readonly Once<DriverFingerprint> _fingerprint;

    /// <summary>A driver with these options; VMMs join cgroups made by <paramref name="cgroups"/> when given.</summary>
    public FirecrackerDriver(FirecrackerOptions options, Cgroups? cgroups = null, TimeProvider? time = null)
    {
        _options = options;
        _cgroups = cgroups;
        _time = time ?? TimeProvider.System;
        _fingerprint = new Once<DriverFingerprint>(ProbeAsync);
    }

    /// <summary>The driver's name: <c>firecracker</c>.</summary>
    public string Name => FirecrackerRecord.DriverName;

    /// <summary>
    /// Available when the binaries are there, Firecracker answers <c>--version</c>, KVM runs a test
    /// vCPU and (with <see cref="FirecrackerOptions.ProbeKernel"/>) Firecracker boots a kernel;
    /// every probe is time-bounded. Computed once.
    /// </summary>
    public Task<DriverFingerprint> FingerprintAsync(CancellationToken ct) => _fingerprint.GetAsync(ct);

    private async Task<DriverFingerprint> ProbeAsync(CancellationToken ct)
    {
        DriverFingerprint No(string reason, string? version = null) => new(Name, false, version, "none", reason);

        if (Missing(_options.FirecrackerBinary) is { } noFirecracker)
        {
            return No(noFirecracker);
        }
        if (_options.UseJailer)
        {
            if (Missing(_options.JailerBinary) is { } noJailer)
            {
                return No(noJailer);
            }
            if (_options.Uid is null || _options.Gid is null)
            {
                return No("the jailer needs a user for the VMMs: set TRC_JAILER_UID and TRC_JAILER_GID (docs/firecracker.md)");
            }
            if (!Directory.Exists(_options.ChrootBaseDir))
            {
                return No($"the chroot base {_options.ChrootBaseDir} does not exist");
            }
        }
        else if (_options.NetworkNamespace is not null)
        {
            return No("a network namespace needs the jailer");
        }

        var (code, output) = await HostProcess.RunAsync(_options.FirecrackerBinary, ["--version"], _options.ProbeTimeout, ct).ConfigureAwait(false);
        if (code != 0)
        {
            return No($"{_options.FirecrackerBinary} --version failed ({(code == -1 ? "timed out" : "exit " + code)}): {Tail(output)}");
        }
        var version = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "unknown";

        if (await KvmProbe.ProblemAsync(_options.KvmDevice, _options.ProbeTimeout, ct).ConfigureAwait(false) is { } kvm)
        {
            return No(kvm, version);
        }
        if (_options.ProbeKernel is { } kernel
            && await BootProbeAsync(_options.FirecrackerBinary, kernel, _options.ProbeTimeout, ct).ConfigureAwait(false) is { } boot)
        {
            return No(boot, version);
        }
        return new DriverFingerprint(Name, true, version, "kvm", null);
    }

    private static string? Missing(string binary)
    {
        if (!File.Exists(binary))
        {
            return $"{binary} is not installed (see docs/firecracker.md)";
        }
        return (File.GetUnixFileMode(binary) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0
            ? $"{binary} is not executable"
            : null;
    }

    /// <summary>
    /// Boots <paramref name="kernel"/> in Firecracker with no root disk and no API socket: it panics
    /// at once, and <c>panic=-1 reboot=k</c> resets through the i8042, which ends Firecracker with
    /// status 0. Null when that happened within <paramref name="timeout"/>; otherwise why not (a
    /// hang, as nested KVM can, is killed at the timeout).
    /// </summary>
    public static async Task<string?> BootProbeAsync(string firecracker, string kernel, TimeSpan timeout, CancellationToken ct)
    {
        if (!File.Exists(kernel))
        {
            return $"the probe kernel {kernel} does not exist";
        }
        var dir = Directory.CreateTempSubdirectory("trc-fc-probe-");
        try
        {
            var config = Path.Combine(dir.FullName, "probe.json");
            await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["boot-source"] = new Dictionary<string, string>
                {
                    ["kernel_image_path"] = kernel,
                    ["boot_args"] = "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd",
                },
                ["drives"] = Array.Empty<object>(),
                ["machine-config"] = new Dictionary<string, int> { ["vcpu_count"] = 1, ["mem_size_mib"] = 128 },
            }), ct).ConfigureAwait(false);
            var (code, output) = await HostProcess.RunAsync(firecracker,
                ["--no-api", "--config-file", config, "--id", "trc-probe", "--level", "Error"], timeout, ct).ConfigureAwait(false);
            return code switch
            {
                0 => null,
                -1 => $"Firecracker did not boot a test kernel within {timeout.TotalSeconds:0.#} s (nested virtualization that hangs?)",
                _ => $"Firecracker failed to boot a test kernel (exit {code}): {Tail(output)}",
            };
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>Starts one VM; the returned VM's guest is booting. Consult <see cref="FingerprintAsync"/> before the first start.</summary>
    public async Task<IVm> StartAsync(VmSpec spec, CancellationToken ct)
    {
        var plan = FirecrackerLaunch.Plan(spec, _options);
        Directory.CreateDirectory(spec.StateDir);
        if (await FirecrackerRecord.ReadAsync(spec.StateDir, ct).ConfigureAwait(false) is { } old
            && VmmProcess.Adopt(old.Pid, old.StartTicks) is { } running)
        {
            var pid = running.Pid;
            running.Dispose();
            throw new VmStartException($"a VMM for instance {spec.InstanceId} still runs (pid {pid}): recover it or kill it first");
        }

        var consoleIn = Path.Combine(spec.StateDir, FirecrackerLaunch.ConsoleInFile);
        var consoleOut = Path.Combine(spec.StateDir, FirecrackerLaunch.ConsoleOutFile);
        var stderr = Path.Combine(spec.StateDir, FirecrackerLaunch.StderrFile);
        // Leftovers of an earlier VMM of this instance (none runs: checked above). A jail's socket
        // goes with its jail.
        foreach (var stale in new[] { consoleIn, consoleOut, FirecrackerRecord.PathIn(spec.StateDir), plan.ApiSocket })
        {
            if (Directory.Exists(Path.GetDirectoryName(stale)))
            {
                File.Delete(stale);
            }
        }
        FirecrackerNative.MakeFifo(consoleIn);
        FirecrackerNative.MakeFifo(consoleOut);

        VmmProcess? process = null;
        try
        {
            if (plan.JailDirectory is not null)
            {
                FirecrackerJail.Prepare(plan, _options.Uid!.Value, _options.Gid!.Value);
            }
            if (spec.Cgroup is { } cgroup)
            {
                _cgroups?.Create(cgroup);
            }
            process = Spawn(plan, consoleIn, consoleOut, stderr)
                ?? throw new VmStartException($"{Path.GetFileName(plan.Executable)} exited at once: {StderrTail(stderr)}");
            if (spec.Cgroup is { } cg)
            {
                // Before the API is up, so before InstanceStart allocates guest memory.
                _cgroups?.AddProcess(cg.Name, process.Pid);
            }
            var record = new FirecrackerRecord(FirecrackerRecord.DriverName, process.Pid, process.Process.StartTicks, Started: false,
                plan.ApiSocket, consoleIn, consoleOut, plan.JailDirectory, spec);
            await record.WriteAsync(ct).ConfigureAwait(false);
            await WaitForApiAsync(plan, process, stderr, ct).ConfigureAwait(false);
            using (var api = new FirecrackerApiClient(plan.ApiSocket, _options.ApiRequestTimeout))
            {
                await api.ConfigureAndStartAsync(plan, ct).ConfigureAwait(false);
            }
            await (record with { Started = true }).WriteAsync(ct).ConfigureAwait(false);
            return new FirecrackerVm(spec, process, consoleIn, consoleOut, plan.JailDirectory, _cgroups, _options, _time, recovered: false);
        }
        catch (Exception e)
        {
            await AbandonAsync(spec, plan, process).ConfigureAwait(false);
            if (e is FirecrackerApiException api)
            {
                throw new VmStartException($"instance {spec.InstanceId}: {api.Message}");
            }
            throw;
        }
    }

    private static VmmProcess? Spawn(FirecrackerLaunchPlan plan, string consoleIn, string consoleOut, string stderr)
    {
        // Read-write ends for the VMM itself: stdin never reaches end-of-file and stdout never a
        // broken pipe, whether or not an agent has the other end open. Non-blocking stdout: with
        // no agent reading, a full pipe drops the guest's output instead of stalling its vCPU.
        using var stdin = FirecrackerNative.Open(consoleIn, FirecrackerNative.ORdWr);
        using var stdout = FirecrackerNative.Open(consoleOut, FirecrackerNative.ORdWr | FirecrackerNative.ONonBlock);
        using var errors = FirecrackerNative.Open(stderr, FirecrackerNative.OWrOnly | FirecrackerNative.OCreat | FirecrackerNative.OAppend, 0x180);
        FirecrackerNative.TrySetPipeSize(stdout, 1 << 20);
        var pid = FirecrackerNative.Spawn(plan.Executable, plan.Arguments, VmmEnvironment, stdin, stdout, errors);
        return VmmProcess.OfChild(pid);
    }

    private async Task WaitForApiAsync(FirecrackerLaunchPlan plan, VmmProcess process, string stderr, CancellationToken ct)
    {
        var deadline = _time.GetTimestamp() + (long)(_options.ApiSocketTimeout.TotalSeconds * _time.TimestampFrequency);
        var delay = TimeSpan.FromMilliseconds(5);
        while (!await FirecrackerApiClient.IsListeningAsync(plan.ApiSocket, ct).ConfigureAwait(false))
        {
            if (process.HasExited(out var detail))
            {
                throw new VmStartException($"{Path.GetFileName(plan.Executable)} {detail} before its API socket opened: {StderrTail(stderr)}");
            }
            if (_time.GetTimestamp() > deadline)
            {
                throw new VmStartException($"Firecracker did not open its API socket {plan.ApiSocket} within {_options.ApiSocketTimeout.TotalSeconds:0.#} s: {StderrTail(stderr)}");
            }
            await Task.Delay(delay, _time, ct).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(100).Ticks));
        }
    }

    // A start that failed part-way leaves nothing running: the VMM is killed and reaped, its jail,
    // cgroup and record removed.
    private async Task AbandonAsync(VmSpec spec, FirecrackerLaunchPlan plan, VmmProcess? process)
    {
        if (process is not null)
        {
            process.Kill();
            for (var i = 0; i < 200 && !process.HasExited(out _); i++)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(10), _time, CancellationToken.None).ConfigureAwait(false);
            }
            process.Dispose();
        }
        if (plan.JailDirectory is not null)
        {
            FirecrackerJail.Remove(plan.JailDirectory);
        }
        if (spec.Cgroup is { } cg)
        {
            _cgroups?.Remove(cg.Name);
        }
        File.Delete(FirecrackerRecord.PathIn(spec.StateDir));
    }

    /// <summary>
    /// Adopts the VMMs still running from <c>vmm.json</c> records under <paramref name="instancesDir"/>.
    /// A VMM that never got to <c>InstanceStart</c> (the agent died while configuring it) is killed;
    /// the jail and cgroup of a VMM that is gone are removed; state directories are left alone.
    /// </summary>
    public async Task<IReadOnlyList<IVm>> RecoverAsync(string instancesDir, CancellationToken ct)
    {
        var found = new List<IVm>();
        if (!Directory.Exists(instancesDir))
        {
            return found;
        }
        foreach (var dir in Directory.EnumerateDirectories(instancesDir))
        {
            if (await FirecrackerRecord.ReadAsync(dir, ct).ConfigureAwait(false) is not { } record)
            {
                continue;
            }
            var process = VmmProcess.Adopt(record.Pid, record.StartTicks);
            if (process is not null && !record.Started)
            {
                process.Kill();
                process.Dispose();
                process = null;
                await WaitGoneAsync(new HostProcess(record.Pid, record.StartTicks), ct).ConfigureAwait(false);
            }
            if (process is null)
            {
                if (record.JailDirectory is not null)
                {
                    FirecrackerJail.Remove(record.JailDirectory);
                }
                if (record.Spec.Cgroup is { } cg)
                {
                    _cgroups?.Remove(cg.Name);
                }
                continue;
            }
            try
            {
                found.Add(new FirecrackerVm(record.Spec, process, record.ConsoleIn, record.ConsoleOut, record.JailDirectory, _cgroups, _options, _time, recovered: true));
            }
            catch (IOException)
            {
                // Its console FIFO is gone: the VMM cannot be supervised. Killed, so the instance
                // is started afresh rather than left running unseen.
                process.Kill();
                process.Dispose();
            }
        }
        return found;
    }

    private async Task WaitGoneAsync(HostProcess process, CancellationToken ct)
    {
        for (var i = 0; i < 200 && process.IsAlive; i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(10), _time, ct).ConfigureAwait(false);
        }
    }

    private static string StderrTail(string path)
    {
        try
        {
            return Tail(File.Exists(path) ? File.ReadAllText(path, Encoding.UTF8) : "");
        }
        catch (IOException)
        {
            return "(no output)";
        }
    }

    private static string Tail(string output)
    {
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no output)" : string.Join(" | ", lines.TakeLast(3));
    }
}
