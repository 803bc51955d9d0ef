using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Trc.Core.Api;

namespace Trc.ControlPlane.Api;

/// <summary>
/// What edges read: <c>GET /v1/edge/routes?after=ID</c>, every route of the platform with its listen
/// addresses and backends, as of a position in the event log. An edge takes this snapshot, follows
/// the platform change stream after <see cref="EdgeRoutesView.Position"/>, and on an event that
/// touches routing (<see cref="Core.Domain.EventNames.EdgeRouting"/>) takes the snapshot again with <c>after</c> set to that event's id, which makes the
/// answer wait until the catalog has applied it (read-your-writes across the two calls).
/// </summary>
public static class EdgeEndpoints
{
    /// <summary>Maps the edge endpoints.</summary>
    public static void Map(RouteGroupBuilder v1, ApiServices s)
    {
        v1.MapGet("/edge/routes", async (HttpContext http, CancellationToken ct) =>
        {
            EventEndpoints.RequireAdmin(http);
            var after = EventEndpoints.Number(http.Request.Query["after"], "after", 0, long.MaxValue, 0);
            // The position first, then the rows: the catalog only moves forward, so the rows are at
            // least as new as the position the edge resumes the stream after.
            var position = await s.Runner.CatalogPositionAsync(after, ct);
            var routes = await s.Catalog.EdgeRoutesAsync(ct);
            return Endpoints.Ok(new EdgeRoutesView(position, routes));
        }).Produces<EdgeRoutesView>().WithName("getEdgeRoutes")
          .WithSummary("Every route with its listen addresses and backends, for edges (platform admin); after=ID waits until the catalog has applied that event.");
    }
}
