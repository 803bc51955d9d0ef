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

    /// <summary>
    /// Whether instances get addresses: <see cref="FakeAddress"/> of their id (for tests of health
    /// checks and edge backends with <see cref="AgentOptions.HealthProbeOverride"/>; nothing listens
    /// there). False (the default): no address, as without networking.
    /// </summary>
    public bool Addresses { get; init; }

    /// <summary>The prefix of <see cref="FakeAddress"/>: <c>fd00:fa4e::/64</c>.</summary>
    public static IPAddress AddressPrefix { get; } = IPAddress.Parse("fd00:fa4e::");

    /// <summary>The fake address of an instance: <see cref="AddressPrefix"/> with the low 64 bits of its id (distinct per instance).</summary>
    public static IPAddress FakeAddress(Guid instance)
    {
        Span<byte> bytes = stackalloc byte[16];
        AddressPrefix.TryWriteBytes(bytes, out _);
        Span<byte> id = stackalloc byte[16];
        instance.TryWriteBytes(id, bigEndian: true, out _);
        id[8..].CopyTo(bytes[8..]);
        return new IPAddress(bytes);
    }

    /// <inheritdoc />
    public IPAddress? AddressOf(Guid instance) => Addresses ? FakeAddress(instance) : null;

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
        return Task.FromResult(new PreparedInstance(spec, AddressOf(instance.Id)));
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
