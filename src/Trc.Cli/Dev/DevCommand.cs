using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Extensions.Logging;
using Trc.Agent.Host;
using Trc.Agent.Runtime.Qemu;
using Trc.Cli.Commands;
using Trc.Cli.Remote;
using Trc.Client;
using Trc.ControlPlane;
using Trc.Edge;
using Trc.Edge.Routing;
using Trc.Oci.Registry;

namespace Trc.Cli.Dev;

/// <summary>
/// <c>trc dev</c>: the whole platform on this machine in one process: the control plane on the
/// embedded SQLite store, one node agent running microVMs, one edge, and a local image registry
/// holding the example images. State lives in one directory (<see cref="DevPaths"/>); a second
/// start resumes where the first stopped.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class DevCommand
{
    /// <summary>The org trc dev makes for its CLI profile.</summary>
    public const string Org = "dev";

    /// <summary>The env the CLI profile defaults to.</summary>
    public const string Env = "prod";

    /// <summary>The local registry's default port (image references: <c>localhost:7081/NAME:TAG</c>).</summary>
    public const int RegistryPort = 7081;

    /// <summary>trc dev's overlay /48 ("dev" in its second and third groups); the node gets its first /64.</summary>
    public const string OverlayPrefix = "fd74:6465:7600::/48";

    /// <summary>Where a public port of 1024 and below is served when this process may not bind it: 10000 above.</summary>
    public const int HighPortOffset = 10_000;

    /// <summary>The port ranges routes may use in dev besides 443 and 80 (the tcp_raw example uses 7000).</summary>
    private static readonly (int First, int Last)[] DevPortRanges = [(7000, 7079), (8000, 8999)];

    /// <summary>The ports routes may use in dev besides 443 and 80: <see cref="DevPortRanges"/>.</summary>
    public static IReadOnlySet<int> DevPorts { get; } = DevPortRanges.SelectMany(r => Enumerable.Range(r.First, r.Last - r.First + 1)).ToHashSet();

    public static Command Create(CliConsole console)
    {
        var dataDir = new Option<string?>("--data-dir") { Description = "Where everything is kept (also TRC_DEV_DIR). Default: /var/lib/trc/dev (trc dev runs as root).", HelpName = "DIR" };
        var listen = new Option<string>("--listen") { Description = "The API's address.", DefaultValueFactory = _ => "http://127.0.0.1:7080", HelpName = "URL" };
        var edgeListen = new Option<string[]>("--edge-listen") { Description = "An address the edge listens on (repeat for several). Default: 127.0.0.1 and ::1, this machine only.", HelpName = "ADDRESS" };
        var registryPort = new Option<int>("--registry-port") { Description = "The local image registry's port on 127.0.0.1.", DefaultValueFactory = _ => RegistryPort, HelpName = "PORT" };
        var assets = new Option<string?>("--guest-assets") { Description = "Prebuilt guest assets (scripts/build-guest-assets --out DIR; also TRC_GUEST_ASSETS). Default: built into DATA/guest on first start.", HelpName = "DIR" };
        var accel = new Option<string>("--accel") { Description = "auto (probe KVM, fall back to TCG), kvm, or tcg.", DefaultValueFactory = _ => "auto", HelpName = "MODE" };
        accel.AcceptOnlyFromAmong("auto", "kvm", "tcg");
        var memory = new Option<string?>("--memory") { Description = "Memory offered to instances, like 8Gi. Default: physical memory minus 1Gi.", HelpName = "SIZE" };
        var command = new Command("dev", """
            Run the whole platform on this machine, in one process: the control plane (SQLite),
            one node agent running each instance in its own QEMU microVM, the edge (TLS by SNI,
            raw TCP by port) and a local image registry with the example images. Needs root
            (taps, a bridge, cgroups) and QEMU; scripts/dev installs what is missing and runs it.

            The first start builds the guest kernel assets and the example images (from this
            machine's busybox and openssl) and makes an org "dev" with a token the CLI finds by
            itself: in another terminal, trc commands act on this server without trc login.
            Everything is kept in one directory; a later start resumes where this one stopped.
            Ctrl-C stops the instances (SIGTERM, then a kill after 10 s) and everything else.

            Examples:
              sudo trc dev
              sudo trc dev --data-dir /var/tmp/my-trc-dev --accel tcg
            """);
        foreach (var option in new Option[] { dataDir, listen, edgeListen, registryPort, assets, accel, memory })
        {
            command.Options.Add(option);
        }
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                var settings = new DevSettings
                {
                    Directory = Path.GetFullPath(parse.GetValue(dataDir) ?? DevPaths.Directory(console.GetEnvironmentVariable), console.WorkingDirectory),
                    Listen = parse.GetValue(listen)!,
                    EdgeAddresses = ParseAddresses(parse.GetValue(edgeListen) ?? []),
                    RegistryPort = parse.GetValue(registryPort) is >= 1 and <= 65535 and var port ? port
                        : throw new DevSetupException($"--registry-port {parse.GetValue(registryPort)}: not a TCP port (1-65535)", ExitCodes.Usage),
                    GuestAssets = (parse.GetValue(assets) ?? console.GetEnvironmentVariable("TRC_GUEST_ASSETS")) is { Length: > 0 } given ? Path.GetFullPath(given, console.WorkingDirectory) : null,
                    Acceleration = parse.GetValue(accel) switch { "kvm" => QemuAcceleration.Kvm, "tcg" => QemuAcceleration.Tcg, _ => QemuAcceleration.Auto },
                    Memory = parse.GetValue(memory) is { } m
                        ? Trc.Core.Manifest.ByteSize.TryParse(m, out var bytes, out var error) ? bytes : throw new DevSetupException($"--memory {TextTable.Clean(m)}: {error}", ExitCodes.Usage)
                        : null,
                };
                return await RunAsync(console, settings, ct);
            }
            catch (DevSetupException e)
            {
                console.Err.WriteLine($"trc dev: {e.Message}");
                return e.ExitCode;
            }
        });
        return command;
    }

    private static IReadOnlyList<IPAddress> ParseAddresses(string[] texts)
    {
        if (texts.Length == 0)
        {
            return [IPAddress.Loopback, IPAddress.IPv6Loopback];
        }
        var list = new List<IPAddress>();
        foreach (var text in texts)
        {
            if (!EdgeCommand.TryParseListenAddress(text, out var address))
            {
                throw new DevSetupException($"--edge-listen \"{TextTable.Clean(text)}\": not an IP address (like 127.0.0.1 or ::; the ports come from the routes)", ExitCodes.Usage);
            }
            list.Add(address);
        }
        return list.Distinct().ToList();
    }

    private static async Task<int> RunAsync(CliConsole console, DevSettings settings, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        void Say(string line) => console.Out.WriteLine($"trc dev: {line}");
        Preflight();
        var dir = settings.Directory;
        if (Directory.Exists(dir) && LinuxFiles.Stat(dir) is { } owner && owner.Uid != LinuxFiles.EffectiveUser)
        {
            // Its owner would control the database, the images and the CLI profile.
            throw new DevSetupException($"{dir} belongs to uid {owner.Uid}, not to you: give trc dev a directory of its own (--data-dir)");
        }
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, (UnixFileMode)Convert.ToInt32("755", 8));
        // One trc dev per directory: a second would share the database, the agent's disks and the bridge.
        using var dirLock = LockDirectory(dir);
        Say($"state in {dir}{(File.Exists(Path.Combine(dir, "trc.db")) ? " (resuming)" : " (first start)")}");

        // 1. What the first start prepares: guest assets, example images.
        var guestDir = settings.GuestAssets ?? await GuestAssets.EnsureAsync(Path.Combine(dir, "guest"), Say, ct);
        var images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        await DevExamples.EnsureAsync(dir, images, Say, ct);

        // 2. The registry, then the control plane.
        await using var registry = await StartRegistryAsync(images, settings.RegistryPort, ct);
        var options = ServerOptionsFor(settings);
        ServerHost server;
        try
        {
            server = await ServerHost.StartAsync(options, ct);
        }
        catch (IOException e) when (e.InnerException is SocketException || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            throw new DevSetupException($"cannot listen on {settings.Listen}: {e.Message} (is another trc server or trc dev running? --listen picks another address)");
        }
        await using var serverScope = server;
        var adminToken = server.AdminToken ?? (await File.ReadAllTextAsync(server.AdminTokenFile, ct)).Trim();
        var nodeToken = server.NodeToken ?? (await File.ReadAllTextAsync(server.NodeTokenFile, ct)).Trim();
        using var admin = new TrcClient(server.Address, adminToken);
        var profile = await DevProfile.EnsureAsync(dir, server.Address, admin, console.GetEnvironmentVariable, ct);

        // 3. The agent.
        var agentOptions = new AgentOptions
        {
            NodeName = "dev",
            DataDir = Path.Combine(dir, "agent"),
            Bridge = "trcdev0",
            Region = "dev",
            MemoryBytes = settings.Memory,
        };
        var registryClient = new RegistryClient(new RegistryClientOptions());
        AgentWiring wiring;
        try
        {
            wiring = AgentWiring.Create(agentOptions, "qemu", settings.Acceleration, guestDir, registryClient, console.GetEnvironmentVariable);
        }
        catch (InstanceLaunchException e)
        {
            registryClient.Dispose();
            throw new DevSetupException(e.Message);
        }
        using var wired = wiring;
        using var nodeClient = new TrcClient(server.Address, nodeToken);
        var agent = wiring.CreateAgent(nodeClient, line => console.Err.WriteLine($"{DateTimeOffset.Now:HH:mm:ss} agent: {line}"), stopInstancesOnShutdown: true);
        using var agentStop = new CancellationTokenSource();
        var agentRun = Task.Run(() => agent.RunAsync(agentStop.Token), CancellationToken.None);
        var agentEndedByItself = false;
        try
        {
            await Task.WhenAny(agent.Registered, agentRun, Task.Delay(Timeout.Infinite, ct)).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            if (!agent.Registered.IsCompleted)
            {
                try
                {
                    await agentRun; // throws why: the driver cannot run here, or the control plane refused the node
                }
                catch (Exception e) when (e is InvalidOperationException or TrcException)
                {
                    throw new DevSetupException($"the agent cannot run: {e.Message}");
                }
                throw new DevSetupException("the agent stopped before registering");
            }
            var node = await agent.Registered;
            var fingerprint = await wiring.Driver.FingerprintAsync(ct);

            // 4. The edge.
            var plan = new EdgeListenPlan { Addresses = settings.EdgeAddresses, PortMap = PortMap(settings.EdgeAddresses) };
            using var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning).AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }));
            using var edgeClient = new TrcClient(server.Address, adminToken);
            var source = new ClientRouteSource(edgeClient);
            EdgeHost edge;
            try
            {
                edge = await EdgeHost.StartAsync(new EdgeHostOptions { ControlPlane = source, InitialRoutes = await source.SnapshotAsync(0, ct), ListenPlan = plan }, loggers, ct);
            }
            catch (Exception e) when (e is Trc.Edge.Proxy.EdgeListenException or SocketException)
            {
                throw new DevSetupException($"the edge cannot listen: {e.Message} (--edge-listen picks the addresses)");
            }
            await using var edgeScope = edge;

            // 5. Say what runs where.
            var addresses = string.Join(" and ", settings.EdgeAddresses.Select(a => a.ToString()));
            Say($"ready in {clock.Elapsed.TotalSeconds:0.0} s");
            console.Out.WriteLine($"  API       {server.Address}  (admin token: {server.AdminTokenFile})");
            console.Out.WriteLine($"  CLI       org \"{Org}\", env \"{Env}\": trc commands use {profile} without trc login");
            console.Out.WriteLine($"  images    localhost:{settings.RegistryPort}/hello:v1, hello:broken, echo:v1 (OCI layouts in {images}/NAME)");
            console.Out.WriteLine($"  edge      {addresses}: {PortLine(plan, 443)} (TLS by SNI), {PortLine(plan, 80)}, and the routes' own ports ({string.Join(", ", DevPortRanges.Select(r => $"{r.First}-{r.Last}"))})");
            console.Out.WriteLine($"  node      {node.Name}: {fingerprint.Driver} ({fingerprint.Acceleration}), instances in {node.Prefix} on bridge {agentOptions.Bridge}");
            console.Out.WriteLine($"  example   cd examples/hello && trc apps create hello && trc envs create {Env} --app hello && trc deploy --image localhost:{settings.RegistryPort}/hello:v1");
            console.Out.WriteLine("  Ctrl-C stops everything; instances get SIGTERM first.");

            // 6. Until Ctrl-C (or the agent fails).
            await Task.WhenAny(agentRun, Task.Delay(Timeout.Infinite, ct)).ConfigureAwait(false);
            if (agentRun.IsCompleted && !ct.IsCancellationRequested)
            {
                agentEndedByItself = true;
                console.Err.WriteLine("trc dev: the agent stopped; stopping everything");
            }
            Say("stopping: instances first (SIGTERM, then a kill after 10 s)");
            await StopAgentAsync();
            Say("instances stopped; stopping the edge and the control plane");
            await edge.StopAsync(TimeSpan.FromSeconds(3), CancellationToken.None);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Ctrl-C while starting.
            Say("interrupted while starting; stopping what started");
        }
        finally
        {
            // Whatever happened above, no VM outlives trc dev.
            await StopAgentAsync();
        }
        Say("stopped");
        return agentEndedByItself ? ExitCodes.Unavailable : ExitCodes.Ok;

        async Task StopAgentAsync()
        {
            if (agentRun.IsCompleted && agentStop.IsCancellationRequested)
            {
                return;
            }
            await agentStop.CancelAsync();
            try
            {
                await agentRun.WaitAsync(TimeSpan.FromSeconds(60), CancellationToken.None);
            }
            catch (OperationCanceledException)
            {
            }
#pragma warning disable CA1031 // Whatever ended the agent is said; stopping must go on.
            catch (Exception e)
#pragma warning restore CA1031
            {
                console.Err.WriteLine($"trc dev: agent: {e.Message}");
            }
        }

        void Preflight()
        {
            if (!Environment.IsPrivilegedProcess)
            {
                throw new DevSetupException("trc dev runs microVMs on taps and a bridge, which needs root: run it as root (sudo ./scripts/dev, or sudo -E trc dev)");
            }
            var missing = new List<string>();
            foreach (var (tool, package) in new[] { ("qemu-system-x86_64", "qemu-system-x86"), ("mkfs.ext4", "e2fsprogs"), ("ip", "iproute2"), ("busybox", "busybox-static"), ("openssl", "openssl") })
            {
                if (DevPaths.FindTool(tool) is null)
                {
                    missing.Add(package);
                }
            }
            if (missing.Count > 0)
            {
                throw new DevSetupException($"missing: {string.Join(", ", missing)}; install with: apt-get install {string.Join(' ', missing)} (sudo ./scripts/dev does it)");
            }
        }
    }

    private static FileStream LockDirectory(string dir)
    {
        try
        {
            // FileShare.None is an exclusive flock on Linux, released when the process ends.
            return new FileStream(Path.Combine(dir, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new DevSetupException($"another trc dev runs on {dir}: stop it first, or give this one --data-dir");
        }
    }

    private static string PortLine(EdgeListenPlan plan, int port) =>
        plan.Local(port) == port ? $"port {port}" : $"port {port} on {plan.Local(port)} (this process may not bind {port})";

    /// <summary>443 and 80 as they are when this process may bind them on the edge's addresses, else 10443 and 10080.</summary>
    internal static IReadOnlyDictionary<int, int> PortMap(IReadOnlyList<IPAddress> addresses)
    {
        var map = new Dictionary<int, int>();
        foreach (var port in new[] { 443, 80 })
        {
            foreach (var address in addresses)
            {
                if (!CanBind(address, port))
                {
                    map[port] = port + HighPortOffset;
                    break;
                }
            }
        }
        return map;
    }

    private static bool CanBind(IPAddress address, int port)
    {
        try
        {
            // No SO_REUSEADDR: on Linux .NET sets SO_REUSEPORT with it, and the probe would then
            // share a port another socket listens on (the edge binds without it).
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(address, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static async Task<DevRegistry> StartRegistryAsync(string images, int port, CancellationToken ct)
    {
        try
        {
            return await DevRegistry.StartAsync(images, new IPEndPoint(IPAddress.Loopback, port), ct);
        }
        catch (IOException e)
        {
            throw new DevSetupException($"the image registry cannot listen on 127.0.0.1:{port}: {e.Message} (--registry-port picks another)");
        }
    }

    private static ServerOptions ServerOptionsFor(DevSettings settings)
    {
        ServerOptions options;
        try
        {
            // No environment: TRC_DATABASE, TRC_LISTEN and the like are meant for a trc server
            // and must not point trc dev at another database. Its own flags say everything.
            options = ServerConfig.Load(null, new Dictionary<string, string?>(), new Dictionary<string, string?>
            {
                ["database"] = "sqlite:" + Path.Combine(settings.Directory, "trc.db"),
                ["listen"] = settings.Listen,
                ["data_dir"] = settings.Directory,
            }, settings.Directory);
        }
        catch (ServerConfigException e)
        {
            throw new DevSetupException(e.Message);
        }
        return options with
        {
            Policy = options.Policy with { AllowedPorts = DevPorts },
            // Not the cluster default (fd74:7263::/48): a trc agent or a test bed on the same
            // machine would route the same /64 to its own bridge.
            OverlayPrefix = Trc.Core.Domain.OverlayNetwork.Parse(OverlayPrefix),
            LogLevel = LogLevel.Warning,
        };
    }

    private sealed record DevSettings
    {
        public required string Directory { get; init; }

        public required string Listen { get; init; }

        public required IReadOnlyList<IPAddress> EdgeAddresses { get; init; }

        public required int RegistryPort { get; init; }

        public string? GuestAssets { get; init; }

        public QemuAcceleration Acceleration { get; init; }

        public long? Memory { get; init; }
    }
}

/// <summary>The guest kernel assets trc dev's VMs boot: built by the checkout's scripts/build-guest-assets (it rebuilds only what changed).</summary>
[SupportedOSPlatform("linux")]
internal static class GuestAssets
{
    /// <summary>Builds (or finds up to date) the assets in <paramref name="directory"/>; returns it.</summary>
    public static async Task<string> EnsureAsync(string directory, Action<string> say, CancellationToken ct)
    {
        var script = FindScript();
        if (script is null)
        {
            if (File.Exists(Path.Combine(directory, "vmlinux")) && File.Exists(Path.Combine(directory, "initramfs.cpio.gz")))
            {
                return directory;
            }
            throw new DevSetupException($"no guest assets in {directory}, and scripts/build-guest-assets is not next to this trc (run trc from its checkout, or build them there: scripts/build-guest-assets --out {directory})");
        }
        say($"guest kernel assets: {script} --out {directory} (rebuilt only when an input changed)");
        var psi = new ProcessStartInfo("bash") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { script, "--out", directory })
        {
            psi.ArgumentList.Add(a);
        }
        using var process = Process.Start(psi) ?? throw new DevSetupException("could not start bash");
        var lastLines = new Queue<string>();
        var stderr = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync(ct) is { } line)
            {
                say("  " + line);
                lastLines.Enqueue(line);
                if (lastLines.Count > 5)
                {
                    lastLines.Dequeue();
                }
            }
        }, ct);
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        using var kill = ct.Register(() =>
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        });
        await process.WaitForExitAsync(ct);
        await stderr;
        await stdout;
        if (process.ExitCode != 0)
        {
            throw new DevSetupException($"building the guest assets failed (exit {process.ExitCode.ToString(CultureInfo.InvariantCulture)}): {string.Join(" / ", lastLines)}");
        }
        return directory;
    }

    /// <summary>scripts/build-guest-assets of the checkout this trc was built in, found upwards from the binary.</summary>
    private static string? FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "scripts", "build-guest-assets");
            if (File.Exists(candidate) && File.Exists(Path.Combine(dir.FullName, "guest", "init", "main.c")))
            {
                return candidate;
            }
        }
        return null;
    }
}

/// <summary>The CLI profile trc dev writes: the org "dev", an owner token for it, and the default env.</summary>
[SupportedOSPlatform("linux")]
internal static class DevProfile
{
    /// <summary>
    /// Makes the org and the profile on the first start; later starts keep them (the URL is
    /// updated when <c>--listen</c> changed). Returns the profile's path.
    /// </summary>
    public static async Task<string> EnsureAsync(string directory, Uri server, TrcClient admin, Func<string, string?> environment, CancellationToken ct)
    {
        var path = Path.Combine(directory, DevPaths.ProfileName);
        var url = server.ToString().TrimEnd('/');
        CliConfig? existing = null;
        if (File.Exists(path))
        {
            try
            {
                existing = CliConfig.Load(new CliConsole(Stream.Null, Stream.Null, TextWriter.Null), path);
            }
            catch (CliFailure e)
            {
                throw new DevSetupException($"the CLI profile is unusable ({e.Message}); delete it and trc dev makes a new one");
            }
        }
        if (existing is { Token: not null })
        {
            if (existing.Url != url)
            {
                (existing with { Url = url }).Save(path);
            }
            HandTo(path, environment);
            return path;
        }
        var orgs = await admin.ListOrgsAsync(ct).ConfigureAwait(false);
        if (orgs.Items.All(o => o.Name != DevCommand.Org))
        {
            await admin.CreateOrgAsync(DevCommand.Org, ct: ct).ConfigureAwait(false);
        }
        var token = await admin.CreateTokenAsync(DevCommand.Org, "trc-dev-cli-" + DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), "owner", ct: ct).ConfigureAwait(false);
        new CliConfig(url, token.Token, DevCommand.Org, DevCommand.Env).Save(path);
        HandTo(path, environment);
        return path;
    }

    /// <summary>Started with sudo: the profile belongs to the user who ran sudo, so their trc finds it.</summary>
    private static void HandTo(string path, Func<string, string?> environment)
    {
        if (environment("SUDO_UID") is { } uidText && int.TryParse(uidText, NumberStyles.None, CultureInfo.InvariantCulture, out var uid) && uid != 0
            && int.TryParse(environment("SUDO_GID") ?? "", NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
        {
            _ = lchown(path, uid, gid);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int lchown(string path, int owner, int group);
}
