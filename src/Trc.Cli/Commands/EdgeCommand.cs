using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Trc.Cli.Remote;
using Trc.Client;
using Trc.Client.Events;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Edge;
using Trc.Edge.Proxy;
using Trc.Edge.Routing;

namespace Trc.Cli.Commands;

/// <summary><c>trc edge</c>: the L4 ingress.</summary>
internal static class EdgeCommand
{
    public static Command Create(CliConsole console)
    {
        var routes = new Option<string?>("--routes") { Description = "Standalone mode: the routes file (TOML; see docs/edge.md). Read again when it changes or on SIGHUP.", HelpName = "FILE" };
        var controlPlane = new Option<string?>("--control-plane") { Description = "Fed mode: the control plane's URL, like https://trc.internal:7070. The edge follows its route changes.", HelpName = "URL" };
        var tokenFile = new Option<string?>("--token-file") { Description = "Fed mode: a file holding the platform admin token (trc server writes one at first start).", HelpName = "FILE" };
        var listen = new Option<string[]>("--listen") { Description = "Fed mode: a public address of this edge; every route listens on each (repeat for several). Default: [::].", HelpName = "ADDRESS", AllowMultipleArgumentsPerToken = false };
        var portMap = new Option<string[]>("--port-map") { Description = "Fed mode: serve a public port on another local port, like 443=8443 where 443 may not be bound (repeatable).", HelpName = "PUBLIC=LOCAL" };
        var metrics = new Option<string?>("--metrics") { Description = "Serve Prometheus metrics at http://ADDRESS:PORT/metrics, like 127.0.0.1:9180. Default: off.", HelpName = "ADDRESS:PORT" };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Least level logged: Trace, Debug (every refused connection), Information (the default), Warning, Error.", DefaultValueFactory = _ => LogLevel.Information, HelpName = "LEVEL" };
        var json = new Option<bool>("--log-json") { Description = "Write logs as JSON lines (structured) instead of text." };
        var command = new Command("edge", """
            Run the L4 edge: accept TCP connections on the routes' addresses, route TLS by the SNI
            name of the ClientHello without terminating it (or raw TCP by port), optionally prepend
            a PROXY v2 header, and copy bytes both ways unchanged.

            The routes come from a file (standalone mode, --routes) or from the control plane
            (fed mode, --control-plane with --token-file): the edge takes every route, follows the
            change stream, and applies each change to new connections at once. While the control
            plane is unreachable the routes in force stay. A fed route's backends are the running
            instances of its process; with none, its connections are closed as unavailable.

            Examples:
              trc edge --routes /etc/trc/edge-routes.toml
              trc edge --routes routes.toml --metrics 127.0.0.1:9180 --log-level Debug
              trc edge --control-plane http://127.0.0.1:7070 --token-file /var/lib/trc/admin.token --listen ::1 --port-map 443=8443
            """);
        command.Options.Add(routes);
        command.Options.Add(controlPlane);
        command.Options.Add(tokenFile);
        command.Options.Add(listen);
        command.Options.Add(portMap);
        command.Options.Add(metrics);
        command.Options.Add(logLevel);
        command.Options.Add(json);
        command.SetAction(async (parse, ct) =>
        {
            InlineSocketCompletions();
            IPEndPoint? metricsEndpoint = null;
            if (parse.GetValue(metrics) is { } m)
            {
                if (!RoutesFile.TryParseEndpoint(m, out var endpoint, out var problem))
                {
                    console.Err.WriteLine($"trc edge: --metrics: {problem}");
                    return ExitCodes.Usage;
                }
                metricsEndpoint = endpoint;
            }
            var file = parse.GetValue(routes);
            var url = parse.GetValue(controlPlane);
            if ((file is null) == (url is null))
            {
                console.Err.WriteLine("trc edge: give --routes FILE (standalone) or --control-plane URL with --token-file FILE (fed), one of the two");
                return ExitCodes.Usage;
            }
            EdgeListenPlan? plan = null;
            string? token = null;
            if (file is null && !FedOptions(console, parse.GetValue(tokenFile), parse.GetValue(listen) ?? [], parse.GetValue(portMap) ?? [], out plan, out token, out var code))
            {
                return code;
            }
            if (file is not null && (parse.GetValue(tokenFile) is not null || parse.GetValue(listen) is { Length: > 0 } || parse.GetValue(portMap) is { Length: > 0 }))
            {
                console.Err.WriteLine("trc edge: --token-file, --listen and --port-map are for --control-plane; a routes file names its own listeners");
                return ExitCodes.Usage;
            }
            using var loggers = LoggerFactory.Create(b =>
            {
                b.SetMinimumLevel(parse.GetValue(logLevel));
                // Socket completions run on the event threads (below): a log line must never make one wait.
                b.Services.Configure<ConsoleLoggerOptions>(o => o.QueueFullMode = ConsoleLoggerQueueFullMode.DropWrite);
                if (parse.GetValue(json))
                {
                    b.AddJsonConsole();
                }
                else
                {
                    b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; o.UseUtcTimestamp = true; });
                }
            });
            EdgeHost host;
            TrcClient? client = null;
            try
            {
                if (file is not null)
                {
                    host = await EdgeHost.StartAsync(new EdgeHostOptions { RoutesFile = Path.GetFullPath(file, console.WorkingDirectory), Metrics = metricsEndpoint }, loggers, ct);
                }
                else
                {
                    Uri address;
                    try
                    {
                        address = TrcClient.ParseBaseAddress(url!);
                    }
                    catch (ArgumentException)
                    {
                        console.Err.WriteLine("trc edge: --control-plane: not an http:// or https:// URL");
                        return ExitCodes.Usage;
                    }
                    RemoteContext.WarnIfCleartext(console, address);
                    client = new TrcClient(address, token!);
                    var source = new ClientRouteSource(client);
                    // One read before starting, so a wrong URL or token is said now rather than logged forever.
                    EdgeRoutesView? initial = null;
                    try
                    {
                        initial = await source.SnapshotAsync(0, ct);
                    }
                    catch (TrcApiException e) when (e.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.NotFound)
                    {
                        console.Err.WriteLine($"trc edge: the control plane at {address} refused the token ({(int)e.StatusCode}): the edge needs the platform admin token");
                        return ExitCodes.NotAuthorized;
                    }
                    catch (TrcException e)
                    {
                        console.Err.WriteLine($"trc edge: warning: the control plane is not reachable yet ({e.Message}); starting with no routes and retrying");
                    }
                    host = await EdgeHost.StartAsync(new EdgeHostOptions { ControlPlane = source, InitialRoutes = initial, ListenPlan = plan!, Metrics = metricsEndpoint }, loggers, ct);
                }
            }
            catch (RoutesFileException e)
            {
                console.Err.WriteLine($"trc edge: {e.Message}");
                client?.Dispose();
                return ExitCodes.Invalid;
            }
            catch (Exception e) when (e is EdgeListenException or System.Net.Sockets.SocketException)
            {
                console.Err.WriteLine($"trc edge: {e.Message}");
                client?.Dispose();
                return ExitCodes.IoError;
            }
            using var clientScope = client;
            await using (host)
            {
                using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
                {
                    context.Cancel = true;
                    host.Reload();
                });
                if (host.Feed is not null)
                {
                    console.Out.WriteLine($"trc edge: following {url} (as of event {host.Feed.Position}: {host.Server.Table.Routes.Count} listener routes{(host.LastError is { } err ? $"; not applied: {err}" : "")})");
                }
                foreach (var route in host.Server.Table.Routes)
                {
                    console.Out.WriteLine($"trc edge: {route.Name}: {host.Server.BoundEndpoint(route.Listen)} -> {string.Join(", ", route.Backends)}{(route.ProxyV2 ? " (PROXY v2)" : "")}");
                }
                if (host.MetricsBound is { } bound)
                {
                    console.Out.WriteLine($"trc edge: metrics on http://{bound}/metrics");
                }
                try
                {
                    await Task.Delay(Timeout.Infinite, ct);
                }
                catch (OperationCanceledException)
                {
                    console.Out.WriteLine($"trc edge: stopping; open connections have {Grace(host).TotalSeconds:0} s to finish");
                }
                await host.StopAsync(Grace(host), CancellationToken.None);
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Reads the fed-mode options; false with the exit code when one is wrong (said on stderr).</summary>
    private static bool FedOptions(CliConsole console, string? tokenFile, string[] listen, string[] portMap, out EdgeListenPlan? plan, out string? token, out int code)
    {
        plan = null;
        token = null;
        code = ExitCodes.Usage;
        if (tokenFile is null)
        {
            console.Err.WriteLine("trc edge: --control-plane needs --token-file FILE (the platform admin token)");
            return false;
        }
        if (!TokenFile.TryRead(console, "edge", "--token-file", tokenFile, out var read, out code))
        {
            return false;
        }
        token = read;
        code = ExitCodes.Usage;
        var addresses = new List<IPAddress>();
        foreach (var text in listen)
        {
            if (!TryParseListenAddress(text, out var address))
            {
                console.Err.WriteLine($"trc edge: --listen \"{TextTable.Clean(text)}\": not an IP address (like :: or 192.0.2.10; the ports come from the routes)");
                return false;
            }
            addresses.Add(address);
        }
        var map = new Dictionary<int, int>();
        foreach (var text in portMap)
        {
            var parts = text.Split('=');
            if (parts.Length != 2 || !int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var from) || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var to)
                || from is < 1 or > 65535 || to is < 1 or > 65535)
            {
                console.Err.WriteLine($"trc edge: --port-map \"{TextTable.Clean(text)}\": expected PUBLIC=LOCAL with ports 1-65535, like 443=8443");
                return false;
            }
            if (!map.TryAdd(from, to))
            {
                console.Err.WriteLine($"trc edge: --port-map: port {from} is mapped twice");
                return false;
            }
        }
        plan = new EdgeListenPlan { Addresses = addresses.Count == 0 ? [IPAddress.IPv6Any] : addresses.Distinct().ToList(), PortMap = map };
        return true;
    }

    /// <summary>An edge address as <c>--listen</c> takes it: an IP address, IPv6 optionally in brackets, without a zone.</summary>
    internal static bool TryParseListenAddress(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPAddress? address)
    {
        var bare = text.StartsWith('[') && text.EndsWith(']') ? text[1..^1] : text;
        address = IPAddress.TryParse(bare, out var parsed) && !bare.Contains('%', StringComparison.Ordinal) ? parsed : null;
        return address is not null;
    }

    /// <summary>The drain timeout, capped below the CLI's 45 s limit on a stopping command.</summary>
    private static TimeSpan Grace(EdgeHost host) =>
        host.Server.Settings.DrainTimeout < TimeSpan.FromSeconds(40) ? host.Server.Settings.DrainTimeout : TimeSpan.FromSeconds(40);

    /// <summary>
    /// Runs socket completions on the runtime's epoll threads instead of handing each to the thread
    /// pool: for a proxy, whose every continuation is a short non-blocking step, this saves a thread
    /// hop per read and write (measured in bench/RESULTS.md). The runtime reads the variable once,
    /// when the first socket is used, so this must run before any; an operator's own value wins.
    /// </summary>
    private static void InlineSocketCompletions()
    {
        const string Name = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
        if (Environment.GetEnvironmentVariable(Name) is null)
        {
            Environment.SetEnvironmentVariable(Name, "1");
        }
    }
}
