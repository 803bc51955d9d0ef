using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Trc.ControlPlane.Logs;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Api;

/// <summary>
/// What users read about an env's instances: the instance list, and the logs as pages or as a
/// Server-Sent Events stream (viewer and up, org-scoped like every env endpoint).
/// </summary>
public static class InstanceEndpoints
{
    /// <summary>How often a log stream looks for lines another replica stored (its own wake it at once).</summary>
    public static readonly TimeSpan LogPollInterval = TimeSpan.FromSeconds(1);

    /// <summary>Maps the endpoints.</summary>
    public static void Map(RouteGroupBuilder v1, ApiServices s)
    {
        const string env = "/orgs/{org}/apps/{app}/envs/{env}";
        v1.MapGet(env + "/instances", async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await Endpoints.EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            return Endpoints.Ok(new ListView<InstanceView>(await s.Catalog.EnvInstancesAsync(e.View.Id, ct)));
        }).Produces<ListView<InstanceView>>().WithName("listInstances")
          .WithSummary("The env's instances: where they run and their last reported state (instances asked to stop are left out once they ended).");

        v1.MapGet(env + "/logs", async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await Endpoints.EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            var (filter, after, limit) = Query(http, s);
            return Endpoints.Ok(await s.Logs.ReadAsync(e.View.Id, filter, after, limit, ct));
        }).Produces<LogPageView>().WithName("getLogs")
          .WithSummary("A page of the env's log lines, oldest first: after=ID pages forward; since=T starts at a time; neither gives the newest lines.");

        v1.MapGet(env + "/logs/stream", async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await Endpoints.EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            var (filter, after, limit) = Query(http, s);
            if (http.Request.Headers.TryGetValue("Last-Event-ID", out var lastId) && lastId.Count > 0 && !http.Request.Query.ContainsKey("after"))
            {
                after = EventEndpoints.Number(lastId, "Last-Event-ID", 0, long.MaxValue, 0);
            }
            // Without a place to start (after, Last-Event-ID, since): from now on.
            var cursor = after ?? (filter.Since is null ? await s.Logs.HeadAsync(e.View.Id, ct) : 0);
            await ServerSentEvents.StreamAsync(http, cursor, async (from, token) =>
            {
                var page = await s.Logs.ReadAsync(e.View.Id, filter, from, limit, token);
                var items = page.Lines.Select(l => new SseItem(l.Id, "log", JsonSerializer.Serialize(l, ApiJson.Options))).ToList();
                return (items, page.NextCursor, page.Lines.Count >= limit);
            }, async (_, max, token) =>
            {
                await s.Logs.Appended.WaitAsync(max < LogPollInterval ? max : LogPollInterval, s.Time, token);
            }, ct);
        }).Produces(200, contentType: "text/event-stream").WithName("streamLogs")
          .WithSummary("The env's log lines as Server-Sent Events (id: the line's id, for Last-Event-ID), with the filters of GET .../logs; from now on unless after, Last-Event-ID or since says where to start.");
    }

    private static (LogFilter Filter, long? After, int Limit) Query(HttpContext http, ApiServices s)
    {
        var q = http.Request.Query;
        string? process = null;
        if (q.TryGetValue("process", out var p) && p.Count > 0 && !string.IsNullOrEmpty(p[0]))
        {
            if (p.Count > 1)
            {
                throw new BadRequestException(400, "invalid_query", "give process once", "process");
            }
            try
            {
                Decisions.CheckName(p[0], "process");
            }
            catch (DomainException)
            {
                throw new BadRequestException(400, "invalid_query", $"\"{Endpoints.Printable(p[0]!)}\" is not a process name", "process");
            }
            process = p[0];
        }
        Guid? instance = null;
        if (q.TryGetValue("instance", out var i) && i.Count > 0 && !string.IsNullOrEmpty(i[0]))
        {
            instance = i.Count == 1 && Guid.TryParse(i[0], out var id) ? id : throw new BadRequestException(400, "invalid_query", "instance must be one instance id (a UUID)", "instance");
        }
        DateTimeOffset? since = null;
        if (q.TryGetValue("since", out var t) && t.Count > 0 && !string.IsNullOrEmpty(t[0]))
        {
            since = t.Count == 1 ? ParseSince(t[0]!, s.Time) : throw new BadRequestException(400, "invalid_query", "give since once", "since");
        }
        long? after = q.ContainsKey("after") ? EventEndpoints.Number(q["after"], "after", 0, long.MaxValue, 0) : null;
        var limit = (int)EventEndpoints.Number(q["limit"], "limit", 1, LogLimits.MaxPageLines, LogLimits.DefaultPageLines);
        return (new LogFilter(process, instance, since), after, limit);
    }

    /// <summary><c>since</c>: an RFC 3339 time (<c>2025-01-31T12:00:00Z</c>) or a duration back from now (<c>10m</c>, <c>2h</c>, <c>1d</c>).</summary>
    internal static DateTimeOffset ParseSince(string text, TimeProvider time)
    {
        if (text.Length <= 40 && ServerDurations.TryParse(text, out var back, out _))
        {
            // A duration reaching before year 1 (36500d is fine, 200000000h is not) means every line.
            var now = time.GetUtcNow();
            return back < now - DateTimeOffset.MinValue ? now - back : DateTimeOffset.MinValue;
        }
        string[] formats = ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK"];
        var zoned = text.EndsWith('Z') || (text.Length > 6 && text[^6] is '+' or '-' && text[^3] == ':');
        if (text.Length <= 40 && zoned && DateTimeOffset.TryParseExact(text, formats, CultureInfo.InvariantCulture, DateTimeStyles.None, out var at))
        {
            return at;
        }
        throw new BadRequestException(400, "invalid_query", $"since \"{Endpoints.Printable(text)}\" is neither an RFC 3339 time (2025-01-31T12:00:00Z) nor a duration (10m, 2h, 1d)", "since");
    }
}
