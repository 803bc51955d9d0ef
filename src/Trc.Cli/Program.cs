using Trc.Cli;

return TrcCli.Run(args, CliConsole.FromProcess());
