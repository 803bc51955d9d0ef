using System.CommandLine;
using Trc.Cli.Remote;
using Trc.Core.Api;

namespace Trc.Cli.Commands;

/// <summary><c>trc volumes</c>.</summary>
internal static class VolumeCommands
{
    public static Command Create(CliConsole console)
    {
        var volumes = new Command("volumes", """
            Persistent volumes of an env: list them (the default), declare one, remove one.
            trc deploy declares the volumes its manifest lists.

            Examples:
              trc volumes --env prod
              trc volumes create data --size 10Gi --env prod
              trc volumes delete data --env prod
            """);
        List(volumes, console);
        var list = new Command("list", """
            List the env's volumes.

            Example:
              trc volumes list --app shop --env prod
            """);
        List(list, console);
        volumes.Subcommands.Add(list);

        var name = new Argument<string>("NAME") { Description = "The volume's name; the guest mounts it at /mnt/volumes/NAME." };
        var size = new Option<string>("--size") { Description = "Its size, like 10Gi.", Required = true, HelpName = "SIZE" };
        var process = new Option<string?>("--process") { Description = "The process it attaches to. Default: web.", HelpName = "PROCESS" };
        var noBackup = new Option<bool>("--no-backup") { Description = "Leave it out of the daily backups." };
        var create = new Command("create", """
            Declare a volume of a process.

            Example:
              trc volumes create data --size 10Gi --process web --env prod
            """);
        create.Arguments.Add(name);
        create.Options.Add(size);
        create.Options.Add(process);
        create.Options.Add(noBackup);
        var createTarget = Target.Add(create, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(create, console, createTarget, async (context, ct) =>
        {
            var volume = await context.Client.CreateVolumeAsync(context.Org, context.App, context.Env,
                new CreateVolumeRequest(context.Value(name)!, context.Value(size)!, context.Value(process), context.Value(noBackup) ? false : null), ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(volume);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine(TextTable.Clean($"Declared volume {volume.Name} ({TextTable.Bytes(volume.SizeBytes)}, process {volume.Process}, mounted at {volume.MountPath})."));
            return ExitCodes.Ok;
        });
        volumes.Subcommands.Add(create);

        var deleteName = new Argument<string>("NAME") { Description = "The volume's name." };
        var delete = new Command("delete", """
            Remove a volume declaration (refused while the deployed release uses it).

            Example:
              trc volumes delete data --env prod
            """);
        delete.Arguments.Add(deleteName);
        var deleteTarget = Target.Add(delete, org: true, app: true, env: true);
        RemoteCommand.SetAction(delete, console, deleteTarget, async (context, ct) =>
        {
            await context.Client.DeleteVolumeAsync(context.Org, context.App, context.Env, context.Value(deleteName)!, ct: ct).ConfigureAwait(false);
            console.Out.WriteLine($"Removed volume {context.Value(deleteName)}.");
            return ExitCodes.Ok;
        });
        volumes.Subcommands.Add(delete);
        return volumes;
    }

    private static void List(Command command, CliConsole console)
    {
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var volumes = await context.Client.ListVolumesAsync(context.Org, context.App, context.Env, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(volumes);
                return ExitCodes.Ok;
            }
            var table = new TextTable("NAME", "SIZE", "PROCESS", "BACKUP", "MOUNT");
            foreach (var v in volumes.Items)
            {
                table.Add(v.Name, TextTable.Bytes(v.SizeBytes), v.Process, TextTable.YesNo(v.BackupEnabled), v.MountPath);
            }
            table.Write(console.Out);
            return ExitCodes.Ok;
        });
    }
}
