using System.Globalization;
using Trc.Client.Events;
using Trc.Client.Logs;
using Trc.Core.Api;

namespace Trc.Client;

// Nodes (what agents call with the node token), instances and logs.
public sealed partial class TrcClient
{
    // ---- nodes (node token or admin) ----------------------------------------------------------------

    /// <summary>
    /// Registers a node (node token or admin). The first registration of a name creates the node with
    /// the next /64 of the overlay; later ones answer the same id and prefix and record what changed.
    /// </summary>
    public Task<NodeView> RegisterNodeAsync(RegisterNodeRequest request, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<NodeView>(HttpMethod.Post, NodeApiPaths.Nodes, request, idempotencyKey, ct);

    /// <summary>Every node with its status (platform admin).</summary>
    public Task<ListView<NodeView>> ListNodesAsync(CancellationToken ct = default) =>
        GetAsync<ListView<NodeView>>(NodeApiPaths.Nodes, ct);

    /// <summary>One node (node token or admin).</summary>
    public Task<NodeView> GetNodeAsync(Guid nodeId, CancellationToken ct = default) =>
        GetAsync<NodeView>(NodeApiPaths.Node(nodeId), ct);

    /// <summary>Sets a node's admin state: active, draining or disabled (platform admin).</summary>
    public Task<NodeView> SetNodeStateAsync(Guid nodeId, string state, string? reason = null, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<NodeView>(HttpMethod.Put, NodeApiPaths.NodeState(nodeId), new NodeStateRequest(state, reason), idempotencyKey, ct);

    /// <summary>Tells the server the node is alive (node token or admin); nothing is recorded.</summary>
    public Task HeartbeatAsync(Guid nodeId, HeartbeatRequest heartbeat, CancellationToken ct = default) =>
        SendNoContentAsync(HttpMethod.Post, NodeApiPaths.Heartbeat(nodeId), heartbeat, null, ct);

    /// <summary>
    /// What the node runs (node token or admin). With <paramref name="after"/> set to an event id,
    /// the answer waits until the server's views have applied that event.
    /// </summary>
    public Task<NodeInstancesView> GetNodeInstancesAsync(Guid nodeId, long after = 0, CancellationToken ct = default) =>
        GetAsync<NodeInstancesView>(NodeApiPaths.NodeInstances(nodeId) + (after > 0 ? "?after=" + after.ToString(CultureInfo.InvariantCulture) : ""), ct);

    /// <summary>
    /// The exact secrets file (<c># TRC_SECRETS_V1</c>) an instance of the node runs with (node token
    /// or admin), or an empty array when its release has no secrets. An answer that is not one is a
    /// <see cref="TrcApiException"/>, never bytes to write into a guest.
    /// </summary>
    public async Task<byte[]> GetInstanceSecretsAsync(Guid nodeId, Guid instanceId, CancellationToken ct = default)
    {
        using var request = NewRequest(HttpMethod.Get, NodeApiPaths.InstanceSecrets(nodeId, instanceId), null, null);
        return await ExecuteAsync(request, async (response, token) =>
        {
            await EnsureSuccessAsync(response, token).ConfigureAwait(false);
            if (response.StatusCode == System.Net.HttpStatusCode.NoContent)
            {
                return [];
            }
            var media = response.Content.Headers.ContentType?.MediaType;
            var body = await ReadBodyAsync(response, MaxSecretsBytes, token).ConfigureAwait(false);
            if (media != "application/octet-stream" || !body.AsSpan().StartsWith(SecretsHeader))
            {
                throw new TrcApiException(response.StatusCode, null,
                    $"the server at {BaseAddress} answered HTTP {(int)response.StatusCode} with {Describe(Printable(media, 100))} that is not a secrets file (# TRC_SECRETS_V1); is this the URL of a trc server?", BaseAddress);
            }
            return body;
        }, ct).ConfigureAwait(false);
    }

    /// <summary>Reports an instance's new state (node token or admin); the same state twice records nothing.</summary>
    public Task ReportInstanceStateAsync(Guid nodeId, Guid instanceId, InstanceStateRequest state, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendNoContentAsync(HttpMethod.Post, NodeApiPaths.InstanceState(nodeId, instanceId), state, idempotencyKey, ct);

    /// <summary>Ships log lines of the node's instances (node token or admin): at most 1,000 lines of at most 16 KiB each.</summary>
    public Task ShipLogsAsync(Guid nodeId, LogBatchRequest batch, CancellationToken ct = default) =>
        SendNoContentAsync(HttpMethod.Post, NodeApiPaths.NodeLogs(nodeId), batch, null, ct);

    // ---- instances and logs (org tokens) ------------------------------------------------------------

    /// <summary>The env's instances: where they run and their last reported state.</summary>
    public Task<ListView<InstanceView>> ListInstancesAsync(string org, string app, string env, CancellationToken ct = default) =>
        GetAsync<ListView<InstanceView>>(NodeApiPaths.Instances(org, app, env), ct);

    /// <summary>
    /// A page of the env's log lines, oldest first. With <see cref="LogQuery.After"/>: the lines after
    /// it; with <see cref="LogQuery.Since"/>: from that time on; with neither: the newest lines.
    /// Continue with <see cref="LogPageView.NextCursor"/> as <c>After</c>.
    /// </summary>
    public Task<LogPageView> GetLogsAsync(string org, string app, string env, LogQuery? query = null, CancellationToken ct = default) =>
        GetAsync<LogPageView>(NodeApiPaths.Logs(org, app, env) + LogQueryString(query ?? new LogQuery(), query?.After), ct);

    /// <summary>
    /// Streams the env's log lines as they arrive until <paramref name="ct"/> is cancelled: from now
    /// on, or after <see cref="LogQuery.After"/>, or from <see cref="LogQuery.Since"/>. A dropped
    /// connection is resumed after the last line received, as <see cref="StreamEventsAsync"/> does.
    /// </summary>
    public IAsyncEnumerable<LogEntryView> StreamLogsAsync(string org, string app, string env, LogQuery? query = null, EventStreamOptions? options = null, CancellationToken ct = default)
    {
        query ??= new LogQuery();
        // A resumed connection sends Last-Event-ID, and then neither after nor since (which would win over it).
        return StreamAsync(
            lastId => NodeApiPaths.LogsStream(org, app, env) + LogQueryString(lastId is null ? query : query with { Since = null }, lastId is null ? query.After : null),
            e => ParseJson<LogEntryView>(e, "log", "log line"), l => l.Id, "log", options, ct);
    }

    private static string LogQueryString(LogQuery query, long? after)
    {
        var parts = new List<string>();
        if (!string.IsNullOrEmpty(query.Process))
        {
            parts.Add("process=" + Uri.EscapeDataString(query.Process));
        }
        if (query.Instance is { } instance)
        {
            parts.Add("instance=" + instance.ToString("D"));
        }
        if (!string.IsNullOrEmpty(query.Since))
        {
            parts.Add("since=" + Uri.EscapeDataString(query.Since));
        }
        if (after is { } a)
        {
            parts.Add("after=" + a.ToString(CultureInfo.InvariantCulture));
        }
        if (query.Limit is { } limit)
        {
            parts.Add("limit=" + limit.ToString(CultureInfo.InvariantCulture));
        }
        return parts.Count == 0 ? "" : "?" + string.Join('&', parts);
    }
}
