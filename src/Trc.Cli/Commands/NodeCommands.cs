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
            Run nodes (platform admin): list them (the default) or show one. A node is ready
            while its agent heartbeats within the lease (15 s by default), else silent; the
            status is as the server answering saw it.

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
            var wanted = context.Value(node)!;
            NodeView found;
            if (Guid.TryParse(wanted, out var id))
            {
                found = await context.Client.GetNodeAsync(id, ct).ConfigureAwait(false);
            }
            else
            {
                found = (await context.Client.ListNodesAsync(ct).ConfigureAwait(false)).Items.FirstOrDefault(n => n.Name == wanted)
                    ?? throw new CliFailure(ExitCodes.Invalid, $"no node named {TextTable.Clean(wanted)}; trc nodes lists them");
            }
            if (context.Json)
            {
                context.PrintJson(found);
                return ExitCodes.Ok;
            }
            TextTable.WriteFields(console.Out,
                ("name", found.Name),
                ("id", found.Id.ToString("D")),
                ("status", found.Status),
                ("last seen", found.LastHeartbeat is { } seen ? TextTable.Time(seen) : "never (by this server)"),
                ("prefix", found.Prefix),
                ("memory", TextTable.Bytes(found.MemoryBytes)),
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
