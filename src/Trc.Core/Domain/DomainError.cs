namespace Trc.Core.Domain;

/// <summary>Why a command was refused; the API maps it to an HTTP status.</summary>
public enum DomainErrorKind
{
    /// <summary>The request is malformed or breaks a rule (400, 422).</summary>
    Invalid,

    /// <summary>The object does not exist, or the caller may not know that it does (404).</summary>
    NotFound,

    /// <summary>It clashes with the current state: a name taken, a hostname bound elsewhere (409).</summary>
    Conflict,

    /// <summary>A quota would be exceeded (403, with the quota, limit and request).</summary>
    QuotaExceeded,

    /// <summary>The caller's role may not do this (403).</summary>
    Forbidden,
}

/// <summary>
/// A refused command: a stable machine-readable <see cref="Code"/>, the offending
/// <see cref="Field"/> when there is one, and a message for people.
/// </summary>
public sealed class DomainException(DomainErrorKind kind, string code, string message, string? field = null)
    : Exception(message)
{
    /// <summary>The kind, which decides the HTTP status.</summary>
    public DomainErrorKind Kind { get; } = kind;

    /// <summary>A stable code (<c>hostname_taken</c>, <c>quota_exceeded</c>, ...): never renamed.</summary>
    public string Code { get; } = code;

    /// <summary>The request field at fault (<c>listen_port</c>), or null.</summary>
    public string? Field { get; } = field;

    /// <summary>Extra machine-readable facts (a quota's limit and request).</summary>
    public IReadOnlyDictionary<string, object> Extensions { get; init; } = new Dictionary<string, object>();

    /// <summary>A 400/422 with a field.</summary>
    public static DomainException Invalid(string code, string field, string message) => new(DomainErrorKind.Invalid, code, message, field);

    /// <summary>A 404.</summary>
    public static DomainException NotFound(string what) => new(DomainErrorKind.NotFound, "not_found", $"{what} not found");

    /// <summary>A 409.</summary>
    public static DomainException Conflict(string code, string message, string? field = null) => new(DomainErrorKind.Conflict, code, message, field);
}
