using System.CommandLine;
using Trc.Cli.Commands;

namespace Trc.Cli;

/// <summary>The <c>trc</c> command tree. Tests call <see cref="Run"/> with their own streams.</summary>
public static class TrcCli
{
    /// <summary>Builds the command tree bound to <paramref name="console"/>.</summary>
    public static RootCommand Build(CliConsole console)
    {
        var root = new RootCommand("""
            trc: a self-hostable application platform. Each app instance runs in its own microVM,
            behind an L4 edge that routes TLS by SNI without terminating it.
            """);
        root.Subcommands.Add(ServerCommand.Create(console));
        root.Subcommands.Add(EdgeCommand.Create(console));
        if (OperatingSystem.IsLinux())
        {
            // Layer unpacking and ext4 disks need Linux (lchown, mkfs.ext4); so does running them.
            root.Subcommands.Add(ImageCommands.Create(console));
            root.Subcommands.Add(AgentCommand.Create(console));
            root.Subcommands.Add(Dev.DevCommand.Create(console));
        }
        root.Subcommands.Add(TomlCommands.Create(console));
        foreach (var command in ManifestCommands.Create(console))
        {
            root.Subcommands.Add(command);
        }
        root.Subcommands.Add(SecretsCommands.Create(console));
        foreach (var command in LoginCommands.Create(console).Concat(OrgCommands.Create(console)).Concat(AppCommands.Create(console))
            .Concat(DeployCommands.Create(console)).Concat(RolloutCommands.Create(console)).Concat(RouteCommands.Create(console)))
        {
            root.Subcommands.Add(command);
        }
        root.Subcommands.Add(VolumeCommands.Create(console));
        root.Subcommands.Add(EventCommands.Create(console));
        root.Subcommands.Add(InstanceCommands.Create(console));
        root.Subcommands.Add(LogCommands.Create(console));
        root.Subcommands.Add(NodeCommands.Create(console));
        return root;
    }

    /// <summary>Parses and runs a command line; returns the process exit code.</summary>
    public static int Run(string[] args, CliConsole console)
    {
        var root = Build(console);
        var parse = root.Parse(args);
        // Ctrl+C or SIGTERM cancels the command; servers (trc server, trc edge) then drain open
        // work, so the process is not killed after the library's default 2 s.
        var config = new InvocationConfiguration { Output = console.Out, Error = console.Err, ProcessTerminationTimeout = TimeSpan.FromSeconds(45) };
        if (parse.Errors.Count > 0)
        {
            // Redacted: a mistyped command line may hold a token or a secret value.
            return Remote.ParseErrors.Print(console, parse, args);
        }
        return parse.Invoke(config);
    }

    /// <summary>
    /// Parses and runs a command line until it ends or <paramref name="ct"/> is cancelled (as
    /// Ctrl+C does for <see cref="Run"/>); returns the process exit code.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken ct)
    {
        var parse = Build(console).Parse(args);
        if (parse.Errors.Count > 0)
        {
            // Redacted: a mistyped command line may hold a token or a secret value.
            return Remote.ParseErrors.Print(console, parse, args);
        }
        return await parse.InvokeAsync(new InvocationConfiguration { Output = console.Out, Error = console.Err, ProcessTerminationTimeout = null }, ct).ConfigureAwait(false);
    }
}
