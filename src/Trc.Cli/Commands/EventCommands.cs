using System.CommandLine;
using Trc.Cli.Remote;
using Trc.Client.Events;
using Trc.Core.Api;

namespace Trc.Cli.Commands;

/// <summary><c>trc events</c>: the audit log, as a page or followed live.</summary>
internal static class EventCommands
{
    public static Command Create(CliConsole console)
    {
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing events as they happen, until Ctrl+C; a dropped connection is resumed where it stopped." };
        var after = new Option<long>("--after") { Description = "Start after this event id. Default: 0, the beginning.", HelpName = "ID" };
        var types = new Option<string[]>("--type") { Description = "Only events of this type (repeatable), like app.created.", HelpName = "TYPE", AllowMultipleArgumentsPerToken = false };
        var limit = new Option<int?>("--limit") { Description = "Most events on the page (1-1000; without --follow). Default: 100.", HelpName = "N" };
        var command = new Command("events", """
            The org's events (the audit log): every change, who made it and when. Without an
            org, the platform admin reads the whole platform's log. Ids only grow; pass the
            last id you saw as --after to continue. With --json, a page prints as the API's
            JSON and --follow prints one JSON event per line.

            Examples:
              trc events
              trc events --after 120 --type env.release_deployed
              trc events --follow
              trc events --follow --json | jq .type
            """);
        foreach (var option in new Option[] { follow, after, types, limit })
        {
            command.Options.Add(option);
        }
        var target = Target.Add(command, org: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var org = context.OrgOrNull;
            var typeList = context.Value(types) is { Length: > 0 } t ? t : null;
            if (!context.Value(follow))
            {
                var page = await context.Client.GetEventsAsync(new EventQuery(org, context.Value(after), context.Value(limit), typeList), ct).ConfigureAwait(false);
                if (context.Json)
                {
                    context.PrintJson(page);
                    return ExitCodes.Ok;
                }
                var table = new TextTable("ID", "TIME", "TYPE", "AGGREGATE", "ACTOR");
                foreach (var e in page.Events)
                {
                    table.Add(TextTable.Number(e.Id), TextTable.Time(e.OccurredAt), e.Type, $"{e.AggregateType}/{e.AggregateId}", e.ActorId?.ToString());
                }
                table.Write(console.Out);
                // The cursor also moves past events a filter skipped: the hint repeats the filters.
                if (page.NextCursor > context.Value(after))
                {
                    var filters = string.Concat((typeList ?? []).Select(t => $" --type {t}"))
                        + (context.Value(limit) is { } n ? $" --limit {n}" : "");
                    console.Err.WriteLine(TextTable.Clean($"next: trc events --after {page.NextCursor}{filters}"));
                }
                return ExitCodes.Ok;
            }

            var options = EventStreamOptions.Default with
            {
                Reconnecting = r => console.Err.WriteLine(TextTable.Clean(
                    $"trc: the event stream was interrupted{(r.Error is null ? "" : $" ({r.Error.Message})")}; reconnecting in {r.Delay.TotalSeconds:0.0} s{(r.LastEventId is { } id ? $" after event {id}" : "")}")),
            };
            try
            {
                await foreach (var e in context.Client.StreamEventsAsync(new EventQuery(org, context.Value(after), Types: typeList), options, ct).ConfigureAwait(false))
                {
                    if (context.Json)
                    {
                        context.PrintJsonLine(e);
                    }
                    else
                    {
                        console.Out.WriteLine(TextTable.Clean($"{e.Id,8}  {TextTable.Time(e.OccurredAt)}  {e.Type,-26}  {e.AggregateType}/{e.AggregateId}"));
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl+C is how a follow ends, so it is a success (exit 0), not an interruption (130).
            }
            return ExitCodes.Ok;
        });
        return command;
    }
}
