using System.Net;
using Trc.Agent.Guest;
using Trc.Agent.Runtime;
using Trc.Core.Api;

namespace Trc.Agent.Host;

/// <summary>
/// Keeps one instance running on this node until it is no longer wanted: prepares and boots its VM,
/// turns its console into log lines and state reports, checks its health, restarts it per the
/// <see cref="RestartPolicy"/>, and stops it (SIGTERM, then a kill after the grace period) when asked.
/// When the agent itself shuts down, the VM is left running for the next agent to adopt.
/// </summary>
public sealed class InstanceSupervisor
{
    private readonly IVmDriver _driver;
    private readonly IInstanceLauncher _launcher;
    private readonly StateReporter _states;
    private readonly LogShipper _logs;
    private readonly AgentOptions _options;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private int _restarts;

    /// <summary>A supervisor for <paramref name="instance"/>; call <see cref="Start"/>.</summary>
    public InstanceSupervisor(InstanceSpecView instance, IVmDriver driver, IInstanceLauncher launcher, StateReporter states, LogShipper logs, AgentOptions options, Action<string> log)
    {
        Instance = instance;
        _driver = driver;
        _launcher = launcher;
        _states = states;
        _logs = logs;
        _options = options;
        _log = log;
    }

    /// <summary>The instance.</summary>
    public InstanceSpecView Instance { get; }

    /// <summary>Completes when the instance is stopped for good, or the agent shuts down.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>Whether the instance was stopped on request (rather than left running at agent shutdown).</summary>
    public bool Stopped { get; private set; }

    /// <summary>Whether a stop was asked for.</summary>
    public bool StopRequested => _stop.IsCancellationRequested;

    /// <summary>Starts supervising; <paramref name="adopted"/> is a VM an earlier agent left running.</summary>
    public void Start(IVm? adopted, CancellationToken agentShutdown) => Completion = Task.Run(() => RunAsync(adopted, agentShutdown), CancellationToken.None);

    /// <summary>Asks for the instance to be stopped (the VM gets SIGTERM and the grace period).</summary>
    public void RequestStop()
    {
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void Report(string state, IPAddress? address = null, int? exitCode = null, string? reason = null) =>
        _states.Report(Instance.Id, new InstanceStateRequest(state, address?.ToString(), exitCode, reason, _restarts));

    private void System(string line) => _logs.Add(Instance.Id, LogStreams.System, line);

    private async Task RunAsync(IVm? adopted, CancellationToken shutdown)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(shutdown, _stop.Token);
        var ct = linked.Token;
        var quickFailures = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                IVm vm;
                IPAddress? address;
                if (adopted is not null)
                {
                    vm = adopted;
                    adopted = null;
                    address = _launcher.AddressOf(Instance.Id);
                    System("agent restarted: supervising the running VM again");
                }
                else
                {
                    Report(InstanceStates.Starting);
                    try
                    {
                        var prepared = await _launcher.PrepareAsync(Instance, System, ct).ConfigureAwait(false);
                        address = prepared.Address;
                        vm = await _driver.StartAsync(prepared.Spec, ct).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (ct.IsCancellationRequested)
                    {
                        break;
                    }
                    catch (Exception e)
                    {
                        var reason = "could not start: " + e.Message;
                        System(reason);
                        _log($"instance {Instance.Id}: {reason}");
                        quickFailures++;
                        if (!await BackoffAsync(quickFailures, reason, ct).ConfigureAwait(false))
                        {
                            break;
                        }
                        continue;
                    }
                }
                var started = DateTimeOffset.UtcNow;
                var outcome = await SuperviseAsync(vm, address, shutdown).ConfigureAwait(false);
                if (outcome is null)
                {
                    // The agent is shutting down: the VM keeps running for the next agent.
                    await vm.DisposeAsync().ConfigureAwait(false);
                    return;
                }
                await vm.DisposeAsync().ConfigureAwait(false);
                await _launcher.CleanupAsync(vm.Spec, CancellationToken.None).ConfigureAwait(false);
                if (_stop.IsCancellationRequested)
                {
                    break;
                }
                Report(outcome.State, exitCode: outcome.ExitCode, reason: outcome.Reason);
                System($"instance {outcome.State}{(outcome.ExitCode is { } code ? $" with code {code}" : "")}{(outcome.Reason is { } r ? $": {r}" : "")}");
                quickFailures = DateTimeOffset.UtcNow - started >= _options.Restart.ResetAfter ? 1 : quickFailures + 1;
                if (!await BackoffAsync(quickFailures, outcome.Reason ?? outcome.State, ct).ConfigureAwait(false))
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _log($"instance {Instance.Id}: supervisor failed: {e}");
            Report(InstanceStates.Failed, reason: "agent error: " + e.Message);
        }
        if (_stop.IsCancellationRequested)
        {
            Stopped = true;
            Report(InstanceStates.Stopped);
        }
    }

    // Waits before the next restart; false when the instance should not run again (stop asked, or
    // too many quick failures — then it is reported failed and waits for its stop).
    private async Task<bool> BackoffAsync(int quickFailures, string last, CancellationToken ct)
    {
        try
        {
            if (quickFailures > _options.Restart.MaxQuickFailures)
            {
                Report(InstanceStates.Failed, reason: $"gave up after {quickFailures - 1} short runs in a row; last: {last}");
                await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
                return false;
            }
            var delay = _options.Restart.DelayFor(quickFailures);
            System($"restarting in {delay.TotalSeconds:0.#} s");
            await Task.Delay(delay, ct).ConfigureAwait(false);
            _restarts++;
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private sealed record Outcome(string State, int? ExitCode, string? Reason);

    // Runs one VM until it exits (→ its outcome), a stop is asked (→ stopped outcome after the
    // grace period), or the agent shuts down (→ null, VM left running).
    private async Task<Outcome?> SuperviseAsync(IVm vm, IPAddress? address, CancellationToken shutdown)
    {
        using var watch = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        int? exitCode = null;
        var guestOom = false;
        string? fatal = null;
        string? lastKernelLine = null;
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (vm.Recovered)
        {
            Report(InstanceStates.Running, address);
            running.TrySetResult();
        }
        var console = Task.Run(async () =>
        {
            try
            {
                await foreach (var frame in vm.ReadConsoleAsync(watch.Token).ConfigureAwait(false))
                {
                    switch (frame.Kind)
                    {
                        case ConsoleFrameKind.Stdout:
                            _logs.Add(Instance.Id, LogStreams.Stdout, frame.Text);
                            break;
                        case ConsoleFrameKind.Stderr:
                            _logs.Add(Instance.Id, LogStreams.Stderr, frame.Text);
                            break;
                        case ConsoleFrameKind.Ready:
                            _launcher.OnBooted(vm.Spec);
                            Report(InstanceStates.Running, address);
                            running.TrySetResult();
                            break;
                        case ConsoleFrameKind.Exit:
                            exitCode = frame.ExitCode;
                            guestOom |= frame.Oom;
                            break;
                        case ConsoleFrameKind.Fatal:
                            fatal = frame.Text;
                            System("init: " + frame.Text);
                            break;
                        case ConsoleFrameKind.Info:
                            System("init: " + frame.Text);
                            break;
                        default:
                            if (frame.Text.Length > 0)
                            {
                                lastKernelLine = frame.Text;
                                System("kernel: " + frame.Text);
                            }
                            break;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);
        var health = Instance.Healthcheck is { } check && address is not null
            ? Task.Run(() => HealthLoopAsync(check, address, running.Task, watch.Token), CancellationToken.None)
            : Task.CompletedTask;
        var bootTimedOut = false;
        var watchdog = vm.Recovered ? Task.CompletedTask : Task.Run(async () =>
        {
            try
            {
                await running.Task.WaitAsync(_options.BootTimeout, watch.Token).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Not while it is being stopped, nor when the agent leaves its VMs running.
                if (!_stop.IsCancellationRequested && !watch.IsCancellationRequested)
                {
                    bootTimedOut = true;
                    System($"the guest did not start the app within {_options.BootTimeout.TotalSeconds:0} s: killing its VM");
                    try
                    {
                        await vm.StopAsync(TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false);
                    }
#pragma warning disable CA1031 // The VM's end is watched anyway; a failed kill is said, not thrown.
                    catch (Exception e)
#pragma warning restore CA1031
                    {
                        System($"could not kill the VM: {e.Message}");
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);

        var exited = vm.WaitAsync(watch.Token);
        var stopAsked = Task.Delay(Timeout.Infinite, _stop.Token);
        await Task.WhenAny(exited, stopAsked).ConfigureAwait(false);
        VmmExit vmm;
        if (exited.IsCompletedSuccessfully)
        {
            vmm = exited.Result;
        }
        else if (_stop.IsCancellationRequested)
        {
            System($"stopping: SIGTERM, then a kill after {_options.StopGrace.TotalSeconds:0.#} s");
            vmm = await vm.StopAsync(_options.StopGrace, shutdown.IsCancellationRequested ? CancellationToken.None : shutdown).ConfigureAwait(false);
        }
        else
        {
            // Agent shutdown: stop watching, leave the VM be.
            await watch.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(console, health, watchdog).ConfigureAwait(false);
            return null;
        }
        // Let the console drain its last frames (the exit report comes just before power-off).
        await Task.WhenAny(console, Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None)).ConfigureAwait(false);
        await watch.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(console, health, watchdog).ConfigureAwait(false);

        if (_stop.IsCancellationRequested)
        {
            return new Outcome(InstanceStates.Stopped, exitCode, null);
        }
        if (guestOom || vmm.HostOom)
        {
            return new Outcome(InstanceStates.MemoryLimitExceeded, exitCode,
                guestOom ? $"the app used more than its {Instance.MemoryBytes >> 20} MiB memory cap (guest OOM killer)" : "the VM exceeded its host memory limit (cgroup OOM killer)");
        }
        if (fatal is not null)
        {
            return new Outcome(InstanceStates.Failed, null, "init: " + fatal);
        }
        if (bootTimedOut)
        {
            return new Outcome(InstanceStates.Failed, null,
                $"the guest did not start the app within {_options.BootTimeout.TotalSeconds:0} s ({(lastKernelLine is null ? "not a line on its console" : "its console's last line: " + lastKernelLine)}); too little memory for the kernel, or a hung boot");
        }
        if (exitCode is not null)
        {
            return new Outcome(InstanceStates.Exited, exitCode, null);
        }
        return new Outcome(InstanceStates.Failed, null, $"the VM ended without an exit report ({vmm.Detail ?? "unknown"})");
    }

    private async Task HealthLoopAsync(HealthcheckView check, IPAddress address, Task running, CancellationToken ct)
    {
        try
        {
            await running.WaitAsync(ct).ConfigureAwait(false);
            var failures = 0;
            bool? healthy = null;
            while (!ct.IsCancellationRequested)
            {
                var (ok, detail) = _options.HealthProbeOverride is { } probe
                    ? await probe(Instance, check, address, ct).ConfigureAwait(false)
                    : await HealthProbe.CheckAsync(check, address, ct).ConfigureAwait(false);
                if (ok)
                {
                    failures = 0;
                    if (healthy != true)
                    {
                        healthy = true;
                        Report(InstanceStates.Healthy, address);
                    }
                }
                else if (++failures >= 3 && healthy != false)
                {
                    healthy = false;
                    Report(InstanceStates.Unhealthy, address, reason: $"{check.Kind} check of port {check.Port} failed 3 times: {detail}");
                }
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(100, check.IntervalMs)), ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
