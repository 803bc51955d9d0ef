using System.Security.Cryptography;
using System.Text;
using Trc.ControlPlane.Catalog;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Auth;

/// <summary>Who is calling: a token, its role and its org.</summary>
/// <param name="TokenId">The token's id (the actor of every event it causes).</param>
/// <param name="TokenName">Its name.</param>
/// <param name="Role">Its role.</param>
/// <param name="OrgId">Its org, null for the platform admin.</param>
/// <param name="OrgName">Its org's name.</param>
public sealed record Principal(Guid TokenId, string TokenName, string Role, Guid? OrgId, string? OrgName)
{
    /// <summary>Whether this is the platform admin.</summary>
    public bool IsAdmin => Role == Roles.Admin;

    /// <summary>Whether this is the shared node token.</summary>
    public bool IsNode => Role == Roles.Node;
}

/// <summary>
/// API tokens: <c>trc_&lt;id&gt;_&lt;secret&gt;</c>. The id finds the token; only a SHA-256 hash of
/// the secret is stored (in its creation event and the catalog), and the secret is shown once.
/// </summary>
public static class TokenCodec
{
    /// <summary>A new token: its id, the string to hand out once, and the hash to store.</summary>
    public static (Guid Id, string Token, string SecretHash) Create()
    {
        var id = Guid.NewGuid();
        var secret = Base64UrlNoPadding(RandomNumberGenerator.GetBytes(32));
        return (id, $"trc_{id:N}_{secret}", Hash(secret));
    }

    /// <summary>Splits a presented token; false when it is not shaped like one of ours.</summary>
    public static bool TryParse(string? token, out Guid id, out string secret)
    {
        id = Guid.Empty;
        secret = "";
        if (token is null || token.Length != 4 + 32 + 1 + 43 || !token.StartsWith("trc_", StringComparison.Ordinal) || token[36] != '_')
        {
            return false;
        }
        secret = token[37..];
        return Guid.TryParseExact(token.AsSpan(4, 32), "N", out id);
    }

    /// <summary>SHA-256 of a secret, lower-case hex.</summary>
    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>Compares a presented secret with a stored hash in constant time.</summary>
    public static bool Matches(string secret, string storedHash) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(secret)), Encoding.ASCII.GetBytes(storedHash));

    private static string Base64UrlNoPadding(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>Resolves a bearer token to a principal, or nothing (unknown, malformed, revoked: the same).</summary>
public sealed class Authenticator(CatalogReader catalog)
{
    /// <summary>The principal of an <c>Authorization: Bearer</c> header value, or null.</summary>
    public async Task<Principal?> AuthenticateAsync(string? authorization, CancellationToken ct)
    {
        const string scheme = "Bearer ";
        if (authorization is null || !authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        if (!TokenCodec.TryParse(authorization[scheme.Length..].Trim(), out var id, out var secret))
        {
            return null;
        }
        var row = await catalog.TokenAsync(id, ct).ConfigureAwait(false);
        if (row is null || row.Revoked || !TokenCodec.Matches(secret, row.SecretHash))
        {
            return null;
        }
        return new Principal(row.Id, row.Name, row.Role, row.OrgId, row.OrgName);
    }
}
