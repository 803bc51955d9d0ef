using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.EventStore;

namespace Trc.ControlPlane.Api;

/// <summary>
/// The change stream: <c>GET .../events?after=ID&amp;limit=N&amp;type=...&amp;node=...</c> for polling, and
/// <c>.../events/stream</c> as Server-Sent Events resuming from <c>after</c> or <c>Last-Event-ID</c>.
/// Both read the log through the store's horizon, so a consumer that follows the cursor never skips
/// or repeats an event, across reconnects too. Org tokens see their org's events; the platform
/// stream (all events, filterable by node) is for the admin.
/// </summary>
public static class EventEndpoints
{
    /// <summary>Most events per page.</summary>
    public const int MaxLimit = 1000;

    /// <summary>Maps the event endpoints.</summary>
    public static void Map(RouteGroupBuilder v1, ApiServices s)
    {
        v1.MapGet("/orgs/{org}/events", async (HttpContext http, string org, CancellationToken ct) =>
        {
            var o = await Endpoints.ScopeAsync(http, s, org, Roles.Viewer, ct);
            var (after, limit, filter) = Query(http, o.Id);
            return Endpoints.Ok(ToView(await s.Store.ReadAllAsync(after, limit, filter, ct)));
        }).Produces<EventPageView>().WithName("listOrgEvents").WithSummary("The org's events after a cursor (the audit log).");

        v1.MapGet("/orgs/{org}/events/stream", async (HttpContext http, string org, CancellationToken ct) =>
        {
            var o = await Endpoints.ScopeAsync(http, s, org, Roles.Viewer, ct);
            await StreamAsync(http, s.Store, Query(http, o.Id), ct);
        }).Produces(200, contentType: "text/event-stream").WithName("streamOrgEvents").WithSummary("The org's events as Server-Sent Events.");

        v1.MapGet("/events", async (HttpContext http, CancellationToken ct) =>
        {
            var (after, limit, filter) = PlatformQuery(http);
            return Endpoints.Ok(ToView(await s.Store.ReadAllAsync(after, limit, filter, ct)));
        }).Produces<EventPageView>().WithName("listEvents").WithSummary("Every event after a cursor (platform admin and edges; a node token with node=ID reads that node's events).");

        v1.MapGet("/events/stream", async (HttpContext http, CancellationToken ct) =>
        {
            await StreamAsync(http, s.Store, PlatformQuery(http), ct);
        }).Produces(200, contentType: "text/event-stream").WithName("streamEvents").WithSummary("Every event as Server-Sent Events (platform admin; a node token with node=ID).");
    }

    internal static void RequireAdmin(HttpContext http)
    {
        if (!Caller.Get(http).IsAdmin)
        {
            throw new DomainException(DomainErrorKind.Forbidden, "forbidden", "the platform stream is for the platform admin; use /v1/orgs/{org}/events");
        }
    }

    /// <summary>
    /// The platform stream's query. The admin reads everything. The node token (shared by every
    /// node) must name a node (<c>node=ID</c>) and then reads only events routed to it; it never
    /// reads the whole log.
    /// </summary>
    private static (long After, int Limit, EventFilter Filter) PlatformQuery(HttpContext http)
    {
        var p = Caller.Get(http);
        if (p.IsAdmin)
        {
            return Query(http, null);
        }
        if (!p.IsNode)
        {
            RequireAdmin(http);
        }
        var (after, limit, filter) = Query(http, null);
        if (filter.RoutingKey is null || !Guid.TryParse(filter.RoutingKey, out var node))
        {
            throw new DomainException(DomainErrorKind.Forbidden, "forbidden", "a node token reads the change stream of one node: pass node=ID (the node's id)");
        }
        return (after, limit, filter with { RoutingKey = node.ToString("D") });
    }

    private static (long After, int Limit, EventFilter Filter) Query(HttpContext http, Guid? tenant)
    {
        var q = http.Request.Query;
        var after = Number(q["after"], "after", 0, long.MaxValue, 0);
        if (http.Request.Headers.TryGetValue("Last-Event-ID", out var lastId) && lastId.Count > 0 && !q.ContainsKey("after"))
        {
            after = Number(lastId, "Last-Event-ID", 0, long.MaxValue, 0);
        }
        var limit = (int)Number(q["limit"], "limit", 1, MaxLimit, 100);
        var types = q["type"].Where(t => !string.IsNullOrEmpty(t)).Select(t => t!).ToList();
        if (types.Any(t => t.Length > 200))
        {
            throw new BadRequestException(400, "invalid_query", "an event type is at most 200 characters", "type");
        }
        var node = q["node"].ToString();
        if (node.Length > 200)
        {
            throw new BadRequestException(400, "invalid_query", "a node id is at most 200 characters", "node");
        }
        return (after, limit, new EventFilter(types.Count == 0 ? null : types, node.Length == 0 ? null : node, tenant));
    }

    internal static long Number(Microsoft.Extensions.Primitives.StringValues value, string name, long min, long max, long fallback)
    {
        if (value.Count == 0 || string.IsNullOrEmpty(value[0]))
        {
            return fallback;
        }
        if (value.Count > 1 || !long.TryParse(value[0], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
        {
            throw new BadRequestException(400, "invalid_query", $"{name} must be one whole number from {min} to {max}", name);
        }
        return n;
    }

    private static EventPageView ToView(EventPage page) => new(page.Events.Select(ToView).ToList(), page.NextCursor);

    private static EventView ToView(StoredEvent e)
    {
        using var payload = JsonDocument.Parse(e.PayloadJson);
        return new EventView(e.EventId, e.OccurredAt, e.AggregateType, e.AggregateId, e.AggregateSeq, e.EventType, e.ActorId, payload.RootElement.Clone(), e.RoutingKey);
    }

    /// <summary>
    /// Server-Sent Events: each event as <c>id</c> (its event id, for Last-Event-ID on reconnect),
    /// <c>event</c> (its type) and <c>data</c> (the event as JSON).
    /// </summary>
    private static async Task StreamAsync(HttpContext http, IEventStore store, (long After, int Limit, EventFilter Filter) query, CancellationToken ct)
    {
        var (cursor, limit, filter) = query;
        await ServerSentEvents.StreamAsync(http, cursor, async (after, token) =>
        {
            var page = await store.ReadAllAsync(after, limit, filter, token);
            var items = page.Events.Select(e => new SseItem(e.EventId, e.EventType, JsonSerializer.Serialize(ToView(e), ApiJson.Options))).ToList();
            return (items, page.NextCursor, page.Events.Count >= limit);
        }, (after, max, token) => store.WaitForEventsAsync(after, max, token), ct);
    }
}
