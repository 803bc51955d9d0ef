namespace Trc.Client.Logs;

/// <summary>Which of an env's log lines to read or stream.</summary>
/// <param name="Process">Only this process type.</param>
/// <param name="Instance">Only this instance.</param>
/// <param name="Since">Only lines written from this time on: an RFC 3339 time (<c>2025-01-31T12:00:00Z</c>) or a duration back from now (<c>10m</c>, <c>2h</c>, <c>1d</c>).</param>
/// <param name="After">Only lines after this id (a page's <c>next_cursor</c>, or a streamed line's id).</param>
/// <param name="Limit">Most lines per page (<see cref="Core.Api.LogLimits.DefaultPageLines"/> when null; at most <see cref="Core.Api.LogLimits.MaxPageLines"/>).</param>
public sealed record LogQuery(string? Process = null, Guid? Instance = null, string? Since = null, long? After = null, int? Limit = null);
