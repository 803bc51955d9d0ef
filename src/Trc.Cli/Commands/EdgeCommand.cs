using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Trc.Edge;
using Trc.Edge.Proxy;
using Trc.Edge.Routing;

namespace Trc.Cli.Commands;

/// <summary><c>trc edge</c>: the L4 ingress.</summary>
internal static class EdgeCommand
{
    public static Command Create(CliConsole console)
    {
        var routes = new Option<string>("--routes") { Description = "The routes file (TOML; see docs/edge.md). Read again when it changes or on SIGHUP.", Required = true, HelpName = "FILE" };
        var metrics = new Option<string?>("--metrics") { Description = "Serve Prometheus metrics at http://ADDRESS:PORT/metrics, like 127.0.0.1:9180. Default: off.", HelpName = "ADDRESS:PORT" };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Least level logged: Trace, Debug (every refused connection), Information (the default), Warning, Error.", DefaultValueFactory = _ => LogLevel.Information, HelpName = "LEVEL" };
        var json = new Option<bool>("--log-json") { Description = "Write logs as JSON lines (structured) instead of text." };
        var command = new Command("edge", """
            Run the L4 edge: accept TCP connections on the routes' addresses, route TLS by the SNI
            name of the ClientHello without terminating it (or raw TCP by port), optionally prepend
            a PROXY v2 header, and copy bytes both ways unchanged.

            Today the edge reads its routes from a file (standalone mode); following the control
            plane's change stream arrives with the node agent.

            Examples:
              trc edge --routes /etc/trc/edge-routes.toml
              trc edge --routes routes.toml --metrics 127.0.0.1:9180 --log-level Debug
            """);
        command.Options.Add(routes);
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
            try
            {
                host = await EdgeHost.StartAsync(new EdgeHostOptions { RoutesFile = Path.GetFullPath(parse.GetValue(routes)!, console.WorkingDirectory), Metrics = metricsEndpoint }, loggers, ct);
            }
            catch (RoutesFileException e)
            {
                console.Err.WriteLine($"trc edge: {e.Message}");
                return ExitCodes.Invalid;
            }
            catch (Exception e) when (e is EdgeListenException or System.Net.Sockets.SocketException)
            {
                console.Err.WriteLine($"trc edge: {e.Message}");
                return ExitCodes.IoError;
            }
            await using (host)
            {
                using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
                {
                    context.Cancel = true;
                    host.Reload();
                });
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
