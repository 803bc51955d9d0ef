using System.CommandLine;
using Trc.Cli.Remote;

namespace Trc.Cli.Commands;

/// <summary><c>trc apps</c> and <c>trc envs</c>.</summary>
internal static class AppCommands
{
    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return Apps(console);
        yield return Envs(console);
    }

    private static Command Apps(CliConsole console)
    {
        var apps = new Command("apps", """
            Apps of an org: list them (the default) or create one.

            Examples:
              trc apps
              trc apps create shop
            """);
        ListApps(apps, console);
        var list = new Command("list", """
            List the org's apps.

            Example:
              trc apps list --org acme --json
            """);
        ListApps(list, console);
        apps.Subcommands.Add(list);

        var name = new Argument<string>("NAME") { Description = "The app's name (as in the manifest's app = \"...\")." };
        var create = new Command("create", """
            Create an app.

            Example:
              trc apps create shop
            """);
        create.Arguments.Add(name);
        var target = Target.Add(create, org: true, json: true);
        RemoteCommand.SetAction(create, console, target, async (context, ct) =>
        {
            var app = await context.Client.CreateAppAsync(context.Org, context.Value(name)!, ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(app);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine($"Created app {TextTable.Clean(app.Name)} in org {TextTable.Clean(app.Org)}.");
            console.Err.WriteLine($"Next: trc envs create prod --app {TextTable.Clean(app.Name)}");
            return ExitCodes.Ok;
        });
        apps.Subcommands.Add(create);
        return apps;
    }

    private static void ListApps(Command command, CliConsole console)
    {
        var target = Target.Add(command, org: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var apps = await context.Client.ListAppsAsync(context.Org, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(apps);
                return ExitCodes.Ok;
            }
            var table = new TextTable("NAME", "CREATED");
            foreach (var a in apps.Items)
            {
                table.Add(a.Name, TextTable.Time(a.CreatedAt));
            }
            table.Write(console.Out);
            return ExitCodes.Ok;
        });
    }

    private static Command Envs(CliConsole console)
    {
        var envs = new Command("envs", """
            Envs of an app (prod, staging, ...): list them (the default) or create one.

            Examples:
              trc envs --app shop
              trc envs create prod --app shop
            """);
        ListEnvs(envs, console);
        var list = new Command("list", """
            List the app's envs with their deployed release, secrets version and IPv4 address.

            Example:
              trc envs list --app shop
            """);
        ListEnvs(list, console);
        envs.Subcommands.Add(list);

        var name = new Argument<string>("NAME") { Description = "The env's name, like prod or staging." };
        var create = new Command("create", """
            Create an env of an app.

            Example:
              trc envs create prod --app shop
            """);
        create.Arguments.Add(name);
        var target = Target.Add(create, org: true, app: true, json: true);
        RemoteCommand.SetAction(create, console, target, async (context, ct) =>
        {
            var env = await context.Client.CreateEnvAsync(context.Org, context.App, context.Value(name)!, ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(env);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine($"Created env {TextTable.Clean(env.Name)} of app {TextTable.Clean(env.App)}.");
            console.Err.WriteLine($"Next: trc deploy --env {TextTable.Clean(env.Name)} --image REPO@sha256:...");
            return ExitCodes.Ok;
        });
        envs.Subcommands.Add(create);
        return envs;
    }

    private static void ListEnvs(Command command, CliConsole console)
    {
        var target = Target.Add(command, org: true, app: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var envs = await context.Client.ListEnvsAsync(context.Org, context.App, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(envs);
                return ExitCodes.Ok;
            }
            var table = new TextTable("NAME", "RELEASE", "SERVING", "ROLLOUT", "SECRETS", "IPV4", "CREATED");
            foreach (var e in envs.Items)
            {
                table.Add(e.Name, e.DeployedRelease == 0 ? "-" : TextTable.Number(e.DeployedRelease), e.ActiveRelease == 0 ? "-" : TextTable.Number(e.ActiveRelease),
                    e.Rollout, TextTable.Number(e.SecretsVersion), e.Ipv4Address, TextTable.Time(e.CreatedAt));
            }
            table.Write(console.Out);
            return ExitCodes.Ok;
        });
    }
}
