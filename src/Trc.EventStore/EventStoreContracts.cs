using System.Text.Json;

namespace Trc.EventStore;

/// <summary>One event to append: its type, its JSON payload, and an optional routing key.</summary>
/// <param name="EventType">The event's type name. Names are only ever added, never renamed or reused.</param>
/// <param name="PayloadJson">The payload as JSON text.</param>
/// <param name="RoutingKey">Who the event is for, when that matters to the change feed (a node id, say).</param>
public sealed record EventData(string EventType, string PayloadJson, string? RoutingKey = null);

/// <summary>The version an append expects its aggregate to be at.</summary>
public static class ExpectedVersion
{
    /// <summary>The aggregate must not exist yet.</summary>
    public const int NoStream = 0;

    /// <summary>Append whatever the aggregate's version (no concurrency check).</summary>
    public const int Any = -1;
}

/// <summary>Appends events to one aggregate, atomically.</summary>
/// <param name="AggregateType">The aggregate's type (<c>app</c>, <c>route</c>, ...).</param>
/// <param name="AggregateId">The aggregate's id.</param>
/// <param name="ExpectedVersion">The number of events the aggregate must have now, or <see cref="EventStore.ExpectedVersion.Any"/>.</param>
/// <param name="Events">The events, in order; they get <c>aggregate_seq</c> = version+1..version+n.</param>
/// <param name="ActorId">Who caused them (a user, token or service principal).</param>
/// <param name="IdempotencyKey">When set, a retried append with the same key returns the first result and adds nothing.</param>
/// <param name="TenantId">The tenant (org) the aggregate belongs to, for tenant-scoped feeds; null for platform aggregates.</param>
public sealed record AppendRequest(
    string AggregateType,
    Guid AggregateId,
    int ExpectedVersion,
    IReadOnlyList<EventData> Events,
    Guid? ActorId = null,
    string? IdempotencyKey = null,
    Guid? TenantId = null)
{
    /// <summary>Most aggregates in one atomic append.</summary>
    public const int MaxAggregatesPerBatch = 16;

    /// <summary>
    /// Checks a batch for <see cref="IEventStore.AppendAsync(IReadOnlyList{AppendRequest}, CancellationToken)"/>:
    /// 1 to <see cref="MaxAggregatesPerBatch"/> requests, distinct aggregates, at most
    /// <see cref="MaxEvents"/> events in all, and an idempotency key only on the first request.
    /// </summary>
    public static void ValidateBatch(IReadOnlyList<AppendRequest> requests)
    {
        if (requests is null || requests.Count == 0 || requests.Count > MaxAggregatesPerBatch)
        {
            throw new ArgumentException($"a batch holds 1 to {MaxAggregatesPerBatch} appends, not {requests?.Count ?? 0}", nameof(requests));
        }
        var seen = new HashSet<(string, Guid)>();
        var total = 0;
        for (var i = 0; i < requests.Count; i++)
        {
            var request = requests[i] ?? throw new ArgumentException($"requests[{i}] is null", nameof(requests));
            request.Validate();
            if (!seen.Add((request.AggregateType, request.AggregateId)))
            {
                throw new ArgumentException($"requests[{i}] appends to {request.AggregateType} {request.AggregateId} again: one request per aggregate", nameof(requests));
            }
            if (i > 0 && request.IdempotencyKey is not null)
            {
                throw new ArgumentException($"requests[{i}].IdempotencyKey: only the first request of a batch carries the key (it names the whole batch)", nameof(requests));
            }
            total += request.Events.Count;
        }
        if (total > MaxEvents)
        {
            throw new ArgumentException($"a batch holds at most {MaxEvents} events, not {total}", nameof(requests));
        }
    }

    /// <summary>Most events in one append.</summary>
    public const int MaxEvents = 1000;

    /// <summary>Largest payload of one event, in UTF-16 characters of JSON text.</summary>
    public const int MaxPayloadLength = 1 << 20;

    /// <summary>Longest type names, routing and idempotency keys.</summary>
    public const int MaxNameLength = 200;

    /// <summary>Checks the request's shape; throws <see cref="ArgumentException"/> naming the offending field.</summary>
    public void Validate()
    {
        CheckName(AggregateType, nameof(AggregateType));
        if (ExpectedVersion < EventStore.ExpectedVersion.Any)
        {
            throw new ArgumentException($"{nameof(ExpectedVersion)} must be -1 (any) or at least 0, not {ExpectedVersion}", nameof(ExpectedVersion));
        }
        if (Events is null || Events.Count == 0 || Events.Count > MaxEvents)
        {
            throw new ArgumentException($"{nameof(Events)} must hold 1 to {MaxEvents} events, not {Events?.Count ?? 0}", nameof(Events));
        }
        if (IdempotencyKey is not null)
        {
            CheckName(IdempotencyKey, nameof(IdempotencyKey));
        }
        for (var i = 0; i < Events.Count; i++)
        {
            var e = Events[i] ?? throw new ArgumentException($"{nameof(Events)}[{i}] is null", nameof(Events));
            CheckName(e.EventType, $"{nameof(Events)}[{i}].{nameof(EventData.EventType)}");
            if (e.RoutingKey is not null)
            {
                CheckName(e.RoutingKey, $"{nameof(Events)}[{i}].{nameof(EventData.RoutingKey)}");
            }
            if (e.PayloadJson is null || e.PayloadJson.Length > MaxPayloadLength)
            {
                throw new ArgumentException($"{nameof(Events)}[{i}].{nameof(EventData.PayloadJson)} must be JSON of at most {MaxPayloadLength} characters", nameof(Events));
            }
            try
            {
                using var _ = JsonDocument.Parse(e.PayloadJson);
            }
            catch (JsonException ex)
            {
                throw new ArgumentException($"{nameof(Events)}[{i}].{nameof(EventData.PayloadJson)} is not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1})", nameof(Events));
            }
        }
    }

    private static void CheckName(string? value, string field)
    {
        if (string.IsNullOrEmpty(value) || value.Length > MaxNameLength)
        {
            throw new ArgumentException($"{field} must be 1 to {MaxNameLength} characters", field);
        }
        foreach (var c in value)
        {
            if (char.IsControl(c))
            {
                throw new ArgumentException($"{field} must not contain control characters", field);
            }
        }
    }
}

/// <summary>What an append did.</summary>
/// <param name="FirstEventId">Global id of the first event appended (or first appended by the original request, for a replay).</param>
/// <param name="LastEventId">Global id of the last one; wait for projections to pass this for read-your-writes.</param>
/// <param name="NewVersion">The aggregate's version after the append.</param>
/// <param name="WasReplay">True when the idempotency key had been used: nothing new was appended.</param>
public sealed record AppendResult(long FirstEventId, long LastEventId, int NewVersion, bool WasReplay);

/// <summary>An event as stored.</summary>
/// <param name="EventId">Global, gap-free-for-readers position in the log.</param>
/// <param name="OccurredAt">When it was appended (the appending transaction's time).</param>
/// <param name="AggregateType">The aggregate's type.</param>
/// <param name="AggregateId">The aggregate's id.</param>
/// <param name="AggregateSeq">Its sequence within the aggregate, from 1.</param>
/// <param name="EventType">The event's type.</param>
/// <param name="ActorId">Who caused it.</param>
/// <param name="PayloadJson">The payload (Postgres may normalise whitespace and key order).</param>
/// <param name="RoutingKey">The routing key, if any.</param>
/// <param name="TenantId">The tenant (org), if any.</param>
public sealed record StoredEvent(
    long EventId,
    DateTimeOffset OccurredAt,
    string AggregateType,
    Guid AggregateId,
    int AggregateSeq,
    string EventType,
    Guid? ActorId,
    string PayloadJson,
    string? RoutingKey,
    Guid? TenantId = null);

/// <summary>Which events a reader wants. Null members mean "any".</summary>
/// <param name="EventTypes">Only these event types.</param>
/// <param name="RoutingKey">Only events with this routing key.</param>
/// <param name="TenantId">Only events of this tenant.</param>
public sealed record EventFilter(IReadOnlyCollection<string>? EventTypes = null, string? RoutingKey = null, Guid? TenantId = null)
{
    /// <summary>Every event.</summary>
    public static EventFilter All { get; } = new();

    /// <summary>True when the filter lets everything through.</summary>
    public bool IsEmpty => (EventTypes is null || EventTypes.Count == 0) && RoutingKey is null && TenantId is null;
}

/// <summary>A page of the log.</summary>
/// <param name="Events">Matching events after the cursor, in <see cref="StoredEvent.EventId"/> order.</param>
/// <param name="NextCursor">
/// Where to continue: the last event returned, or — when fewer than the limit matched — the
/// highest id the read covered, so a filtered reader does not scan the same range again.
/// </param>
public sealed record EventPage(IReadOnlyList<StoredEvent> Events, long NextCursor);

/// <summary>Base of the store's own errors.</summary>
public abstract class EventStoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The aggregate was not at the expected version: another command won the race.</summary>
public sealed class ConcurrencyConflictException(string aggregateType, Guid aggregateId, int expectedVersion, int? actualVersion, Exception? inner = null)
    : EventStoreException(
        $"{aggregateType} {aggregateId} is at version {(actualVersion is { } v ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : "newer than expected")}, not {expectedVersion}: another command changed it first",
        inner)
{
    /// <summary>The aggregate's type.</summary>
    public string AggregateType { get; } = aggregateType;

    /// <summary>The aggregate's id.</summary>
    public Guid AggregateId { get; } = aggregateId;

    /// <summary>The version the append expected.</summary>
    public int ExpectedVersion { get; } = expectedVersion;

    /// <summary>The version found, when known.</summary>
    public int? ActualVersion { get; } = actualVersion;
}

/// <summary>The idempotency key was already used by an append to a different aggregate.</summary>
public sealed class IdempotencyKeyReusedException(string key, string aggregateType, Guid aggregateId)
    : EventStoreException($"the idempotency key was already used for {aggregateType} {aggregateId}")
{
    /// <summary>The key.</summary>
    public string Key { get; } = key;
}

/// <summary>The append-only log: append to one aggregate, read an aggregate, read and follow the whole log.</summary>
public interface IEventStore : IAsyncDisposable
{
    /// <summary>Creates or upgrades the schema (numbered migrations); safe to call from several processes at once.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Appends events to one aggregate in one transaction. Throws <see cref="ConcurrencyConflictException"/>
    /// when the aggregate is not at <see cref="AppendRequest.ExpectedVersion"/>.
    /// </summary>
    Task<AppendResult> AppendAsync(AppendRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Appends to several aggregates in one transaction: all appends happen or none does. Each
    /// request has its own expected version; the first may carry the batch's idempotency key.
    /// Results come in request order. This is how a command keeps an invariant that spans
    /// aggregates (a hostname claimed platform-wide and counted against an org's quota).
    /// </summary>
    Task<IReadOnlyList<AppendResult>> AppendAsync(IReadOnlyList<AppendRequest> requests, CancellationToken cancellationToken);

    /// <summary>The last event id of the batch appended with this idempotency key, or null when none was.</summary>
    Task<long?> FindIdempotencyKeyAsync(string key, CancellationToken cancellationToken);

    /// <summary>One aggregate's events with sequence above <paramref name="afterSeq"/>, in order.</summary>
    Task<IReadOnlyList<StoredEvent>> ReadAggregateAsync(string aggregateType, Guid aggregateId, int afterSeq, CancellationToken cancellationToken);

    /// <summary>
    /// Events after <paramref name="after"/>, up to <paramref name="limit"/>. Never skips or repeats an
    /// event: only ids below the point every older transaction has finished are handed out (ADR 0017).
    /// </summary>
    Task<EventPage> ReadAllAsync(long after, int limit, EventFilter filter, CancellationToken cancellationToken);

    /// <summary>
    /// The highest event id a reader may see now. It can trail the last committed append while
    /// older transactions are still open; for read-your-writes, wait for the id the append returned.
    /// </summary>
    Task<long> GetHeadAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Waits until an event after <paramref name="after"/> may be readable, or <paramref name="maxWait"/>
    /// passes. Returns true when woken by new events. Callers re-read either way: a wake-up is a hint.
    /// </summary>
    Task<bool> WaitForEventsAsync(long after, TimeSpan maxWait, CancellationToken cancellationToken);
}
