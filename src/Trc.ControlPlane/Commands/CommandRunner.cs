using System.Security.Cryptography;
using System.Text;
using Trc.ControlPlane.Auth;
using Trc.ControlPlane.Catalog;
using Trc.Core.Domain;
using Trc.EventStore;
using Trc.EventStore.Projections;

namespace Trc.ControlPlane.Commands;

/// <summary>The catalog did not catch up in time: the write happened, the read would be stale (503).</summary>
public sealed class NotReadyException(string message) : Exception(message);

/// <summary>Loads aggregate states by folding their events; each is read once per command.</summary>
public sealed class AggregateLoader(IEventStore store)
{
    private readonly Dictionary<(string, Guid), AggregateState> _loaded = [];

    /// <summary>The state of an aggregate (empty when it has no events).</summary>
    public async Task<T> LoadAsync<T>(Guid id, Func<Guid, T> create, CancellationToken ct)
        where T : AggregateState
    {
        var state = create(id);
        if (_loaded.TryGetValue((state.Type, id), out var cached))
        {
            return (T)cached;
        }
        foreach (var e in await store.ReadAggregateAsync(state.Type, id, 0, ct).ConfigureAwait(false))
        {
            state.Apply(e.EventType, e.PayloadJson);
        }
        _loaded[(state.Type, id)] = state;
        return state;
    }
}

/// <summary>
/// Runs a command: load, decide, append atomically, then wait until the catalog has applied the
/// events (read-your-writes), so the response shows what was just done. A retried request with the
/// same Idempotency-Key appends nothing and answers from the catalog. A lost race on the command's
/// own aggregate (its first change) is a 409; on any other aggregate it touches, the command is
/// decided again, up to <see cref="MaxAttempts"/> times. <c>decide</c> must therefore be safe to
/// run more than once.
/// </summary>
public sealed class CommandRunner(IEventStore store, IProjectionBackend projections, TimeSpan readTimeout)
{
    /// <summary>Most tries when only a side aggregate conflicts.</summary>
    public const int MaxAttempts = 10;

    private readonly ProjectionWaiter _waiter = new(projections);

    /// <summary>Runs <paramref name="decide"/> and returns the last event id appended (0 when nothing changed).</summary>
    /// <param name="actor">Who asks.</param>
    /// <param name="idempotencyKey">The request's Idempotency-Key header, if any.</param>
    /// <param name="fingerprint">The request's method, path and body: a key names one exact request.</param>
    /// <param name="decide">The command's decision.</param>
    /// <param name="ct">Cancellation.</param>
    public async Task<long> RunAsync(Principal actor, string? idempotencyKey, string fingerprint, Func<AggregateLoader, Task<IReadOnlyList<Change>>> decide, CancellationToken ct)
    {
        var key = idempotencyKey is null ? null : ScopedKey(actor, idempotencyKey, fingerprint);
        if (key is not null && await store.FindIdempotencyKeyAsync(key, ct).ConfigureAwait(false) is { } earlier)
        {
            await WaitForCatalogAsync(earlier, ct).ConfigureAwait(false);
            return earlier;
        }

        IReadOnlyList<AppendResult> results;
        for (var attempt = 1; ; attempt++)
        {
            var changes = await decide(new AggregateLoader(store)).ConfigureAwait(false);
            if (changes.Count == 0)
            {
                return 0;
            }
            var requests = changes.Select((c, i) => new AppendRequest(
                c.AggregateType,
                c.AggregateId,
                c.ExpectedVersion,
                c.Events.Select(e => new EventData(e.Type, e.Json, e.RoutingKey)).ToList(),
                actor.TokenId,
                i == 0 ? key : null,
                c.TenantId)).ToList();
            try
            {
                results = await store.AppendAsync(requests, ct).ConfigureAwait(false);
                break;
            }
            catch (ConcurrencyConflictException e) when (attempt < MaxAttempts && (e.AggregateType, e.AggregateId) != (changes[0].AggregateType, changes[0].AggregateId))
            {
                // Something this command only touches on the side moved (the org's usage after a
                // deploy elsewhere, a hostname or address someone else claimed): decide again on
                // the new state, which either succeeds or names the real reason.
                await Task.Delay(Random.Shared.Next(1, 10 * attempt), ct).ConfigureAwait(false);
            }
            catch (ConcurrencyConflictException e)
            {
                // The scheduler placing or stopping instances of this env, or moving its rollout on,
                // is bookkeeping that changes nothing the caller decided on: decide again, not 409.
                if (attempt < MaxAttempts && await MovedOnlyByPlacementAsync(changes[0], ct).ConfigureAwait(false))
                {
                    await Task.Delay(Random.Shared.Next(1, 10 * attempt), ct).ConfigureAwait(false);
                    continue;
                }
                // The very thing the caller changes moved under it: their request was decided on
                // a state that no longer exists, so they should look again.
                throw DomainException.Conflict("conflict", $"the {e.AggregateType} changed while this request ran (another request came first); look at it again, then retry");
            }
            catch (IdempotencyKeyReusedException)
            {
                throw DomainException.Invalid("idempotency_key_reused", "Idempotency-Key", "this Idempotency-Key was already used for a different request");
            }
        }
        var last = results.Max(r => r.LastEventId);
        await WaitForCatalogAsync(last, ct).ConfigureAwait(false);
        return last;
    }

    /// <summary>
    /// The scheduler's bookkeeping on an env: placing and stopping instances, and a rollout's
    /// progress (the switch, its end, its failure). A command decided again on top of it decides
    /// what the caller asked on the state as it is now.
    /// </summary>
    private static readonly HashSet<string> SchedulerBookkeeping =
        [.. EventNames.NodeDesiredState, EventNames.TrafficSwitched, EventNames.DeploymentCompleted, EventNames.DeploymentFailed];

    /// <summary>Whether every event appended to the change's aggregate since its decision is the scheduler's.</summary>
    private async Task<bool> MovedOnlyByPlacementAsync(Change change, CancellationToken ct)
    {
        if (change.ExpectedVersion < 0)
        {
            return false;
        }
        var since = await store.ReadAggregateAsync(change.AggregateType, change.AggregateId, change.ExpectedVersion, ct).ConfigureAwait(false);
        return since.Count > 0 && since.All(e => SchedulerBookkeeping.Contains(e.EventType));
    }

    /// <summary>
    /// The catalog's position (the last event it applied) once it has passed <paramref name="eventId"/>;
    /// a <see cref="NotReadyException"/> when it does not within the read timeout.
    /// </summary>
    public async Task<long> CatalogPositionAsync(long eventId, CancellationToken ct)
    {
        await WaitForCatalogAsync(eventId, ct).ConfigureAwait(false);
        var checkpoints = await projections.GetCheckpointsAsync([CatalogProjection.ProjectionName], ct).ConfigureAwait(false);
        return checkpoints.GetValueOrDefault(CatalogProjection.ProjectionName);
    }

    private async Task WaitForCatalogAsync(long eventId, CancellationToken ct)
    {
        if (!await _waiter.WaitAsync([CatalogProjection.ProjectionName], eventId, readTimeout, ct).ConfigureAwait(false))
        {
            throw new NotReadyException($"the change was recorded (event {eventId}) but the catalog has not caught up yet; read it again shortly");
        }
    }

    /// <summary>
    /// Keys are per token, so two callers never collide, and per request: the same key with another
    /// body is another request (it runs), never a silent replay of the first.
    /// </summary>
    private static string ScopedKey(Principal actor, string key, string fingerprint) =>
        $"{actor.TokenId:N}:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key + "\n" + fingerprint)))}";
}
