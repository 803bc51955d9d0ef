using System.CommandLine;
using Trc.Cli.Remote;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Core.Manifest;

namespace Trc.Cli.Commands;

/// <summary><c>trc orgs</c>, <c>trc quotas</c> and <c>trc tokens</c>.</summary>
internal static class OrgCommands
{
    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return Orgs(console);
        yield return Quotas(console);
        yield return Tokens(console);
    }

    // ---- orgs --------------------------------------------------------------------------------------

    private static Command Orgs(CliConsole console)
    {
        var orgs = new Command("orgs", """
            Orgs: list them (the default), create one (platform admin), or show one.

            Examples:
              trc orgs
              trc orgs create acme
              trc orgs show acme
            """);
        ListOrgs(orgs, console);
        var list = new Command("list", """
            List the orgs the token can see, with usage against quotas.

            Example:
              trc orgs list --json
            """);
        ListOrgs(list, console);
        orgs.Subcommands.Add(list);
        orgs.Subcommands.Add(CreateOrg(console));
        orgs.Subcommands.Add(ShowOrg(console));
        return orgs;
    }

    private static void ListOrgs(Command command, CliConsole console)
    {
        var target = Target.Add(command, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var orgs = await context.Client.ListOrgsAsync(ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(orgs);
                return ExitCodes.Ok;
            }
            var table = new TextTable("NAME", "MEMORY", "INSTANCES", "ROUTES", "IPV4", "CREATED");
            foreach (var o in orgs.Items)
            {
                table.Add(o.Name,
                    $"{TextTable.Bytes(o.Usage.MemoryBytes)}/{TextTable.Bytes(o.Quotas.MemoryBytes)}",
                    $"{o.Usage.Instances}/{o.Quotas.Instances}",
                    $"{o.Usage.Routes}/{o.Quotas.Routes}",
                    $"{o.Usage.Ipv4Addresses}/{o.Quotas.Ipv4Addresses}",
                    TextTable.Time(o.CreatedAt));
            }
            table.Write(console.Out);
            return ExitCodes.Ok;
        });
    }

    private static Command CreateOrg(CliConsole console)
    {
        var name = new Argument<string>("NAME") { Description = "The org's name: lower-case letters, digits and '-'." };
        var command = new Command("create", """
            Create an org (platform admin). Without quota options the cluster's default quotas
            apply; with them, give all four.

            Examples:
              trc orgs create acme
              trc orgs create acme --memory 64Gi --instances 50 --routes 20 --ipv4 2
            """);
        command.Arguments.Add(name);
        var quotas = QuotaOptions.Add(command);
        var target = Target.Add(command, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var given = quotas.Read(context);
            Quotas? wanted = null;
            if (given.Any)
            {
                wanted = given.Complete ?? throw new CliFailure(ExitCodes.Usage, "give all four of --memory, --instances, --routes and --ipv4, or none for the cluster's defaults");
            }
            var org = await context.Client.CreateOrgAsync(context.Value(name)!, wanted, ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(org);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine($"Created org {TextTable.Clean(org.Name)}.");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command ShowOrg(CliConsole console)
    {
        var name = new Argument<string?>("NAME") { Description = "The org (default: --org, TRC_ORG or the saved one).", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("show", """
            Show an org: its id, quotas and usage.

            Example:
              trc orgs show acme
            """);
        command.Arguments.Add(name);
        var target = Target.Add(command, org: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var org = await context.Client.GetOrgAsync(context.Value(name) ?? context.Org, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(org);
                return ExitCodes.Ok;
            }
            TextTable.WriteFields(console.Out,
                ("name", org.Name),
                ("id", org.Id.ToString()),
                ("created", TextTable.Time(org.CreatedAt)));
            console.Out.WriteLine();
            WriteQuotas(console, org.Quotas, org.Usage);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static void WriteQuotas(CliConsole console, Quotas quotas, Usage usage) =>
        new TextTable("RESOURCE", "USED", "QUOTA")
            .Add("memory", TextTable.Bytes(usage.MemoryBytes), TextTable.Bytes(quotas.MemoryBytes))
            .Add("instances", TextTable.Number(usage.Instances), TextTable.Number(quotas.Instances))
            .Add("routes", TextTable.Number(usage.Routes), TextTable.Number(quotas.Routes))
            .Add("ipv4", TextTable.Number(usage.Ipv4Addresses), TextTable.Number(quotas.Ipv4Addresses))
            .Write(console.Out);

    // ---- quotas ------------------------------------------------------------------------------------

    private static Command Quotas(CliConsole console)
    {
        var quotas = new Command("quotas", """
            An org's quotas and usage: show them (the default), or set them (platform admin).

            Examples:
              trc quotas
              trc quotas set --org acme --instances 20
            """);
        ShowQuotas(quotas, console);
        var show = new Command("show", """
            Show the org's quotas and what it uses.

            Example:
              trc quotas show --org acme
            """);
        ShowQuotas(show, console);
        quotas.Subcommands.Add(show);

        var set = new Command("set", """
            Set the org's quotas (platform admin). Quotas not given keep their value.

            Example:
              trc quotas set --org acme --memory 64Gi --instances 50 --routes 20 --ipv4 2
            """);
        var options = QuotaOptions.Add(set);
        var target = Target.Add(set, org: true, json: true);
        RemoteCommand.SetAction(set, console, target, async (context, ct) =>
        {
            var given = options.Read(context);
            if (!given.Any)
            {
                throw new CliFailure(ExitCodes.Usage, "nothing to set: give --memory, --instances, --routes or --ipv4");
            }
            var current = await context.Client.GetQuotasAsync(context.Org, ct).ConfigureAwait(false);
            var wanted = new Quotas(
                given.Memory ?? current.Quotas.MemoryBytes,
                given.Instances ?? current.Quotas.Instances,
                given.Routes ?? current.Quotas.Routes,
                given.Ipv4 ?? current.Quotas.Ipv4Addresses);
            var updated = await context.Client.SetQuotasAsync(context.Org, wanted, ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(updated);
                return ExitCodes.Ok;
            }
            WriteQuotas(console, updated.Quotas, updated.Usage);
            return ExitCodes.Ok;
        });
        quotas.Subcommands.Add(set);
        return quotas;
    }

    private static void ShowQuotas(Command command, CliConsole console)
    {
        var target = Target.Add(command, org: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var quotas = await context.Client.GetQuotasAsync(context.Org, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(quotas);
                return ExitCodes.Ok;
            }
            WriteQuotas(console, quotas.Quotas, quotas.Usage);
            return ExitCodes.Ok;
        });
    }

    /// <summary>--memory, --instances, --routes, --ipv4.</summary>
    private sealed class QuotaOptions
    {
        private Option<string?> _memory = null!;
        private Option<int?> _instances = null!;
        private Option<int?> _routes = null!;
        private Option<int?> _ipv4 = null!;

        public static QuotaOptions Add(Command command)
        {
            var options = new QuotaOptions
            {
                _memory = new Option<string?>("--memory") { Description = "Total memory of all instances, like 64Gi.", HelpName = "SIZE" },
                _instances = new Option<int?>("--instances") { Description = "Most instances.", HelpName = "N" },
                _routes = new Option<int?>("--routes") { Description = "Most public routes.", HelpName = "N" },
                _ipv4 = new Option<int?>("--ipv4") { Description = "Most dedicated IPv4 addresses.", HelpName = "N" },
            };
            command.Options.Add(options._memory);
            command.Options.Add(options._instances);
            command.Options.Add(options._routes);
            command.Options.Add(options._ipv4);
            return options;
        }

        public Given Read(RemoteContext context)
        {
            long? memory = null;
            if (context.Value(_memory) is { } text)
            {
                memory = ByteSize.TryParse(text, out var bytes, out var error) ? bytes : throw new CliFailure(ExitCodes.Invalid, $"--memory: {error}");
            }
            return new Given(memory, context.Value(_instances), context.Value(_routes), context.Value(_ipv4));
        }
    }

    private sealed record Given(long? Memory, int? Instances, int? Routes, int? Ipv4)
    {
        public bool Any => Memory is not null || Instances is not null || Routes is not null || Ipv4 is not null;

        public Quotas? Complete => Memory is { } m && Instances is { } i && Routes is { } r && Ipv4 is { } a ? new Quotas(m, i, r, a) : null;
    }

    // ---- tokens ------------------------------------------------------------------------------------

    private static Command Tokens(CliConsole console)
    {
        var tokens = new Command("tokens", """
            API tokens of an org (owners): list them (the default), create one, revoke one.

            Examples:
              trc tokens
              trc tokens create ci --role deployer
              trc tokens revoke 3f2b6c1e-0d4f-4a51-9a56-2d0c8f4b7e21
            """);
        ListTokens(tokens, console);
        var list = new Command("list", """
            List the org's tokens (never their secrets).

            Example:
              trc tokens list --org acme
            """);
        ListTokens(list, console);
        tokens.Subcommands.Add(list);
        tokens.Subcommands.Add(CreateToken(console));
        tokens.Subcommands.Add(RevokeToken(console));
        return tokens;
    }

    private static void ListTokens(Command command, CliConsole console)
    {
        var target = Target.Add(command, org: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var tokens = await context.Client.ListTokensAsync(context.Org, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(tokens);
                return ExitCodes.Ok;
            }
            var table = new TextTable("ID", "NAME", "ROLE", "REVOKED", "CREATED");
            foreach (var t in tokens.Items)
            {
                table.Add(t.Id.ToString(), t.Name, t.Role, TextTable.YesNo(t.Revoked), TextTable.Time(t.CreatedAt));
            }
            table.Write(console.Out);
            return ExitCodes.Ok;
        });
    }

    private static Command CreateToken(CliConsole console)
    {
        var name = new Argument<string>("NAME") { Description = "A name for the token, like ci or alice-laptop." };
        var role = new Option<string>("--role") { Description = "viewer (reads), deployer (deploys, routes, secrets, volumes) or owner (everything, tokens too).", Required = true, HelpName = "ROLE" };
        role.AcceptOnlyFromAmong(Roles.OrgRoles.ToArray());
        var command = new Command("create", """
            Create a token and print it on stdout. The server keeps only a hash: this is the
            only time the token is shown, so store it at once (the notice goes to stderr).

            Examples:
              trc tokens create ci --role deployer
              trc tokens create ci --role deployer > ci.token
            """);
        command.Arguments.Add(name);
        command.Options.Add(role);
        var target = Target.Add(command, org: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var created = await context.Client.CreateTokenAsync(context.Org, context.Value(name)!, context.Value(role)!, ct: ct).ConfigureAwait(false);
            console.Err.WriteLine($"Created token {TextTable.Clean(created.Name)} ({TextTable.Clean(created.Role)}) in org {TextTable.Clean(context.Org)}, id {created.Id}.");
            console.Err.WriteLine("This is the only time the token is shown; store it now (it cannot be shown again):");
            if (context.Json)
            {
                context.PrintJson(created);
            }
            else
            {
                console.Out.WriteLine(TextTable.Clean(created.Token));
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command RevokeToken(CliConsole console)
    {
        var id = new Argument<Guid>("ID") { Description = "The token's id (from trc tokens list)." };
        var command = new Command("revoke", """
            Revoke a token: every call with it is refused from now on.

            Example:
              trc tokens revoke 3f2b6c1e-0d4f-4a51-9a56-2d0c8f4b7e21
            """);
        command.Arguments.Add(id);
        var target = Target.Add(command, org: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            await context.Client.RevokeTokenAsync(context.Org, context.Value(id), ct: ct).ConfigureAwait(false);
            console.Out.WriteLine($"Revoked token {context.Value(id)}.");
            return ExitCodes.Ok;
        });
        return command;
    }
}
