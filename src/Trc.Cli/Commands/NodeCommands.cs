using System.CommandLine;
using Trc.Cli.Remote;
using Trc.Core.Api;

namespace Trc.Cli.Commands;

/// <summary><c>trc nodes</c>: the run nodes (platform admin).</summary>
internal static class NodeCommands
{
    public static Command Create(CliConsole console)
    {
        var nodes = new Command("nodes", """
            Run nodes (platform admin): list, show, drain, undrain or disable them. A node is
            ready while its agent heartbeats within the lease (15 s by default), silent past
            it, and lost once the scheduler declared it so (its instances are then rescheduled
            on other nodes); draining and disabled are the operator's.

            Examples:
              trc nodes
              trc nodes show node-1
              trc nodes list --json
            """);
        List(nodes, console);
        var list = new Command("list", """
            List the nodes with status, overlay /64, memory, CPUs and instances.

            Example:
              trc nodes list
            """);
        List(list, console);
        nodes.Subcommands.Add(list);
        nodes.Subcommands.Add(Show(console));
        nodes.Subcommands.Add(SetState(console, "drain", "draining", """
            Drain a node: it takes no new instances, and each of its instances moves to another
            node (a replacement starts there and becomes healthy, then the one here stops).

            Example:
              trc nodes drain node-1 --reason "kernel upgrade"
            """));
        nodes.Subcommands.Add(SetState(console, "undrain", "active", """
            Make a drained or disabled node active again: it takes new instances (what moved
            away stays where it went).

            Example:
              trc nodes undrain node-1
            """));
        nodes.Subcommands.Add(SetState(console, "disable", "disabled", """
            Disable a node: it takes no instances, and its instances are rescheduled on other
            nodes at once (without waiting for replacements; use drain for that). Its agent is
            told to stop them.

            Example:
              trc nodes disable node-3 --reason "disk errors"
            """));
        return nodes;
    }

    private static void List(Command command, CliConsole console)
    {
        var target = Target.Add(command, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var nodes = await context.Client.ListNodesAsync(ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(nodes);
                return ExitCodes.Ok;
            }
            var table = new TextTable("NAME", "STATUS", "PREFIX", "MEMORY", "CPUS", "DRIVER", "INSTANCES", "LAST SEEN");
            foreach (var n in nodes.Items)
            {
                table.Add(n.Name, n.Status, n.Prefix, TextTable.Bytes(n.MemoryBytes), TextTable.Number(n.Cpus), $"{n.Driver}/{n.Acceleration}",
                    TextTable.Number(n.Instances), n.LastHeartbeat is { } seen ? TextTable.Time(seen) : null);
            }
            table.Write(console.Out);
            return ExitCodes.Ok;
        });
    }

    private static Command SetState(CliConsole console, string name, string state, string help)
    {
        var node = new Argument<string>("NODE") { Description = "The node's name or id." };
        var reason = new Option<string?>("--reason") { Description = "Why (recorded in the node's event).", HelpName = "TEXT" };
        var command = new Command(name, help);
        command.Arguments.Add(node);
        command.Options.Add(reason);
        var target = Target.Add(command, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var found = await FindAsync(context, context.Value(node)!, ct).ConfigureAwait(false);
            var view = await context.Client.SetNodeStateAsync(found.Id, state, context.Value(reason), ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(view);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine(TextTable.Clean($"Node {view.Name}: {view.Status} ({view.Instances} instance{(view.Instances == 1 ? "" : "s")} scheduled on it)."));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static async Task<NodeView> FindAsync(RemoteContext context, string wanted, CancellationToken ct) =>
        Guid.TryParse(wanted, out var id)
            ? await context.Client.GetNodeAsync(id, ct).ConfigureAwait(false)
            : (await context.Client.ListNodesAsync(ct).ConfigureAwait(false)).Items.FirstOrDefault(n => n.Name == wanted)
                ?? throw new CliFailure(ExitCodes.Invalid, $"no node named {TextTable.Clean(wanted)}; trc nodes lists them");

    private static Command Show(CliConsole console)
    {
        var node = new Argument<string>("NODE") { Description = "The node's name or id." };
        var command = new Command("show", """
            Show one node.

            Examples:
              trc nodes show node-1
              trc nodes show 0f8e2c1a-7d39-5b41-9a57-3c3f4e6d2b10 --json
            """);
        command.Arguments.Add(node);
        var target = Target.Add(command, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var found = await FindAsync(context, context.Value(node)!, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(found);
                return ExitCodes.Ok;
            }
            TextTable.WriteFields(console.Out,
                ("name", found.Name),
                ("id", found.Id.ToString("D")),
                ("status", found.Status + (found.StatusReason is { } why ? $" ({why})" : "")),
                ("last seen", found.LastHeartbeat is { } seen ? TextTable.Time(seen) : "never (by this server)"),
                ("prefix", found.Prefix),
                ("memory", $"{TextTable.Bytes(found.MemoryBytes)} offered, {TextTable.Bytes(found.AllocatableMemoryBytes)} allocatable, {TextTable.Bytes(found.UsedMemoryBytes)} used"),
                ("cpus", TextTable.Number(found.Cpus)),
                ("driver", $"{found.Driver} ({found.Acceleration})"),
                ("region", found.Region),
                ("agent", found.AgentVersion),
                ("instances", TextTable.Number(found.Instances)),
                ("registered", TextTable.Time(found.RegisteredAt)));
            return ExitCodes.Ok;
        });
        return command;
    }
}
