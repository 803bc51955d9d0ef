using System.CommandLine;
using System.Globalization;
using Trc.Cli.Remote;
using Trc.Client.Events;
using Trc.Client.Logs;
using Trc.Core.Api;

namespace Trc.Cli.Commands;

/// <summary><c>trc logs</c>: an env's app logs, a page or followed live.</summary>
internal static class LogCommands
{
    public static Command Create(CliConsole console)
    {
        var app = new Argument<string?>("APP") { Description = "The app (default: --app, TRC_APP, or app in ./trc.toml).", Arity = ArgumentArity.ZeroOrOne };
        var process = new Option<string?>("--process", "-p") { Description = "Only this process type, like web.", HelpName = "PROCESS" };
        var instance = new Option<string?>("--instance", "-i") { Description = "Only this instance: its id, or the short id trc ps prints.", HelpName = "ID" };
        var since = new Option<string?>("--since") { Description = "Only lines from this time on: an RFC 3339 time (2025-01-31T12:00:00Z) or a duration back from now (10m, 2h, 1d).", HelpName = "TIME" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing lines as they come, until Ctrl+C; a dropped connection is resumed where it stopped." };
        var limit = new Option<int?>("--limit") { Description = "Most lines (1-5000). Default: 500.", HelpName = "N" };
        var after = new Option<long?>("--after") { Description = "Only lines after this line id (the next: hint prints it).", HelpName = "ID" };
        var command = new Command("logs", """
            The env's app logs: what its instances write to stdout and stderr, and system lines
            from the platform (boot, health, restarts, and why instances wait). Each line prints
            as TIME PROCESS/INSTANCE STREAM LINE, oldest first. Without --since or --after, the
            newest lines; with --follow, then every new line until Ctrl+C (exit 0). With --json,
            a page prints as the API's JSON and --follow prints one JSON line per log line.
            Lines are kept for the server's retention (7 days by default).

            Examples:
              trc logs shop --env prod
              trc logs --env prod --process web --since 10m
              trc logs --env prod --instance 3f9a1c2e --follow
              trc logs --env prod -f --json | jq -r .line
            """);
        command.Arguments.Add(app);
        foreach (var option in new Option[] { process, instance, since, follow, limit, after })
        {
            command.Options.Add(option);
        }
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var (org, appName, env) = (context.Org, context.Value(app) ?? context.App, context.Env);
            var query = new LogQuery(context.Value(process), await InstanceAsync(context, org, appName, env, context.Value(instance), ct).ConfigureAwait(false),
                context.Value(since), context.Value(after), context.Value(limit));
            var page = await context.Client.GetLogsAsync(org, appName, env, query, ct).ConfigureAwait(false);
            if (!context.Value(follow))
            {
                if (context.Json)
                {
                    context.PrintJson(page);
                    return ExitCodes.Ok;
                }
                foreach (var line in page.Lines)
                {
                    Print(console, line);
                }
                if (page.Lines.Count == (query.Limit ?? LogLimits.DefaultPageLines))
                {
                    console.Err.WriteLine(TextTable.Clean($"next: trc logs --after {page.NextCursor}{Filters(query)}"));
                }
                return ExitCodes.Ok;
            }

            void Write(LogEntryView line)
            {
                if (context.Json)
                {
                    context.PrintJsonLine(line);
                }
                else
                {
                    Print(console, line);
                }
            }

            foreach (var line in page.Lines)
            {
                Write(line);
            }
            var options = EventStreamOptions.Default with
            {
                Reconnecting = r => console.Err.WriteLine(TextTable.Clean(
                    $"trc: the log stream was interrupted{(r.Error is null ? "" : $" ({r.Error.Message})")}; reconnecting in {r.Delay.TotalSeconds:0.0} s{(r.LastEventId is { } id ? $" after line {id}" : "")}")),
            };
            try
            {
                await foreach (var line in context.Client.StreamLogsAsync(org, appName, env, query with { Since = null, After = page.NextCursor }, options, ct).ConfigureAwait(false))
                {
                    Write(line);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl+C is how a follow ends: a success (exit 0), not an interruption (130).
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>One line as <c>TIME PROCESS/INSTANCE STREAM LINE</c>, every server-sent character made printable.</summary>
    private static void Print(CliConsole console, LogEntryView line) =>
        console.Out.WriteLine(TextTable.Clean(
            $"{line.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)} {line.Process}/{InstanceCommands.Short(line.Instance)} {line.Stream} {line.Line}"));

    private static string Filters(LogQuery query) =>
        (query.Process is { } p ? $" --process {p}" : "") + (query.Instance is { } i ? $" --instance {i:D}" : "") + (query.Limit is { } n ? $" --limit {n}" : "");

    /// <summary>A full instance id as given, or the one instance of the env whose id starts with the short id given.</summary>
    private static async Task<Guid?> InstanceAsync(RemoteContext context, string org, string app, string env, string? given, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(given))
        {
            return null;
        }
        if (Guid.TryParse(given, out var id))
        {
            return id;
        }
        var prefix = given.Replace("-", "", StringComparison.Ordinal).ToLowerInvariant();
        if (prefix.Length is < 4 or > 32 || !prefix.All(Uri.IsHexDigit))
        {
            throw new CliFailure(ExitCodes.Usage, $"--instance {TextTable.Clean(given)}: give an instance id, or at least 4 of its first hex digits as trc ps prints them");
        }
        var matches = (await context.Client.ListInstancesAsync(org, app, env, ct).ConfigureAwait(false)).Items
            .Where(i => i.Id.ToString("N").StartsWith(prefix, StringComparison.Ordinal)).ToList();
        return matches.Count switch
        {
            1 => matches[0].Id,
            0 => throw new CliFailure(ExitCodes.Invalid, $"no instance of {env} starts with {TextTable.Clean(given)} (trc ps lists them; give the full id for an instance no longer listed)"),
            _ => throw new CliFailure(ExitCodes.Usage, $"{matches.Count} instances start with {TextTable.Clean(given)}; give more digits"),
        };
    }
}
