using Trc.Client;
using Trc.Client.Events;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Edge;

namespace Trc.Cli.Remote;

/// <summary>The control plane as an edge's route source, through the typed client (<c>trc edge</c> fed mode, <c>trc dev</c>).</summary>
internal sealed class ClientRouteSource(TrcClient client) : IEdgeRouteSource
{
    /// <inheritdoc />
    public Task<EdgeRoutesView> SnapshotAsync(long after, CancellationToken ct) => client.GetEdgeRoutesAsync(after, ct);

    /// <inheritdoc />
    public async IAsyncEnumerable<long> ChangesAsync(long after, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var e in client.StreamEventsAsync(new EventQuery(After: after, Types: EventNames.EdgeRouting), null, ct).ConfigureAwait(false))
        {
            yield return e.Id;
        }
    }
}
