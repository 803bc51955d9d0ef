using System.Net;
using Trc.Agent.Runtime;
using Trc.Core.Api;

namespace Trc.Agent.Host;

/// <summary>
/// The launcher of the <c>fake</c> driver: no images, disks, network or cgroups, only the spec a
/// fake VM needs. For tests of the agent's logic and for trying the control plane without VMs.
/// </summary>
/// <param name="instancesDir">Where instance directories go.</param>
public sealed class FakeLauncher(string instancesDir) : IInstanceLauncher
{
    private readonly Lock _gate = new();
    private readonly List<Guid> _prepared = [];

    /// <inheritdoc />
    public string InstancesDir { get; } = instancesDir;

    /// <summary>Instances prepared so far, in order (one entry per boot).</summary>
    public IReadOnlyList<Guid> Prepared
    {
        get
        {
            lock (_gate)
            {
                return [.. _prepared];
            }
        }
    }

    /// <summary>When set, preparing this instance fails with this message.</summary>
    public Func<InstanceSpecView, string?>? FailWith { get; set; }

    /// <inheritdoc />
    public IPAddress? AddressOf(Guid instance) => null;

    /// <inheritdoc />
    public Task<PreparedInstance> PrepareAsync(InstanceSpecView instance, Action<string> progress, CancellationToken ct)
    {
        if (FailWith?.Invoke(instance) is { } failure)
        {
            throw new InstanceLaunchException(failure);
        }
        lock (_gate)
        {
            _prepared.Add(instance.Id);
        }
        var dir = Path.Combine(InstancesDir, instance.Id.ToString("D"));
        Directory.CreateDirectory(dir);
        var spec = new VmSpec(instance.Id.ToString("D"), dir, "vmlinuz", "initramfs", "root.ext4", "scratch.ext4", "config.img", [],
            instance.MemoryBytes, Math.Max(1, (int)Math.Ceiling(instance.Cpu)), null, null);
        return Task.FromResult(new PreparedInstance(spec, null));
    }

    /// <inheritdoc />
    public void OnBooted(VmSpec spec)
    {
    }

    /// <inheritdoc />
    public Task CleanupAsync(VmSpec spec, CancellationToken ct) => Task.CompletedTask;

    /// <inheritdoc />
    public void Remove(Guid instance)
    {
        var dir = Path.Combine(InstancesDir, instance.ToString("D"));
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
