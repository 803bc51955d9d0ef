using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using Trc.Agent.Host;
using Trc.Agent.Network;
using Trc.Agent.Runtime;
using Trc.Agent.Runtime.Qemu;
using Trc.Client;
using Trc.Client.Events;
using Trc.Client.Logs;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Oci.Build;
using Trc.Oci.Pull;
using Trc.Oci.Registry;
using Trc.Testing;
using Trc.Testing.Guest;
using Trc.Testing.Registry;

namespace Trc.Agent.Tests.EndToEnd;

/// <summary>
/// The whole single-node path for real: a trc server (SQLite), a docker registry on loopback
/// holding a busybox image, the guest assets, and a node agent in this process running QEMU (TCG)
/// microVMs on a bridge of its own. Apps are deployed through the API as users do.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class AgentBed : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "trc-e2e-" + Guid.NewGuid().ToString("N")[..8]);
    private TestControlPlane? _server;
    private LocalRegistry? _registry;
    private CancellationTokenSource? _agentStop;
    private Task? _agentRun;
    private readonly StringBuilder _agentLog = new();

    public string? SkipReason { get; private set; }

    /// <summary>How long the instances before a rollout's switch keep serving before they are asked to stop.</summary>
    public static TimeSpan Drain { get; } = TimeSpan.FromSeconds(4);

    /// <summary>The control plane (its address and admin token, for an edge that follows it).</summary>
    public TestControlPlane Server => _server!;

    public TrcClient Admin { get; private set; } = null!;

    public TrcClient NodeClient { get; private set; } = null!;

    public string Image { get; private set; } = "";

    public NodeAgent Agent { get; private set; } = null!;

    public NodeNetwork Network { get; private set; } = null!;

    public QemuDriver Driver { get; private set; } = null!;

    public string Bridge { get; } = "trcb" + Guid.NewGuid().ToString("N")[..8];

    public string DataDir => Path.Combine(_dir, "agent");

    public string AgentLog
    {
        get
        {
            lock (_agentLog)
            {
                return _agentLog.ToString();
            }
        }
    }

    public const string Org = "e2e";

    public async Task InitializeAsync()
    {
        SkipReason = GuestAssets.SkipReason;
        if (SkipReason is not null)
        {
            return;
        }
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var ct = cts.Token;
        Directory.CreateDirectory(_dir);
        var assetsTask = GuestAssets.EnsureBuiltAsync(ct);
        _registry = await LocalRegistry.StartAsync(RegistryAuth.Anonymous, ct);
        // Rollouts at test speed: the scheduler passes every 500 ms when nothing wakes it (that is
        // what ends a drain), a rollout has 2 minutes to pass its health gate under TCG, and the
        // instances before a switch keep serving for the drain (the edge moves in that time).
        _server = await TestControlPlane.StartAsync(configure: o =>
            TestControlPlane.WithScheduler(o, o.NodeLease, TimeSpan.FromMilliseconds(500), TimeSpan.FromMinutes(2), Drain));
        Admin = new TrcClient(_server.Address, _server.AdminToken);
        NodeClient = new TrcClient(_server.Address, _server.Host.NodeToken!);
        await Admin.CreateOrgAsync(Org, ct: ct);

        // The app image: busybox plus the test scripts, pushed to the registry and pinned.
        var root = await BusyboxRoot.CreateAsync(Path.Combine(_dir, "rootfs"), ct);
        foreach (var (name, script) in Scripts)
        {
            root.WriteFile("app/" + name, script, "755");
        }
        var layout = Path.Combine(_dir, "layout");
        DirectoryImageBuilder.Build(root.Directory, layout, "v1", new DirectoryImageOptions
        {
            Entrypoint = ["/bin/sh", "/app/web.sh"],
            Env = ["PATH=/bin", "IMAGE_VAR=from-image"],
        }, ct);
        await ImageTools.SkopeoCopyAsync($"oci:{layout}:v1", _registry.Reference("e2e/busybox", "v1"), null, null, all: false, ct, format: "oci");
        using (var registryClient = new RegistryClient(new RegistryClientOptions { InsecureRegistries = [_registry.Host] }))
        {
            var pinned = await ImagePuller.PinAsync(ImageSource.Parse($"{_registry.Host}/e2e/busybox:v1", registryClient), ct);
            Image = $"{_registry.Host}/e2e/busybox@{pinned.Digest}";
        }
        var assets = await assetsTask;
        await StartAgentAsync(assets, ct);
    }

    private GuestAssetPaths? _assets;

    private async Task StartAgentAsync(GuestAssetPaths assets, CancellationToken ct)
    {
        _assets = assets;
        var options = new AgentOptions
        {
            NodeName = "e2e-node",
            DataDir = DataDir,
            Bridge = Bridge,
            MemoryBytes = 8L << 30,
            StopGrace = TimeSpan.FromSeconds(3),
            HeartbeatInterval = TimeSpan.FromSeconds(1),
            ResyncInterval = TimeSpan.FromSeconds(5),
            Restart = new RestartPolicy { InitialDelay = TimeSpan.FromMilliseconds(500), MaxDelay = TimeSpan.FromSeconds(2) },
        };
        var cgroups = new Cgroups(parent: "trc-" + Bridge);
        var guest = GuestBootFiles.Locate(assets.Directory, "qemu");
        Driver = new QemuDriver(new QemuOptions { Acceleration = QemuAcceleration.Tcg, TscProbe = guest.Init }, cgroups);
        var registry = new RegistryClient(new RegistryClientOptions { InsecureRegistries = [_registry!.Host] });
        var images = new InstanceImages(Path.Combine(DataDir, "images"), registry);
        Agent = new NodeAgent(options, NodeClient, Driver, node =>
        {
            Network = new NodeNetwork(Bridge, node.Prefix);
            Network.EnsureBridgeAsync(CancellationToken.None).GetAwaiter().GetResult();
            return new VmLauncher(options, guest, images, NodeClient, () => node.Id, Network, cgroups);
        }, line =>
        {
            lock (_agentLog)
            {
                _agentLog.AppendLine($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {line}");
            }
        });
        _agentStop = new CancellationTokenSource();
        _agentRun = Task.Run(() => Agent.RunAsync(_agentStop.Token), CancellationToken.None);
        await Agent.Registered.WaitAsync(TimeSpan.FromMinutes(1), ct);
    }

    /// <summary>Stops the agent (its VMs keep running) and starts a new one on the same data directory.</summary>
    public async Task RestartAgentAsync(CancellationToken ct)
    {
        await _agentStop!.CancelAsync();
        await _agentRun!;
        await StartAgentAsync(_assets!, ct);
    }

    /// <summary>Creates an app with env prod and deploys the busybox image running <paramref name="script"/>.</summary>
    public async Task<ReleaseView> DeployAsync(string app, string script, string memory = "128Mi", string? extra = null, IReadOnlyDictionary<string, byte[]>? secrets = null, CancellationToken ct = default)
    {
        try
        {
            await Admin.CreateAppAsync(Org, app, ct: ct);
            await Admin.CreateEnvAsync(Org, app, "prod", ct: ct);
        }
        catch (TrcApiException e) when (e.StatusCode == System.Net.HttpStatusCode.Conflict)
        {
        }
        if (secrets is not null)
        {
            await Admin.SetSecretsAsync(Org, app, "prod", secrets, ct: ct);
        }
        var manifest = $"""
            app = "{app}"

            [processes.web]
            command = ["/bin/sh", "/app/{script}"]
            ports = [8080]
            memory = "{memory}"
            {extra}
            """;
        return await Admin.DeployAsync(Org, app, "prod", new DeployRequest(Image, manifest), ct: ct);
    }

    /// <summary>Waits until some instance of the app's release reaches one of the states; returns it.</summary>
    public async Task<InstanceView> WaitForStateAsync(string app, int release, TimeSpan timeout, params string[] states)
    {
        var deadline = Stopwatch.StartNew();
        InstanceView? last = null;
        while (deadline.Elapsed < timeout)
        {
            var instances = await Admin.ListInstancesAsync(Org, app, "prod");
            last = instances.Items.FirstOrDefault(i => i.Release == release && states.Contains(i.State));
            if (last is not null)
            {
                return last;
            }
            last = instances.Items.FirstOrDefault(i => i.Release == release);
            await Task.Delay(250);
        }
        throw new TimeoutException($"{app} release {release} did not reach {string.Join('|', states)} within {timeout.TotalSeconds} s; last: {last}\n{AgentLog}");
    }

    /// <summary>Waits until the instance reported one of the states (from the event log: the instance list hides stopped ones).</summary>
    public async Task<InstanceStateChanged> WaitForInstanceStateAsync(Guid instance, TimeSpan timeout, params string[] states)
    {
        var deadline = Stopwatch.StartNew();
        IReadOnlyList<InstanceStateChanged> seen = [];
        while (deadline.Elapsed < timeout)
        {
            seen = await StatesOfAsync(instance);
            if (seen.FirstOrDefault(s => states.Contains(s.State)) is { } hit)
            {
                return hit;
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"instance {instance} did not report {string.Join('|', states)} within {timeout.TotalSeconds} s; it reported: {string.Join(", ", seen.Select(s => s.State))}\n{AgentLog}");
    }

    /// <summary>Every state an instance reported, in order.</summary>
    public async Task<IReadOnlyList<InstanceStateChanged>> StatesOfAsync(Guid instance)
    {
        var page = await Admin.GetEventsAsync(new EventQuery(Types: [EventNames.InstanceStateChanged], Limit: 1000));
        return page.Events.Where(e => e.AggregateId == instance)
            .Select(e => EventJson.Deserialize<InstanceStateChanged>(e.Payload.GetRawText())).ToList();
    }

    /// <summary>Waits until the app's logs hold a line containing <paramref name="text"/>; returns every line so far.</summary>
    public async Task<IReadOnlyList<LogEntryView>> WaitForLogAsync(string app, string text, TimeSpan timeout, Guid? instance = null)
    {
        var deadline = Stopwatch.StartNew();
        IReadOnlyList<LogEntryView> lines = [];
        while (deadline.Elapsed < timeout)
        {
            lines = (await Admin.GetLogsAsync(Org, app, "prod", new LogQuery(Instance: instance, Limit: 5000))).Lines;
            if (lines.Any(l => l.Line.Contains(text, StringComparison.Ordinal)))
            {
                return lines;
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"no log line of {app} contains '{text}' within {timeout.TotalSeconds} s; lines:\n{string.Join('\n', lines.Select(l => $"{l.Stream}: {l.Line}"))}\n{AgentLog}");
    }

    /// <summary>
    /// Reads what a TCP server at the instance's address sends first. The test app serves one
    /// connection per busybox <c>nc -l</c> (the health check takes turns with us), so a refused or
    /// reset connection is tried again a few times.
    /// </summary>
    public static async Task<string> ReadBannerAsync(string address, int port, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var client = new TcpClient(AddressFamily.InterNetworkV6);
                await client.ConnectAsync(System.Net.IPAddress.Parse(address), port, ct);
                using var reader = new StreamReader(client.GetStream());
                var line = await reader.ReadLineAsync(ct);
                if (!string.IsNullOrEmpty(line) || attempt >= 10)
                {
                    return line ?? "";
                }
            }
            catch (Exception e) when ((e is IOException or SocketException) && attempt < 10)
            {
            }
            await Task.Delay(200, ct);
        }
    }

    public async Task DisposeAsync()
    {
        if (_agentStop is not null)
        {
            // Stop every instance: nothing may stay running after the tests.
            var vms = await Driver.RecoverAsync(Path.Combine(DataDir, "instances"), CancellationToken.None);
            await _agentStop.CancelAsync();
            try
            {
                await _agentRun!;
            }
            catch (Exception)
            {
            }
            foreach (var vm in await Driver.RecoverAsync(Path.Combine(DataDir, "instances"), CancellationToken.None))
            {
                await vm.KillAsync(CancellationToken.None);
                await vm.DisposeAsync();
            }
            foreach (var vm in vms)
            {
                await vm.DisposeAsync();
            }
            if (Network is not null)
            {
                foreach (var tap in Directory.EnumerateDirectories("/sys/class/net").Select(Path.GetFileName))
                {
                    if (tap is not null && Directory.Exists($"/sys/class/net/{Bridge}/brif/{tap}"))
                    {
                        await HostProcess.RunAsync("ip", ["link", "del", tap], TimeSpan.FromSeconds(10), CancellationToken.None);
                    }
                }
                await Network.DeleteBridgeAsync(CancellationToken.None);
            }
            foreach (var dir in new[] { "memory", "cpu" }.Select(c => $"/sys/fs/cgroup/{c}/trc-{Bridge}"))
            {
                if (Directory.Exists(dir))
                {
                    foreach (var child in Directory.EnumerateDirectories(dir))
                    {
                        try { Directory.Delete(child); } catch (IOException) { }
                    }
                    try { Directory.Delete(dir); } catch (IOException) { }
                }
            }
        }
        Admin?.Dispose();
        NodeClient?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public static IReadOnlyDictionary<string, string> Scripts { get; } = new Dictionary<string, string>
    {
        ["web.sh"] = """
            #!/bin/sh
            echo "env TRC_APP=$TRC_APP TRC_ENV=$TRC_ENV TRC_PROCESS=$TRC_PROCESS TRC_RELEASE_ID=$TRC_RELEASE_ID TRC_INSTANCE_ID=$TRC_INSTANCE_ID IMAGE_VAR=$IMAGE_VAR"
            if [ -f /run/secrets/platform.env ]; then echo "secrets $(stat -c '%a %u %g' /run/secrets/platform.env)"; fi
            echo "cmdline $(cat /proc/cmdline)"
            echo written > /written && echo "overlay $(cat /written)"
            echo "uid $(id -u)"
            echo "to stderr" >&2
            trap 'echo "got TERM"; exit 0' TERM
            while true; do echo "hello from $TRC_INSTANCE_ID" | nc -l -p 8080; done &
            wait

            """,
        // A server for many clients at once: each connection gets one line naming the release, from
        // a fresh answer.sh (busybox nc -ll forks per connection). TERM ends nc, and the app with it.
        ["serve.sh"] = """
            #!/bin/sh
            echo "serving release-$TRC_RELEASE_ID"
            exec nc -ll -p 8080 -e /app/answer.sh

            """,
        ["answer.sh"] = """
            #!/bin/sh
            echo "release-$TRC_RELEASE_ID"

            """,
        ["exit.sh"] = """
            #!/bin/sh
            echo "exiting with 7"
            exit 7

            """,
        ["oom.sh"] = """
            #!/bin/sh
            echo "allocating"
            exec tail /dev/zero
            echo "survived"

            """,
        ["stubborn.sh"] = """
            #!/bin/sh
            trap '' TERM
            echo "ignoring TERM"
            while true; do sleep 1; done

            """,
    };
}
