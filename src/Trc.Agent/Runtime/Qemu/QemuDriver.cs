using System.Globalization;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using System.Text.Json;

namespace Trc.Agent.Runtime.Qemu;

/// <summary>
/// Runs microVMs with QEMU's <c>microvm</c> machine. Uses KVM when a probe boot under it completes,
/// TCG otherwise (on hosts where nested KVM hangs, the probe times out instead of the instance).
/// Each VMM is daemonized (it outlives the agent) and recorded in <c>vmm.json</c> in its state
/// directory, which is how <see cref="RecoverAsync"/> adopts it after an agent restart.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class QemuDriver : IVmDriver
{
    private readonly QemuOptions options;
    private readonly Cgroups? cgroups;
    private readonly Once<DriverFingerprint> _fingerprint;
    private long? _tscKhz;

    /// <summary>A driver with these options; VMMs join cgroups made by <paramref name="cgroups"/> when given.</summary>
    public QemuDriver(QemuOptions options, Cgroups? cgroups = null)
    {
        this.options = options;
        this.cgroups = cgroups;
        _fingerprint = new Once<DriverFingerprint>(ProbeAsync);
    }

    /// <inheritdoc />
    public string Name => "qemu";

    /// <inheritdoc />
    public Task<DriverFingerprint> FingerprintAsync(CancellationToken ct) => _fingerprint.GetAsync(ct);

    private async Task<DriverFingerprint> ProbeAsync(CancellationToken ct)
    {
        string version;
        try
        {
            var (code, output) = await HostProcess.RunAsync(options.Binary, ["--version"], TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            if (code != 0)
            {
                return new DriverFingerprint(Name, false, null, "none", $"{options.Binary} --version failed: {output.Trim()}");
            }
            version = output.Split('\n')[0].Trim();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new DriverFingerprint(Name, false, null, "none", $"{options.Binary} cannot be run ({e.Message}); install qemu-system-x86");
        }
        switch (options.Acceleration)
        {
            case QemuAcceleration.Kvm:
                return new DriverFingerprint(Name, true, version, "kvm", "KVM forced by configuration");
            case QemuAcceleration.Tcg:
                _tscKhz = await MeasureTscKhzAsync(ct).ConfigureAwait(false);
                return new DriverFingerprint(Name, true, version, "tcg", "TCG forced by configuration");
        }
        var why = await KvmUnusableAsync(ct).ConfigureAwait(false);
        if (why is not null)
        {
            _tscKhz = await MeasureTscKhzAsync(ct).ConfigureAwait(false);
        }
        return why is null
            ? new DriverFingerprint(Name, true, version, "kvm", null)
            : new DriverFingerprint(Name, true, version, "tcg", why);
    }

    // Null when KVM works; else why not.
    private async Task<string?> KvmUnusableAsync(CancellationToken ct)
    {
        try
        {
            using var kvm = File.Open("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"/dev/kvm cannot be opened ({e.Message})";
        }
        if (options.ProbeKernel is null || !File.Exists(options.ProbeKernel))
        {
            return "no guest kernel to probe KVM with";
        }
        // Boot the kernel with no root under KVM: it panics and powers off in about a second where
        // KVM works. Where nested KVM hangs, the probe is killed at the timeout.
        var (code, output) = await HostProcess.RunAsync(options.Binary,
        [
            "-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host", "-m", "128M", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-serial", "stdio", "-kernel", options.ProbeKernel,
            "-append", "console=ttyS0 reboot=t panic=-1 loglevel=1",
        ], options.KvmProbeTimeout, ct).ConfigureAwait(false);
        if (code == -1)
        {
            return $"a KVM probe boot did not finish within {options.KvmProbeTimeout.TotalSeconds:0} s (nested KVM hangs on some hosts): using TCG";
        }
        return code == 0 ? null : $"a KVM probe boot failed (exit {code}): {Last(output)}";
    }

    /// <inheritdoc />
    public async Task<IVm> StartAsync(VmSpec spec, CancellationToken ct)
    {
        var fingerprint = await FingerprintAsync(ct).ConfigureAwait(false);
        if (!fingerprint.Available)
        {
            throw new VmStartException($"the qemu driver cannot run here: {fingerprint.Reason}");
        }
        Directory.CreateDirectory(spec.StateDir);
        foreach (var socket in new[] { QemuCommandLine.ConsoleSocket(spec.StateDir), QemuCommandLine.QmpSocket(spec.StateDir) })
        {
            if (Encoding.UTF8.GetByteCount(socket) > 107)
            {
                throw new VmStartException($"the state directory '{spec.StateDir}' is too long for a unix socket path (107 bytes)");
            }
            File.Delete(socket);
        }
        File.Delete(QemuCommandLine.PidFile(spec.StateDir));
        var kvm = fingerprint.Acceleration == "kvm";
        var args = QemuCommandLine.Build(spec, kvm, kvm ? null : _tscKhz, options.TcgTranslationCacheMiB);
        if (spec.Cgroup is { } cg)
        {
            cgroups?.Create(cg);
        }
        var (code, output) = await HostProcess.RunAsync(options.Binary, args, options.StartTimeout, ct).ConfigureAwait(false);
        if (code != 0)
        {
            throw new VmStartException($"qemu did not start (exit {code}): {Last(output)}");
        }
        var pidText = await File.ReadAllTextAsync(QemuCommandLine.PidFile(spec.StateDir), ct).ConfigureAwait(false);
        var process = HostProcess.Find(int.Parse(pidText.Trim(), CultureInfo.InvariantCulture))
            ?? throw new VmStartException("qemu exited right after starting; see " + Path.Combine(spec.StateDir, "qemu.log"));
        try
        {
            if (spec.Cgroup is { } cgroup && cgroups is not null)
            {
                cgroups.AddProcess(cgroup.Name, process.Pid);
            }
            if (!kvm && options.TcgNiceness is { } nice)
            {
                process.Renice(nice);
            }
            await WriteRecordAsync(spec, process, ct).ConfigureAwait(false);
            var vm = await QemuVm.AttachAsync(spec, process, cgroups, options.StopMargin, recovered: false, ct).ConfigureAwait(false);
            // Started paused (-S) so nothing the guest prints is lost before the console is attached.
            await QmpAsync(spec.StateDir, "cont", ct).ConfigureAwait(false);
            return vm;
        }
        catch
        {
            process.Signal(HostProcess.SigKill);
            throw;
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<IVm>> RecoverAsync(string instancesDir, CancellationToken ct)
    {
        var found = new List<IVm>();
        if (!Directory.Exists(instancesDir))
        {
            return found;
        }
        foreach (var dir in Directory.EnumerateDirectories(instancesDir))
        {
            var record = Path.Combine(dir, VmStateFiles.Record);
            if (!File.Exists(record))
            {
                continue;
            }
            VmmRecord? r;
            try
            {
                r = JsonSerializer.Deserialize<VmmRecord>(await File.ReadAllTextAsync(record, ct).ConfigureAwait(false), RecordJson);
            }
            catch (JsonException)
            {
                continue;
            }
            if (r is null || r.Driver != Name)
            {
                continue;
            }
            var process = new HostProcess(r.Pid, r.StartTicks);
            if (!process.IsAlive)
            {
                continue;
            }
            try
            {
                found.Add(await QemuVm.AttachAsync(r.Spec, process, cgroups, options.StopMargin, recovered: true, ct).ConfigureAwait(false));
            }
            catch (SocketException)
            {
                // The VMM runs but its console is gone: it cannot be supervised; kill it so the
                // instance is started afresh rather than left running unseen.
                process.Signal(HostProcess.SigKill);
            }
        }
        return found;
    }

    private static readonly JsonSerializerOptions RecordJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private async Task WriteRecordAsync(VmSpec spec, HostProcess process, CancellationToken ct)
    {
        var path = Path.Combine(spec.StateDir, VmStateFiles.Record);
        var tmp = path + ".tmp";
        await File.WriteAllTextAsync(tmp, JsonSerializer.Serialize(new VmmRecord(Name, process.Pid, process.StartTicks, spec), RecordJson), ct).ConfigureAwait(false);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>What <c>vmm.json</c> holds.</summary>
    private sealed record VmmRecord(string Driver, int Pid, long StartTicks, VmSpec Spec);

    // One QMP command on a fresh connection: greeting, capabilities, the command.
    private static async Task QmpAsync(string stateDir, string command, CancellationToken ct)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(QemuCommandLine.QmpSocket(stateDir)), ct).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false); // greeting
        foreach (var execute in new[] { "qmp_capabilities", command })
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes($"{{\"execute\":\"{execute}\"}}\n"), timeout.Token).ConfigureAwait(false);
            while (true)
            {
                var line = await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false)
                    ?? throw new VmStartException($"QMP closed the connection during '{execute}'");
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.TryGetProperty("return", out _))
                {
                    break;
                }
                if (doc.RootElement.TryGetProperty("error", out var error))
                {
                    throw new VmStartException($"QMP '{execute}' failed: {error}");
                }
                // An asynchronous event: keep reading.
            }
        }
    }

    // The host's TSC rate, handed to TCG guests: without it their TSC calibration sometimes spins
    // forever (no PIT or HPET reference on microvm), and under TCG the guest TSC runs at the host's.
    private async Task<long?> MeasureTscKhzAsync(CancellationToken ct)
    {
        if (options.TscProbe is { } probe && File.Exists(probe))
        {
            var (code, output) = await HostProcess.RunAsync(probe, ["--tsc-khz"], TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            if (code == 0 && long.TryParse(output.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var khz) && khz > 0)
            {
                return khz;
            }
        }
        return CpuinfoKhz();
    }

    private static long? CpuinfoKhz()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("cpu MHz", StringComparison.Ordinal))
                {
                    var value = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
                    if (decimal.TryParse(value, NumberStyles.Number, CultureInfo.InvariantCulture, out var mhz) && mhz > 0)
                    {
                        return (long)(mhz * 1000);
                    }
                }
            }
        }
        catch (IOException)
        {
        }
        return 2_000_000;
    }

    private static string Last(string output)
    {
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no output)" : string.Join(" | ", lines.TakeLast(3));
    }
}
