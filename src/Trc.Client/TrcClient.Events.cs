using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Trc.Client.Events;
using Trc.Core.Api;

namespace Trc.Client;

// The event stream: Server-Sent Events, resumed after a dropped connection.
public sealed partial class TrcClient
{
    /// <summary>
    /// Streams events as they are appended, starting after <see cref="EventQuery.After"/>, until
    /// <paramref name="ct"/> is cancelled. A failure of the first connection is thrown (a wrong URL
    /// or token should not be retried). Once connected, a dropped or silent connection, or a 5xx
    /// answer to a reconnect, is retried with a bounded exponential backoff, resuming after the
    /// last event received (<c>Last-Event-ID</c>), so no event is skipped or repeated; a 4xx answer
    /// (a revoked token, say) is thrown. <see cref="EventStreamOptions.MaxReconnectAttempts"/> counts
    /// reconnects that failed in a row: one that opens the stream again resets it, so a quiet stream
    /// behind a proxy that cuts connections now and then lives on. The backoff starts over once the
    /// stream delivers an event or stays up for <see cref="EventStreamOptions.MaxReconnectDelay"/>.
    /// </summary>
    public IAsyncEnumerable<EventView> StreamEventsAsync(EventQuery? query = null, EventStreamOptions? options = null, CancellationToken ct = default)
    {
        query ??= new EventQuery();
        // The first connection starts at query.After; a resumed one says where it stopped in
        // Last-Event-ID, which the server reads when the query has no "after".
        return StreamAsync(lastId => EventsPath(query, stream: true) + QueryString(query, lastId is null ? query.After : null), ParseEvent, e => e.Id, "event", options, ct);
    }

    /// <summary>The stream behind <see cref="StreamEventsAsync"/> and the log stream: connect, parse, resume after the last id.</summary>
    /// <param name="pathFor">The path and query for a connection, given the id to resume after (null for the first).</param>
    /// <param name="parse">Turns one event into the item yielded.</param>
    /// <param name="idOf">The item's id, when the event carried none.</param>
    /// <param name="what">What the items are, for messages ("event", "log line").</param>
    /// <param name="options">Reconnect settings.</param>
    /// <param name="ct">Ends the stream.</param>
    private async IAsyncEnumerable<T> StreamAsync<T>(Func<long?, string> pathFor, Func<ServerSentEvent, T> parse, Func<T, long> idOf, string what, EventStreamOptions? options, [EnumeratorCancellation] CancellationToken ct)
    {
        options ??= EventStreamOptions.Default;
        long? lastId = null;
        Exception? lastError = null;
        // attempt: reconnects since the stream last worked, for the backoff; failures: reconnects
        // in a row that did not open the stream, for MaxReconnectAttempts.
        var attempt = 0;
        var failures = 0;
        var first = true;
        var buffer = new byte[16384];
        var events = new List<ServerSentEvent>();
        while (true)
        {
            if (!first)
            {
                attempt++;
                failures++;
                if (options.MaxReconnectAttempts is { } max && failures > max)
                {
                    throw lastError ?? new TrcConnectionException($"the {what} stream from {BaseAddress} ended and could not be resumed", BaseAddress);
                }
                await BackoffAsync(options, attempt, lastId, lastError, ct).ConfigureAwait(false);
            }
            var (response, error) = await OpenStreamAsync(pathFor(lastId), lastId, ct).ConfigureAwait(false);
            if (error is not null)
            {
                if (first || !IsTransient(error))
                {
                    throw error;
                }
                lastError = error;
                continue;
            }
            first = false;
            lastError = null;
            var opened = options.TimeProvider.GetTimestamp();
            using (response)
            {
                var (stream, openError) = await ReadStreamAsync(response!, ct).ConfigureAwait(false);
                if (stream is null)
                {
                    lastError = openError;
                    continue;
                }
                failures = 0;
                await using var streamScope = stream.ConfigureAwait(false);
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var parser = new ServerSentEventParser();
                while (true)
                {
                    var (read, readError) = await ReadAsync(stream, buffer, idle, options.IdleTimeout, what, ct).ConfigureAwait(false);
                    if (readError is not null || read == 0)
                    {
                        lastError = readError;
                        break;
                    }
                    var status = parser.Feed(buffer.AsSpan(0, read), events);
                    foreach (var e in events)
                    {
                        var view = parse(e);
                        lastId = long.TryParse(e.Id, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : idOf(view);
                        attempt = 0;
                        yield return view;
                    }
                    events.Clear();
                    if (status == ServerSentEventStatus.TooLarge)
                    {
                        throw new TrcApiException(response!.StatusCode, null,
                            $"the {what} stream from {BaseAddress} sent an event larger than {parser.MaxEventBytes / (1024 * 1024)} MiB", BaseAddress);
                    }
                }
                // A connection that stayed up a while was a working stream (a proxy cutting idle
                // connections, say): come back quickly. One that dropped at once keeps backing off.
                if (options.TimeProvider.GetElapsedTime(opened) >= options.MaxReconnectDelay)
                {
                    attempt = 0;
                }
            }
        }
    }

    private static bool IsTransient(TrcException e) => e is TrcConnectionException or TrcApiException { IsTransient: true };

    private static async Task BackoffAsync(EventStreamOptions options, int attempt, long? lastId, Exception? error, CancellationToken ct)
    {
        var exponential = options.InitialReconnectDelay.Ticks * Math.Pow(2, Math.Min(attempt - 1, 30));
        var bounded = Math.Min(options.MaxReconnectDelay.Ticks, exponential);
        // 80-100% of the bound, so that many clients cut at once do not come back in lockstep.
        var delay = TimeSpan.FromTicks((long)(bounded * (0.8 + 0.2 * Random.Shared.NextDouble())));
        options.Reconnecting?.Invoke(new EventStreamReconnect(attempt, delay, lastId, error));
        await Task.Delay(delay, options.TimeProvider, ct).ConfigureAwait(false);
    }

    /// <summary>Connects to the stream; the answer's headers arrive within the request timeout.</summary>
    private async Task<(HttpResponseMessage? Response, TrcException? Error)> OpenStreamAsync(string pathAndQuery, long? lastId, CancellationToken ct)
    {
        using var request = NewRequest(HttpMethod.Get, pathAndQuery, null, null);
        request.Headers.Accept.Clear();
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/problem+json"));
        request.Headers.CacheControl = new CacheControlHeaderValue { NoCache = true };
        if (lastId is { } id)
        {
            request.Headers.TryAddWithoutValidation("Last-Event-ID", id.ToString(CultureInfo.InvariantCulture));
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(_options.RequestTimeout);
        HttpResponseMessage? response = null;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var error = await ErrorAsync(response, deadline.Token).ConfigureAwait(false);
                response.Dispose();
                return (null, error);
            }
            if (response.Content.Headers.ContentType?.MediaType != "text/event-stream")
            {
                var media = response.Content.Headers.ContentType?.MediaType;
                response.Dispose();
                return (null, new TrcApiException(response.StatusCode, null,
                    $"the server at {BaseAddress} answered the stream request with {Describe(media)}, not text/event-stream; is a proxy buffering or rewriting it?", BaseAddress));
            }
            return (response, null);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            response?.Dispose();
            return (null, new TrcConnectionException($"the trc server at {BaseAddress} did not open the stream within {_options.RequestTimeout.TotalSeconds:0.#} s", BaseAddress));
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            response?.Dispose();
            return (null, ConnectionFailed(e));
        }
    }

    private async Task<(Stream? Stream, TrcException? Error)> ReadStreamAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            return (await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), null);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return (null, ConnectionFailed(e));
        }
    }

    /// <summary>One read, bounded by the idle timeout; a transport failure is returned, not thrown.</summary>
    private async Task<(int Read, TrcException? Error)> ReadAsync(Stream stream, byte[] buffer, CancellationTokenSource idle, TimeSpan idleTimeout, string what, CancellationToken ct)
    {
        idle.CancelAfter(idleTimeout);
        try
        {
            return (await stream.ReadAsync(buffer, idle.Token).ConfigureAwait(false), null);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return (0, new TrcConnectionException($"the {what} stream from {BaseAddress} was silent for {idleTimeout.TotalSeconds:0.#} s", BaseAddress));
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return (0, ConnectionFailed(e));
        }
        finally
        {
            // The clock only runs while reading: a slow consumer is not a dead connection.
            if (!idle.IsCancellationRequested)
            {
                idle.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }
    }

    private EventView ParseEvent(ServerSentEvent e) => ParseJson<EventView>(e, "event", "event");

    /// <summary>One event's data as <typeparamref name="T"/>; a <see cref="TrcApiException"/> naming the <paramref name="stream"/> and the <paramref name="item"/> expected when it is not one.</summary>
    private T ParseJson<T>(ServerSentEvent e, string stream, string item)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(e.Data, ApiJson.ClientOptions) ?? throw new JsonException("null");
        }
        catch (JsonException)
        {
            throw new TrcApiException(System.Net.HttpStatusCode.OK, null,
                $"the {stream} stream from {BaseAddress} sent an event{(e.Id is null ? "" : $" (id {e.Id})")} that is not a trc {item} as JSON", BaseAddress);
        }
    }
}
