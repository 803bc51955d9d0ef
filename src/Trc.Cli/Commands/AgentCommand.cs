using System.CommandLine;
using System.Net;
using System.Runtime.Versioning;
using Trc.Agent.Host;
using Trc.Agent.Network;
using Trc.Agent.Runtime;
using Trc.Agent.Runtime.Fake;
using Trc.Agent.Runtime.Firecracker;
using Trc.Agent.Runtime.Qemu;
using Trc.Cli.Remote;
using Trc.Client;
using Trc.Core.Manifest;
using Trc.Oci.Registry;

namespace Trc.Cli.Commands;

/// <summary><c>trc agent</c>: the node agent.</summary>
[SupportedOSPlatform("linux")]
internal static class AgentCommand
{
    public static Command Create(CliConsole console)
    {
        var server = new Option<string?>("--server") { Description = "The control plane's URL (default: $TRC_SERVER).", HelpName = "URL" };
        var tokenFile = new Option<string?>("--token-file") { Description = "A file holding the shared node token (trc server writes node-token beside admin-token at first start). Default: $TRC_NODE_TOKEN_FILE.", HelpName = "FILE" };
        var name = new Option<string?>("--name") { Description = "This node's name (default: the host name).", HelpName = "NAME" };
        var dataDir = new Option<string?>("--data-dir") { Description = "The agent's state: instances' disks and sockets, the image cache. Default: $TRC_AGENT_DIR or /var/lib/trc/agent.", HelpName = "DIR" };
        var assets = new Option<string?>("--guest-assets") { Description = "The guest kernel and initramfs from scripts/build-guest-assets. Default: $TRC_GUEST_ASSETS or /var/lib/trc/guest.", HelpName = "DIR" };
        var driver = new Option<string>("--driver") { Description = "How instances run: qemu (microvm; KVM when it works, else TCG), firecracker (needs KVM), or fake (no VMs; for trying the control plane).", DefaultValueFactory = _ => "qemu", HelpName = "DRIVER" };
        driver.AcceptOnlyFromAmong("qemu", "firecracker", "fake");
        var accel = new Option<string>("--accel") { Description = "qemu: auto (probe KVM, fall back to TCG), kvm, or tcg.", DefaultValueFactory = _ => "auto", HelpName = "MODE" };
        accel.AcceptOnlyFromAmong("auto", "kvm", "tcg");
        var bridge = new Option<string>("--bridge") { Description = "The bridge instances attach to; it gets the node's /64 (host = PREFIX::1).", DefaultValueFactory = _ => "trc0", HelpName = "NAME" };
        var region = new Option<string?>("--region") { Description = "This node's region label (TRC_REGION in instances).", HelpName = "NAME" };
        var memory = new Option<string?>("--memory") { Description = "Memory offered to instances, like 16Gi (default: physical memory minus 1Gi).", HelpName = "SIZE" };
        var grace = new Option<int>("--stop-grace") { Description = "Seconds between SIGTERM and the kill when an instance is stopped.", DefaultValueFactory = _ => 10, HelpName = "SECONDS" };
        var registryAuth = new Option<string?>("--registry-auth") { Description = "Registry credentials (Docker config.json format). Default: $REGISTRY_AUTH_FILE.", HelpName = "FILE" };
        var insecure = new Option<string[]>("--insecure-registry") { Description = "A registry host:port reached over plain HTTP (repeatable; for loopback test registries).", HelpName = "HOST:PORT" };
        var stopOnExit = new Option<bool>("--stop-instances-on-exit") { Description = "Stop every instance when the agent exits (default: leave them running; the next agent adopts them)." };
        var command = new Command("agent", """
            Run the node agent: register this node with the control plane, follow the instances
            it should run, and run each in its own microVM (root disk built from the release
            image, secrets on a config disk, one IPv6 address on the node's bridge). Reports
            instance states, ships logs, checks health, restarts exited instances with backoff,
            and adopts the VMs an earlier agent left running.

            Needs root (taps, bridge, cgroups), the guest assets (scripts/build-guest-assets),
            qemu-system-x86 for --driver qemu, and the shared node token.

            Examples:
              trc agent --server http://10.0.0.1:7070 --token-file /var/lib/trc/server/node-token
              trc agent --server http://127.0.0.1:7070 --token-file node-token --data-dir /tmp/agent --guest-assets .artifacts/guest --accel tcg
            """);
        foreach (var option in new Option[] { server, tokenFile, name, dataDir, assets, driver, accel, bridge, region, memory, grace, registryAuth, insecure, stopOnExit })
        {
            command.Options.Add(option);
        }
        command.SetAction(async (parse, ct) =>
        {
            var url = parse.GetValue(server) ?? console.GetEnvironmentVariable("TRC_SERVER");
            if (string.IsNullOrEmpty(url))
            {
                console.Err.WriteLine("trc agent: give --server URL (or set TRC_SERVER)");
                return ExitCodes.Usage;
            }
            Uri address;
            try
            {
                address = TrcClient.ParseBaseAddress(url);
            }
            catch (ArgumentException)
            {
                console.Err.WriteLine("trc agent: --server: not an http:// or https:// URL");
                return ExitCodes.Usage;
            }
            var tokenPath = parse.GetValue(tokenFile) ?? console.GetEnvironmentVariable("TRC_NODE_TOKEN_FILE");
            if (string.IsNullOrEmpty(tokenPath))
            {
                console.Err.WriteLine("trc agent: give --token-file FILE (the shared node token; trc server writes node-token at first start)");
                return ExitCodes.Usage;
            }
            if (!TokenFile.TryRead(console, "agent", "--token-file", tokenPath, out var token, out var code))
            {
                return code;
            }
            long? offered = null;
            if (parse.GetValue(memory) is { } m)
            {
                if (!ByteSize.TryParse(m, out var bytes, out var error))
                {
                    console.Err.WriteLine($"trc agent: --memory {TextTable.Clean(m)}: {error}");
                    return ExitCodes.Usage;
                }
                offered = bytes;
            }
            var data = Path.GetFullPath(parse.GetValue(dataDir) ?? console.GetEnvironmentVariable("TRC_AGENT_DIR") ?? "/var/lib/trc/agent", console.WorkingDirectory);
            var assetsDir = Path.GetFullPath(parse.GetValue(assets) ?? console.GetEnvironmentVariable("TRC_GUEST_ASSETS") ?? "/var/lib/trc/guest", console.WorkingDirectory);
            var driverName = parse.GetValue(driver)!;
            var options = new AgentOptions
            {
                NodeName = parse.GetValue(name) ?? Dns.GetHostName(),
                DataDir = data,
                Bridge = parse.GetValue(bridge)!,
                Region = parse.GetValue(region),
                MemoryBytes = offered,
                StopGrace = TimeSpan.FromSeconds(Math.Max(0, parse.GetValue(grace))),
            };
            var credentials = RegistryCredentialStore.Empty;
            var authFile = parse.GetValue(registryAuth) ?? console.GetEnvironmentVariable("REGISTRY_AUTH_FILE");
            if (!string.IsNullOrEmpty(authFile))
            {
                credentials = RegistryCredentialStore.Load(Path.GetFullPath(authFile, console.WorkingDirectory));
            }
            var registry = new RegistryClient(new RegistryClientOptions { Credentials = credentials, InsecureRegistries = parse.GetValue(insecure) ?? [] });
            AgentWiring wiring;
            try
            {
                wiring = AgentWiring.Create(options, driverName, parse.GetValue(accel) switch { "kvm" => QemuAcceleration.Kvm, "tcg" => QemuAcceleration.Tcg, _ => QemuAcceleration.Auto },
                    assetsDir, registry, console.GetEnvironmentVariable);
            }
            catch (InstanceLaunchException e)
            {
                registry.Dispose();
                console.Err.WriteLine($"trc agent: {e.Message}");
                return ExitCodes.IoError;
            }
            using var wired = wiring;
            using var client = new TrcClient(address, token);
            RemoteContext.WarnIfCleartext(console, address);
            var log = (string line) => console.Err.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss} agent: {line}");
            var agent = wiring.CreateAgent(client, log, parse.GetValue(stopOnExit));
            try
            {
                await agent.RunAsync(ct);
            }
            catch (TrcApiException e) when (e.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                console.Err.WriteLine($"trc agent: the control plane at {address} refused the node token ({(int)e.StatusCode})");
                return ExitCodes.NotAuthorized;
            }
            catch (InvalidOperationException e)
            {
                console.Err.WriteLine($"trc agent: {e.Message}");
                return ExitCodes.Unavailable;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }
            return ExitCodes.Ok;
        });
        return command;
    }
}
