using System.Runtime.Versioning;
using Trc.Agent.Host;
using Trc.Agent.Network;
using Trc.Agent.Runtime;
using Trc.Agent.Runtime.Fake;
using Trc.Agent.Runtime.Firecracker;
using Trc.Agent.Runtime.Qemu;
using Trc.Client;
using Trc.Oci.Registry;

namespace Trc.Cli.Commands;

/// <summary>
/// A node agent wired to its runtime: the VM driver, the guest boot files, the image cache and the
/// node's bridge. <c>trc agent</c> and <c>trc dev</c> both make theirs here.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class AgentWiring : IDisposable
{
    private readonly InstanceImages _images;

    private AgentWiring(AgentOptions options, string driverName, IVmDriver driver, GuestBootFiles? guest, InstanceImages images, Cgroups cgroups)
    {
        Options = options;
        DriverName = driverName;
        Driver = driver;
        Guest = guest;
        _images = images;
        Cgroups = cgroups;
    }

    public AgentOptions Options { get; }

    public string DriverName { get; }

    public IVmDriver Driver { get; }

    public GuestBootFiles? Guest { get; }

    public Cgroups Cgroups { get; }

    /// <summary>
    /// Wires an agent. <paramref name="driverName"/> is qemu, firecracker or fake; the guest assets
    /// are looked up (and a missing file said) unless the driver is fake.
    /// </summary>
    /// <exception cref="InstanceLaunchException">The guest assets are missing or incomplete.</exception>
    public static AgentWiring Create(AgentOptions options, string driverName, QemuAcceleration acceleration, string guestAssets, RegistryClient registry, Func<string, string?> environment)
    {
        GuestBootFiles? guest = driverName == "fake" ? null : GuestBootFiles.Locate(guestAssets, driverName);
        Directory.CreateDirectory(options.DataDir);
        var cgroups = new Cgroups();
        IVmDriver driver = driverName switch
        {
            "qemu" => new QemuDriver(new QemuOptions
            {
                Acceleration = acceleration,
                ProbeKernel = guest?.Kernel,
                TscProbe = guest?.Init,
            }, cgroups),
            "firecracker" => new FirecrackerDriver(FirecrackerOptions.FromEnvironment(environment) is var fc
                && environment("TRC_JAILER_CHROOT") is null
                // Disks are hard-linked into the jail: it must be on the data directory's filesystem.
                ? fc with { ProbeKernel = guest?.Kernel, ChrootBaseDir = Path.Combine(options.DataDir, "jail") }
                : fc with { ProbeKernel = guest?.Kernel }, cgroups),
            _ => new FakeDriver(),
        };
        var images = new InstanceImages(Path.Combine(options.DataDir, "images"), registry);
        return new AgentWiring(options, driverName, driver, guest, images, cgroups);
    }

    /// <summary>The agent, talking to the control plane through <paramref name="client"/>.</summary>
    public NodeAgent CreateAgent(TrcClient client, Action<string> log, bool stopInstancesOnShutdown) =>
        new(Options, client, Driver, node =>
        {
            if (DriverName == "fake")
            {
                return new FakeLauncher(Path.Combine(Options.DataDir, "instances"));
            }
            var network = new NodeNetwork(Options.Bridge, node.Prefix);
            network.EnsureBridgeAsync(CancellationToken.None).GetAwaiter().GetResult();
            return new VmLauncher(Options, Guest!, _images, client, () => node.Id, network, Cgroups);
        }, log)
        {
            StopInstancesOnShutdown = stopInstancesOnShutdown,
        };

    /// <inheritdoc />
    public void Dispose() => _images.Dispose();
}
