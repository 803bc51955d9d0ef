using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Trc.ControlPlane.Auth;
using Trc.ControlPlane.Catalog;
using Trc.ControlPlane.Commands;
using Trc.ControlPlane.Logs;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Api;

/// <summary>
/// What node agents call, with the shared node token (the admin may call them too): register,
/// heartbeat, read what to run and its secrets, report instance states, ship logs. Answers for
/// one node never depend on another node's objects: an instance of another node is a 404 (or, in
/// a log batch, a 422 naming the line), exactly like one that does not exist.
/// </summary>
public static class NodeEndpoints
{
    /// <summary>Most instances in one heartbeat.</summary>
    public const int MaxHeartbeatInstances = 10_000;

    /// <summary>
    /// Whether a node token may call this: the node endpoints below <c>/v1/nodes/</c>, registration
    /// (<c>POST /v1/nodes</c>), and the platform change stream (where it must name its node).
    /// Everything else answers the same 403, so a node token learns nothing about orgs.
    /// </summary>
    public static bool NodeMayCall(string method, PathString path)
    {
        if (path.StartsWithSegments(NodeApiPaths.Nodes, StringComparison.Ordinal, out var rest))
        {
            return rest.HasValue && rest.Value != "/" ? true : HttpMethods.IsPost(method);
        }
        return HttpMethods.IsGet(method) && (path.Equals(ApiPaths.Events, StringComparison.Ordinal) || path.Equals(ApiPaths.EventsStream, StringComparison.Ordinal));
    }

    /// <summary>Maps the node endpoints.</summary>
    public static void Map(RouteGroupBuilder v1, ApiServices s)
    {
        v1.MapPost("/nodes", async (HttpContext http, CancellationToken ct) =>
        {
            var p = RequireNodeOrAdmin(http);
            var (body, fingerprint) = await JsonBody.ReadAsync<RegisterNodeRequest>(http, s.MaxBodyBytes);
            var registration = new NodeRegistration(body.Name, body.MemoryBytes, body.Cpus, body.Driver, body.Acceleration, body.Region, body.AgentVersion);
            NodeDecisions.CheckRegistration(registration);
            var id = NodeState.IdOf(body.Name);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    var last = await s.Runner.RunAsync(p, Endpoints.Key(http), fingerprint, async load =>
                        NodeDecisions.Register(await load.LoadAsync(id, i => new NodeState(i), ct), await load.LoadAsync(OverlayState.TheId, i => new OverlayState(i), ct), registration, s.Overlay), ct);
                    if (last == 0)
                    {
                        // Nothing changed, but the registration that made the node may have been
                        // another request's a moment ago: read the node once the catalog has it.
                        var events = await s.Store.ReadAggregateAsync(EventNames.NodeAggregate, id, 0, ct);
                        await s.Runner.CatalogPositionAsync(events.Count == 0 ? 0 : events[^1].EventId, ct);
                    }
                    break;
                }
                catch (DomainException e) when (e.Code == "conflict" && attempt < 3)
                {
                    // The same name registered at the same moment (an agent retrying): the next
                    // decision sees the node and only updates it.
                }
            }
            await s.Liveness.HeardAsync(id, ct);
            return Endpoints.Ok(await ViewAsync(s, await s.Catalog.NodeAsync(id, ct) ?? throw new NotReadyException("the node is registered but not yet readable"), ct));
        }).Accepts<RegisterNodeRequest>("application/json").Produces<NodeView>().WithName("registerNode")
          .WithSummary("Register a node (node token or admin): the first registration of a name gets the next /64 of the overlay; later ones update what changed.");

        v1.MapGet("/nodes", async (HttpContext http, CancellationToken ct) =>
        {
            Endpoints.RequireAdmin(http);
            var seen = await s.Liveness.LastSeenAsync(ct);
            return Endpoints.Ok(new ListView<NodeView>((await s.Catalog.NodesAsync(ct)).Select(n => View(s, n, seen)).ToList()));
        }).Produces<ListView<NodeView>>().WithName("listNodes").WithSummary("Every node, with its status (platform admin).");

        v1.MapGet("/nodes/{node}", async (HttpContext http, string node, CancellationToken ct) =>
        {
            RequireNodeOrAdmin(http);
            return Endpoints.Ok(await ViewAsync(s, await NodeAsync(s, node, ct), ct));
        }).Produces<NodeView>().WithName("getNode").WithSummary("One node (node token or admin).");

        v1.MapPut("/nodes/{node}/state", async (HttpContext http, string node, CancellationToken ct) =>
        {
            var p = Endpoints.RequireAdmin(http);
            var n = await NodeAsync(s, node, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<NodeStateRequest>(http, s.MaxBodyBytes);
            if (body.Reason is { } why && (why.Length > NodeDecisions.MaxReasonLength || why.Any(char.IsControl) || NodeDecisions.HasLoneSurrogate(why)))
            {
                throw DomainException.Invalid("invalid_reason", "reason", $"reason is one line of at most {NodeDecisions.MaxReasonLength} characters, without control characters");
            }
            var reason = body.Reason is { Length: > 0 } r ? r : $"set {body.State} by the operator";
            await s.Runner.RunAsync(p, Endpoints.Key(http), fingerprint, async load =>
                NodeDecisions.SetAdminState(await load.LoadAsync(n.Id, i => new NodeState(i), ct), body.State ?? "", reason), ct);
            return Endpoints.Ok(await ViewAsync(s, await NodeAsync(s, node, ct), ct));
        }).Accepts<NodeStateRequest>("application/json").Produces<NodeView>().WithName("setNodeState")
          .WithSummary("Drain, undrain (active) or disable a node (platform admin): draining moves its instances away once their replacements are healthy; disabled reschedules them at once.");

        v1.MapPost("/nodes/{node}/heartbeat", async (HttpContext http, string node, CancellationToken ct) =>
        {
            RequireNodeOrAdmin(http);
            var n = await NodeAsync(s, node, ct);
            var (body, _) = await JsonBody.ReadAsync<HeartbeatRequest>(http, s.MaxBodyBytes);
            if (body.MemoryBytes < 0)
            {
                throw DomainException.Invalid("invalid_memory", "memory_bytes", "memory_bytes cannot be negative");
            }
            if (body.Cpus < 0)
            {
                throw DomainException.Invalid("invalid_cpus", "cpus", "cpus cannot be negative");
            }
            if (body.Instances.Count > MaxHeartbeatInstances)
            {
                throw DomainException.Invalid("too_many_instances", "instances", $"a heartbeat lists at most {MaxHeartbeatInstances} instances");
            }
            for (var i = 0; i < body.Instances.Count; i++)
            {
                var instance = body.Instances[i] ?? throw new BadRequestException(400, "invalid_json", $"instances[{i}] must not be null", $"instances[{i}]");
                if (!InstanceStates.All.Contains(instance.State))
                {
                    throw DomainException.Invalid("invalid_state", $"instances[{i}].state", $"\"{Endpoints.Printable(instance.State)}\" is not a state: use {string.Join(", ", InstanceStates.All)}");
                }
            }
            await s.Liveness.HeardAsync(n.Id, ct);
            // An instance asked to stop that the node no longer lists runs nowhere: the node lost
            // it while it was away (stopped with its agent, or its VM died), so no agent will ever
            // report its end. Said once, so that it stops reading as live; after the answer, so
            // that a heartbeat never waits on it (a late heartbeat is a node declared lost).
            var listed = body.Instances.Select(i => i.Id).ToHashSet();
            var actor = Caller.Get(http);
            var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Trc.ControlPlane.Api.Heartbeats");
            http.Response.OnCompleted(() => StopWhatTheNodeNoLongerRunsAsync(s, actor, n.Id, listed, logger));
            return Results.NoContent();
        }).Accepts<HeartbeatRequest>("application/json").Produces(204).WithName("heartbeat")
          .WithSummary("The node is alive (node token or admin). Records nothing, except that an instance asked to stop which the node no longer lists is stopped.");

        v1.MapGet("/nodes/{node}/instances", async (HttpContext http, string node, CancellationToken ct) =>
        {
            RequireNodeOrAdmin(http);
            var after = EventEndpoints.Number(http.Request.Query["after"], "after", 0, long.MaxValue, 0);
            var id = ParseNode(node);
            // The position first, then the rows: the catalog only moves forward, so the rows are at
            // least as new as the position the agent resumes the stream after.
            var position = await s.Runner.CatalogPositionAsync(after, ct);
            var n = await s.Catalog.NodeAsync(id, ct) ?? throw DomainException.NotFound("node");
            return Endpoints.Ok(new NodeInstancesView(position, await s.Catalog.NodeInstancesAsync(n.Id, n.Region, ct)));
        }).Produces<NodeInstancesView>().WithName("getNodeInstances")
          .WithSummary("What the node runs: its instances not asked to stop, with everything from their releases (node token or admin); after=ID waits until the catalog has applied that event.");

        v1.MapGet("/nodes/{node}/instances/{instance}/secrets", async (HttpContext http, string node, string instance, CancellationToken ct) =>
        {
            RequireNodeOrAdmin(http);
            var row = await InstanceOnNodeAsync(s, node, instance, ct);
            if (row.StopRequested)
            {
                throw DomainException.NotFound("instance");
            }
            // The aggregate, not the catalog, maps the release's secrets version to its bundle.
            var env = await new AggregateLoader(s.Store).LoadAsync(row.EnvId, i => new EnvState(i), ct);
            var release = env.Releases.FirstOrDefault(r => r.Number == row.Release) ?? throw DomainException.NotFound("instance");
            http.Response.Headers.CacheControl = "no-store";
            if (release.SecretsVersion == 0)
            {
                return Results.NoContent();
            }
            var bundle = env.SecretBundles.TryGetValue(release.SecretsVersion, out var b) ? b : throw new InvalidOperationException($"secrets version {release.SecretsVersion} of env {row.EnvId} has no bundle");
            return Results.Bytes(await s.Vault.FileAsync(row.EnvId, bundle, ct), "application/octet-stream");
        }).Produces(200, contentType: "application/octet-stream").Produces(204).WithName("getInstanceSecrets")
          .WithSummary("The instance's secrets file, byte for byte, at its release's secrets version (node token or admin); 204 when the release has none.");

        v1.MapPost("/nodes/{node}/instances/{instance}/state", async (HttpContext http, string node, string instance, CancellationToken ct) =>
        {
            var p = RequireNodeOrAdmin(http);
            var row = await InstanceOnNodeAsync(s, node, instance, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<InstanceStateRequest>(http, s.MaxBodyBytes);
            await s.Runner.RunAsync(p, Endpoints.Key(http), fingerprint, async load =>
                NodeDecisions.ReportState(await load.LoadAsync(row.Id, i => new InstanceState(i), ct), row.NodeId, row.OrgId,
                    body.State, body.Address, body.ExitCode, body.Reason, body.Restarts), ct);
            return Results.NoContent();
        }).Accepts<InstanceStateRequest>("application/json").Produces(204).WithName("reportInstanceState")
          .WithSummary("An instance's new state (node token or admin); nothing is recorded when it equals the last report.");

        v1.MapPost("/nodes/{node}/logs", async (HttpContext http, string node, CancellationToken ct) =>
        {
            RequireNodeOrAdmin(http);
            var n = await NodeAsync(s, node, ct);
            if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = s.MaxLogBatchBytes + 1;
            }
            var (body, _) = await JsonBody.ReadAsync<LogBatchRequest>(http, s.MaxLogBatchBytes);
            await s.Logs.AppendAsync(await TagAsync(s, n.Id, body, ct), ct);
            return Results.NoContent();
        }).Accepts<LogBatchRequest>("application/json").Produces(204).WithName("shipLogs")
          .WithSummary("Log lines of the node's instances (node token or admin): at most 1,000 lines of at most 16 KiB; tagged here from each instance's schedule.");
    }

    /// <summary>Checks a batch and tags each line from its instance's schedule (never from the agent).</summary>
    private static async Task<List<LogRecord>> TagAsync(ApiServices s, Guid node, LogBatchRequest body, CancellationToken ct)
    {
        if (body.Lines.Count > LogLimits.MaxLinesPerBatch)
        {
            throw DomainException.Invalid("too_many_lines", "lines", $"a batch holds at most {LogLimits.MaxLinesPerBatch} lines, not {body.Lines.Count}; send several");
        }
        for (var i = 0; i < body.Lines.Count; i++)
        {
            var line = body.Lines[i] ?? throw new BadRequestException(400, "invalid_json", $"lines[{i}] must not be null", $"lines[{i}]");
            if (!LogStreams.All.Contains(line.Stream))
            {
                throw DomainException.Invalid("invalid_stream", $"lines[{i}].stream", $"\"{Endpoints.Printable(line.Stream)}\" is not a stream: use {string.Join(", ", LogStreams.All)}");
            }
            if (Encoding.UTF8.GetByteCount(line.Line) is var bytes and > LogLimits.MaxLineBytes)
            {
                throw DomainException.Invalid("line_too_long", $"lines[{i}].line", $"the line is {bytes} bytes; at most {LogLimits.MaxLineBytes} (16 KiB) are kept, so split it");
            }
        }
        var instances = await s.Catalog.InstancesAsync(body.Lines.Select(l => l.Instance).Distinct().ToList(), ct);
        var records = new List<LogRecord>(body.Lines.Count);
        for (var i = 0; i < body.Lines.Count; i++)
        {
            var line = body.Lines[i];
            if (!instances.TryGetValue(line.Instance, out var row) || row.NodeId != node)
            {
                throw DomainException.Invalid("unknown_instance", $"lines[{i}].instance", $"instance {line.Instance:D} is not scheduled on this node");
            }
            records.Add(new LogRecord(row.EnvId, row.Org, row.App, row.Env, row.Process, row.Id, row.Release, line.Stream, line.Time, line.Line));
        }
        return records;
    }

    private static NodeView View(ApiServices s, NodeRow n, IReadOnlyDictionary<Guid, DateTimeOffset> seen)
    {
        DateTimeOffset? lastSeen = seen.TryGetValue(n.Id, out var at) ? at : null;
        return new(n.Id, n.Name, n.Prefix, n.MemoryBytes, n.Cpus, n.Driver, n.Acceleration, n.Region, s.Liveness.Status(n.AdminState, n.Lost, lastSeen), lastSeen,
            n.Instances, n.RegisteredAt, n.AgentVersion, n.AdminState, n.StatusReason, n.UsedMemoryBytes,
            n.MemoryBytes - n.MemoryBytes / 100 * s.Policy.MemoryBufferPercent);
    }

    /// <summary>Records stopped every instance of the node that was asked to stop, still reads as live, and is not in <paramref name="listed"/>.</summary>
    private static async Task StopWhatTheNodeNoLongerRunsAsync(ApiServices s, Principal actor, Guid node, HashSet<Guid> listed, ILogger logger)
    {
        try
        {
            foreach (var gone in (await s.Catalog.StoppingOnNodeAsync(node, CancellationToken.None)).Where(i => !listed.Contains(i.Id)))
            {
                await s.Runner.RunAsync(actor, null, "", async load =>
                {
                    var instance = await load.LoadAsync(gone.Id, i => new InstanceState(i), CancellationToken.None);
                    return NodeDecisions.ReportState(instance, gone.NodeId, gone.OrgId, InstanceStates.Stopped, null, null,
                        "its node no longer runs it (not in the node's heartbeat)", instance.Last?.Restarts ?? 0);
                }, CancellationToken.None);
            }
        }
#pragma warning disable CA1031 // After the answer there is no caller to tell; the next heartbeat tries again.
        catch (Exception e)
#pragma warning restore CA1031
        {
            logger.LogWarning(e, "node {Node}: recording the instances it no longer runs failed; the next heartbeat tries again", node);
        }
    }

    private static async Task<NodeView> ViewAsync(ApiServices s, NodeRow n, CancellationToken ct) => View(s, n, await s.Liveness.LastSeenAsync(ct));

    private static Guid ParseNode(string node) => Guid.TryParse(node, out var id) ? id : throw DomainException.NotFound("node");

    private static async Task<NodeRow> NodeAsync(ApiServices s, string node, CancellationToken ct) =>
        await s.Catalog.NodeAsync(ParseNode(node), ct) ?? throw DomainException.NotFound("node");

    /// <summary>The instance, if it is scheduled on the node; the same 404 otherwise (missing, or another node's).</summary>
    private static async Task<InstanceRow> InstanceOnNodeAsync(ApiServices s, string node, string instance, CancellationToken ct)
    {
        var nodeId = ParseNode(node);
        if (!Guid.TryParse(instance, out var id)
            || !(await s.Catalog.InstancesAsync([id], ct)).TryGetValue(id, out var row)
            || row.NodeId != nodeId)
        {
            throw DomainException.NotFound("instance");
        }
        return row;
    }

    private static Principal RequireNodeOrAdmin(HttpContext http)
    {
        var p = Caller.Get(http);
        return p.IsAdmin || p.IsNode ? p : throw new DomainException(DomainErrorKind.Forbidden, "forbidden", "only node agents (the node token) and the platform admin may do this");
    }
}
