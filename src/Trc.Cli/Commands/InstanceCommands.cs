using System.CommandLine;
using Trc.Cli.Remote;
using Trc.Core.Api;

namespace Trc.Cli.Commands;

/// <summary><c>trc instances</c> (alias <c>trc ps</c>): where an env's instances run and how they are.</summary>
internal static class InstanceCommands
{
    public static Command Create(CliConsole console)
    {
        var app = new Argument<string?>("APP") { Description = "The app (default: --app, TRC_APP, or app in ./trc.toml).", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("instances", """
            The env's instances: process, release, state as the node reports it, node and
            address. An instance asked to stop (its release was replaced) shows "stopping"
            until it has stopped; then it is no longer listed. With no ready node the list is
            empty, and trc logs says what the instances wait for.

            Examples:
              trc instances shop --env prod
              trc ps --env prod
              trc ps --json | jq '.items[].state'
            """);
        command.Aliases.Add("ps");
        command.Arguments.Add(app);
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var instances = await context.Client.ListInstancesAsync(context.Org, context.Value(app) ?? context.App, context.Env, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(instances);
                return ExitCodes.Ok;
            }
            var table = new TextTable("ID", "PROCESS", "RELEASE", "STATE", "NODE", "ADDRESS", "RESTARTS", "SINCE");
            foreach (var i in instances.Items)
            {
                table.Add(Short(i.Id), i.Process, TextTable.Number(i.Release), State(i), i.Node, i.Address, TextTable.Number(i.Restarts), TextTable.Time(i.UpdatedAt));
            }
            table.Write(console.Out);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The first 8 hex digits of an instance id (what trc logs prints; --instance takes it too).</summary>
    public static string Short(Guid id) => id == Guid.Empty ? "-" : id.ToString("N")[..8];

    private static string State(InstanceView i)
    {
        var state = i.ExitCode is { } code ? $"{i.State} ({code})" : i.State;
        return i.StopRequested ? state + ", stopping" : state;
    }
}
