using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Trc.ControlPlane.Api;

/// <summary>One item of a Server-Sent Events stream: its id (a cursor), its type and its JSON.</summary>
/// <param name="Id">The cursor after this item; a client resumes with it as <c>Last-Event-ID</c>.</param>
/// <param name="Type">The <c>event:</c> field.</param>
/// <param name="Data">The <c>data:</c> field, one line of JSON.</param>
internal readonly record struct SseItem(long Id, string Type, string Data);

/// <summary>
/// The streams' common loop (the change stream, log streams): read a page after the cursor, write
/// each item as <c>id</c>, <c>event</c>, <c>data</c>, move the cursor (also past items a filter
/// skipped), wait for more, and write a comment every 15 s so proxies keep an idle stream open.
/// </summary>
internal static class ServerSentEvents
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    /// <summary>Streams until the client goes away.</summary>
    /// <param name="http">The request.</param>
    /// <param name="cursor">Where to start (items after it).</param>
    /// <param name="read">A page after a cursor: its items, the next cursor, and whether it was full (then no wait).</param>
    /// <param name="wait">Waits until items after a cursor may exist, or the time passes.</param>
    /// <param name="ct">The request's cancellation.</param>
    public static async Task StreamAsync(HttpContext http, long cursor,
        Func<long, CancellationToken, Task<(IReadOnlyList<SseItem> Items, long Next, bool Full)>> read,
        Func<long, TimeSpan, CancellationToken, Task> wait, CancellationToken ct)
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        await http.Response.Body.FlushAsync(ct);
        var lastWrite = DateTime.UtcNow;
        while (!ct.IsCancellationRequested)
        {
            var (items, next, full) = await read(cursor, ct);
            if (items.Count > 0)
            {
                var sb = new StringBuilder();
                foreach (var item in items)
                {
                    sb.Append("id: ").Append(item.Id.ToString(CultureInfo.InvariantCulture)).Append('\n')
                      .Append("event: ").Append(item.Type).Append('\n')
                      .Append("data: ").Append(item.Data).Append("\n\n");
                }
                await http.Response.WriteAsync(sb.ToString(), ct);
                await http.Response.Body.FlushAsync(ct);
                lastWrite = DateTime.UtcNow;
            }
            cursor = next;
            if (!full)
            {
                await wait(cursor, KeepAlive, ct);
            }
            if (DateTime.UtcNow - lastWrite > KeepAlive)
            {
                await http.Response.WriteAsync(": keep-alive\n\n", ct);
                await http.Response.Body.FlushAsync(ct);
                lastWrite = DateTime.UtcNow;
            }
        }
    }
}
