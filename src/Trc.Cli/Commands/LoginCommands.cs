using System.CommandLine;
using System.Text;
using Trc.Cli.Remote;
using Trc.Client;

namespace Trc.Cli.Commands;

/// <summary><c>trc login</c> and <c>trc whoami</c>.</summary>
internal static class LoginCommands
{
    /// <summary>A token is about 80 characters; anything much longer on stdin is not one.</summary>
    private const int MaxTokenBytes = 4096;

    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return Login(console);
        yield return WhoAmI(console);
    }

    private static Command Login(CliConsole console)
    {
        var url = Target.NotEmpty(new Option<string?>("--url") { Description = "The server, like https://trc.example.com. Default: TRC_URL, else the saved one.", HelpName = "URL" });
        var token = new Option<string?>("--token")
        {
            Description = "The API token. Default: TRC_TOKEN, else one line read from stdin (better: a flag lands in your shell history).",
            HelpName = "TOKEN",
        };
        var org = Target.NotEmpty(new Option<string?>("--org") { Description = "The default org. Default: the token's own org.", HelpName = "ORG" });
        var env = Target.NotEmpty(new Option<string?>("--env") { Description = "A default env (like prod) for commands that take --env.", HelpName = "ENV" });
        var command = new Command("login", """
            Check a token with the server (whoami) and save the server URL, the token and a
            default org in $XDG_CONFIG_HOME/trc/config.toml (else ~/.config/trc/config.toml),
            a file created readable by you only (mode 0600). TRC_URL, TRC_TOKEN, TRC_ORG and
            TRC_ENV override the saved values in every command.

            Examples:
              trc login --url https://trc.example.com < token.txt
              echo "$TRC_DEPLOY_TOKEN" | trc login --url https://trc.example.com --env prod
            """);
        foreach (var option in new[] { url, token, org, env })
        {
            command.Options.Add(option);
        }
        command.SetAction((parse, ct) =>
        {
            var context = new RemoteContext(console, parse, Target.Add(new Command("unused")));
            return RemoteCommand.RunAsync(console, async () =>
            {
                var address = parse.GetValue(url) ?? context.Variable("TRC_URL") ?? context.Config.Url
                    ?? throw new CliFailure(ExitCodes.Usage, "which server? Pass --url URL (like https://trc.example.com) or set TRC_URL");
                var secret = parse.GetValue(token) ?? context.Variable("TRC_TOKEN") ?? ReadToken(console);
                Uri server;
                try
                {
                    server = TrcClient.ParseBaseAddress(address);
                }
                catch (ArgumentException e)
                {
                    throw new CliFailure(ExitCodes.Invalid, $"\"{RemoteContext.Printable(address)}\": {e.Message.Split(" (Parameter", 2)[0]}");
                }
                RemoteContext.WarnIfCleartext(console, server);
                TrcClient client;
                try
                {
                    client = new TrcClient(server, secret);
                }
                catch (ArgumentException)
                {
                    throw new CliFailure(ExitCodes.Invalid, "that is not a token: a trc token is printable ASCII without spaces (trc_...)");
                }
                using (client)
                {
                    var me = await client.WhoAmIAsync(ct).ConfigureAwait(false);
                    var wanted = parse.GetValue(org);
                    if (wanted is not null && me.Org is not null && wanted != me.Org)
                    {
                        throw new CliFailure(ExitCodes.Invalid, $"this token belongs to org {TextTable.Clean(me.Org)}, not {RemoteContext.Printable(wanted)}");
                    }
                    var defaultOrg = wanted ?? me.Org;
                    if (defaultOrg is not null && me.Org is null)
                    {
                        await client.GetOrgAsync(defaultOrg, ct).ConfigureAwait(false);
                    }
                    var path = context.ConfigPath;
                    new CliConfig(client.BaseAddress.ToString().TrimEnd('/'), secret, defaultOrg, parse.GetValue(env)).Save(path);
                    console.Out.WriteLine(TextTable.Clean($"Logged in to {client.BaseAddress.ToString().TrimEnd('/')} as {me.TokenName} (role {me.Role}{(defaultOrg is null ? "" : $", org {defaultOrg}")})."));
                    console.Out.WriteLine($"Saved to {path} (readable by you only).");
                    return ExitCodes.Ok;
                }
            }, ct);
        });
        return command;
    }

    private static string ReadToken(CliConsole console)
    {
        if (console.ReadHiddenLine is { } readHidden)
        {
            console.Err.Write("API token (not shown as you type): ");
            var typed = readHidden()?.Trim();
            console.Err.WriteLine();
            return typed is { Length: > 0 } ? typed : throw new CliFailure(ExitCodes.Usage, "no token: paste it at the prompt, pipe it in, or set TRC_TOKEN");
        }
        var bytes = new List<byte>();
        int b;
        while ((b = console.In.ReadByte()) >= 0 && b != '\n')
        {
            if (bytes.Count >= MaxTokenBytes)
            {
                throw new CliFailure(ExitCodes.Invalid, "stdin holds more than a token: give the token alone, on one line");
            }
            bytes.Add((byte)b);
        }
        var token = Encoding.UTF8.GetString(bytes.ToArray()).Trim();
        return token.Length > 0 ? token : throw new CliFailure(ExitCodes.Usage, "no token: pass it on stdin, in TRC_TOKEN, or with --token");
    }

    private static Command WhoAmI(CliConsole console)
    {
        var command = new Command("whoami", """
            Show which token the CLI uses, its role and org, and the server it talks to.

            Example:
              trc whoami
            """);
        var target = Target.Add(command, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var me = await context.Client.WhoAmIAsync(ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(me);
                return ExitCodes.Ok;
            }
            TextTable.WriteFields(console.Out,
                ("server", context.Client.BaseAddress.ToString().TrimEnd('/')),
                ("token", $"{me.TokenName} ({me.TokenId})"),
                ("role", me.Role),
                ("org", me.Org ?? "(none: platform admin)"));
            return ExitCodes.Ok;
        });
        return command;
    }
}
