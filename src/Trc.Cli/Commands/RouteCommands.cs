using System.CommandLine;
using System.Net;
using Trc.Client;
using Trc.Cli.Remote;
using Trc.Core.Api;

namespace Trc.Cli.Commands;

/// <summary><c>trc routes</c> and <c>trc ipv4</c>.</summary>
internal static class RouteCommands
{
    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return Routes(console);
        yield return Ipv4(console);
    }

    private static Command Routes(CliConsole console)
    {
        var routes = new Command("routes", """
            Routes of an env (a hostname and port on the edge, forwarded to a process's port):
            list them (the default), create one, delete one.

            Examples:
              trc routes --env prod
              trc routes create --env prod --hostname shop.example.com --backend-port 8443
              trc routes delete shop.example.com --env prod
            """);
        ListRoutes(routes, console);
        var list = new Command("list", """
            List the env's routes.

            Example:
              trc routes list --app shop --env prod
            """);
        ListRoutes(list, console);
        routes.Subcommands.Add(list);
        routes.Subcommands.Add(CreateRoute(console));
        routes.Subcommands.Add(DeleteRoute(console));
        return routes;
    }

    private static void ListRoutes(Command command, CliConsole console)
    {
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var routes = await context.Client.ListRoutesAsync(context.Org, context.App, context.Env, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(routes);
                return ExitCodes.Ok;
            }
            var table = new TextTable("HOSTNAME", "PORT", "PROTOCOL", "PROCESS", "BACKEND", "PROXY", "IPV4");
            foreach (var r in routes.Items)
            {
                table.Add(r.Hostname, TextTable.Number(r.ListenPort), r.Protocol, r.Process, TextTable.Number(r.BackendPort), r.ProxyProtocol, TextTable.YesNo(r.Ipv4Required));
            }
            table.Write(console.Out);
            return ExitCodes.Ok;
        });
    }

    private static Command CreateRoute(CliConsole console)
    {
        var hostname = new Option<string>("--hostname") { Description = "The fully qualified hostname, like shop.example.com or *.example.com.", Required = true, HelpName = "HOSTNAME" };
        var port = new Option<int?>("--port") { Description = "The edge's listen port. Default: 443.", HelpName = "PORT" };
        var protocol = new Option<string?>("--protocol") { Description = "tls_passthrough (routed by SNI, the default) or tcp_raw (routed by port alone).", HelpName = "PROTOCOL" };
        protocol.AcceptOnlyFromAmong("tls_passthrough", "tcp_raw");
        var process = new Option<string?>("--process") { Description = "The process receiving the connections. Default: web.", HelpName = "PROCESS" };
        var backendPort = new Option<int>("--backend-port") { Description = "The port the process listens on.", Required = true, HelpName = "PORT" };
        var proxy = new Option<string?>("--proxy-protocol") { Description = "off (the default) or v2: put a PROXY v2 header with the client's address in front of each connection.", HelpName = "MODE" };
        proxy.AcceptOnlyFromAmong("off", "v2");
        var expects = new Option<bool>("--backend-expects-proxy-protocol") { Description = "Confirm that the backend parses the PROXY v2 header (required with --proxy-protocol v2)." };
        var ipv4 = new Option<bool>("--ipv4-required") { Description = "Also serve the route on the env's dedicated IPv4 address (needs trc ipv4 enable)." };
        var move = new Option<bool>("--move") { Description = "Take the hostname from another env of the org (its routes for it there are removed)." };
        var command = new Command("create", """
            Bind a hostname and port to the env. A hostname belongs to one env at a time.

            Examples:
              trc routes create --env prod --hostname shop.example.com --backend-port 8443
              trc routes create --env prod --hostname db.example.com --port 5432 --protocol tcp_raw --backend-port 5432
              trc routes create --env prod --hostname shop.example.com --backend-port 8443 --move
            """);
        foreach (var option in new Option[] { hostname, port, protocol, process, backendPort, proxy, expects, ipv4, move })
        {
            command.Options.Add(option);
        }
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var request = new CreateRouteRequest(
                context.Value(hostname)!,
                context.Value(backendPort),
                context.Value(port),
                context.Value(protocol),
                context.Value(process),
                context.Value(proxy),
                context.Value(expects) ? true : null,
                context.Value(ipv4) ? true : null,
                context.Value(move) ? true : null);
            RouteView route;
            try
            {
                route = await context.Client.CreateRouteAsync(context.Org, context.App, context.Env, request, ct: ct).ConfigureAwait(false);
            }
            catch (TrcApiException e) when (e.StatusCode == HttpStatusCode.Conflict && e.Problem?.Field == "hostname" && !context.Value(move))
            {
                RemoteCommand.Report(console, e);
                console.Err.WriteLine("  to take the hostname from the env that holds it, run the same command with --move");
                return RemoteCommand.ExitCodeFor(e);
            }
            if (context.Json)
            {
                context.PrintJson(route);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine(TextTable.Clean($"Created route {route.Hostname}:{route.ListenPort} ({route.Protocol}) -> {route.Process}:{route.BackendPort} in {route.Org}/{route.App}/{route.Env}."));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command DeleteRoute(CliConsole console)
    {
        var hostname = new Argument<string>("HOSTNAME") { Description = "The route's hostname." };
        var port = new Option<int>("--port") { Description = "The route's listen port. Default: 443.", HelpName = "PORT", DefaultValueFactory = _ => 443 };
        var command = new Command("delete", """
            Remove a route; the hostname is released when the env has no other route for it.

            Example:
              trc routes delete shop.example.com --env prod
            """);
        command.Arguments.Add(hostname);
        command.Options.Add(port);
        var target = Target.Add(command, org: true, app: true, env: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            await context.Client.DeleteRouteAsync(context.Org, context.App, context.Env, context.Value(hostname)!, context.Value(port), ct: ct).ConfigureAwait(false);
            console.Out.WriteLine($"Deleted route {context.Value(hostname)}:{context.Value(port)}.");
            return ExitCodes.Ok;
        });
        return command;
    }

    // ---- IPv4 --------------------------------------------------------------------------------------

    private static Command Ipv4(CliConsole console)
    {
        var ipv4 = new Command("ipv4", """
            The env's IPv4 add-on (a dedicated address from the cluster's pool): show it
            (the default), enable it, disable it.

            Examples:
              trc ipv4 --env prod
              trc ipv4 enable --env prod
            """);
        ShowIpv4(ipv4, console);
        var show = new Command("show", """
            Show the env's dedicated IPv4 address and its ports (exit 1 when the add-on is off).

            Example:
              trc ipv4 show --env prod
            """);
        ShowIpv4(show, console);
        ipv4.Subcommands.Add(show);

        var enable = new Command("enable", """
            Turn the add-on on: the env gets an address from the pool (counted against the org's quota).

            Example:
              trc ipv4 enable --env prod
            """);
        var enableTarget = Target.Add(enable, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(enable, console, enableTarget, async (context, ct) =>
        {
            var address = await context.Client.EnableIpv4Async(context.Org, context.App, context.Env, ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(address);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine(TextTable.Clean($"Env {context.Env} has the IPv4 address {address.Address} (ports {string.Join(", ", address.Ports)})."));
            return ExitCodes.Ok;
        });
        ipv4.Subcommands.Add(enable);

        var disable = new Command("disable", """
            Turn the add-on off; the address returns to the pool. Routes that require IPv4 must go first.

            Example:
              trc ipv4 disable --env prod
            """);
        var disableTarget = Target.Add(disable, org: true, app: true, env: true);
        RemoteCommand.SetAction(disable, console, disableTarget, async (context, ct) =>
        {
            await context.Client.DisableIpv4Async(context.Org, context.App, context.Env, ct: ct).ConfigureAwait(false);
            console.Out.WriteLine($"Env {context.Env} no longer has a dedicated IPv4 address.");
            return ExitCodes.Ok;
        });
        ipv4.Subcommands.Add(disable);
        return ipv4;
    }

    private static void ShowIpv4(Command command, CliConsole console)
    {
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var address = await context.Client.GetIpv4Async(context.Org, context.App, context.Env, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(address);
                return ExitCodes.Ok;
            }
            TextTable.WriteFields(console.Out, ("address", address.Address), ("ports", string.Join(", ", address.Ports)));
            return ExitCodes.Ok;
        });
    }
}
