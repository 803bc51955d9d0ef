using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace Trc.Testing.Registry;

/// <summary>How the JWT header names the signing key for the registry.</summary>
public enum TokenKeyReference
{
    /// <summary>An <c>x5c</c> chain: the self-signed certificate, which is also the registry's root bundle.</summary>
    X5c,

    /// <summary>A <c>kid</c> holding the libtrust fingerprint of the key of a certificate in the root bundle.</summary>
    LibtrustKid,
}

/// <summary>Which fields the token endpoint answers with (the spec lets a server send either or both).</summary>
public enum TokenResponseShape
{
    Both,
    TokenOnly,
    AccessTokenOnly,
}

/// <summary>Settings of a <see cref="TokenServer"/>; the defaults suit a registry it fronts.</summary>
public sealed record TokenServerOptions
{
    public string User { get; init; } = "trc-user";

    public string Password { get; init; } = "trc-secret-password";

    /// <summary>When true a request without credentials gets a token granting pull only; otherwise it gets 401.</summary>
    public bool AllowAnonymousPull { get; init; }

    public string Service { get; init; } = "trc-test-registry";

    public string Issuer { get; init; } = "trc-test-token-issuer";

    public TimeSpan TokenLifetime { get; init; } = TimeSpan.FromMinutes(5);

    public TokenKeyReference KeyReference { get; init; } = TokenKeyReference.X5c;

    public TokenResponseShape ResponseShape { get; init; } = TokenResponseShape.Both;
}

/// <summary>One resource scope, <c>type:name:action,action</c> (the name may hold ':', e.g. a port).</summary>
public sealed record TokenScope(string Type, string Name, IReadOnlyList<string> Actions)
{
    public static TokenScope? TryParse(string text)
    {
        var first = text.IndexOf(':');
        var last = text.LastIndexOf(':');
        if (first <= 0 || last == first)
        {
            return null;
        }
        return new TokenScope(text[..first], text[(first + 1)..last], text[(last + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries));
    }

    public static TokenScope Repository(string name, params string[] actions) => new("repository", name, actions);

    public override string ToString() => $"{Type}:{Name}:{string.Join(',', Actions)}";
}

/// <summary>A request the token endpoint received, as a test asserts on it.</summary>
/// <param name="Authorization">The Authorization header as received, or null: did the client send credentials here?</param>
/// <param name="User">The Basic user name, when there was one.</param>
/// <param name="Status">What the endpoint answered.</param>
public sealed record TokenRequest(
    string Method,
    string Path,
    string Query,
    string? Service,
    IReadOnlyList<TokenScope> Scopes,
    string? Authorization,
    string? User,
    int Status)
{
    public bool HadAuthorization => Authorization is not null;
}

/// <summary>
/// A Docker token-auth server (the <c>realm</c> of a <c>Bearer</c> challenge) for docker-registry 2.8's
/// <c>auth: token</c>. It checks HTTP Basic credentials (GET) or an OAuth2 password grant (POST) and
/// mints an ES256 JWT with iss, sub, aud (a string: distribution 2.8 parses <c>aud</c> as one), exp,
/// nbf, iat, jti and <c>access</c> for the granted part of every requested scope. The registry trusts
/// it through <see cref="RootCertificatePem"/>, written as its <c>rootcertbundle</c>.
/// </summary>
public sealed class TokenServer : IAsyncDisposable
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly X509Certificate2 _certificate;
    private readonly LoopbackHttpServer _http;
    private readonly List<TokenRequest> _requests = [];
    private int _issued;

    public TokenServer(TokenServerOptions? options = null)
    {
        Options = options ?? new TokenServerOptions();
        var request = new CertificateRequest("CN=trc test token issuer", _key, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        _certificate = request.CreateSelfSigned(now.AddHours(-1), now.AddDays(1));
        _http = new LoopbackHttpServer(IPAddress.Loopback, HandleAsync);
    }

    public TokenServerOptions Options { get; }

    /// <summary>The token endpoint, as the registry's challenge names it.</summary>
    public Uri Realm => new($"http://127.0.0.1:{_http.Port}/token");

    /// <summary>The self-signed certificate of the signing key, PEM: the registry's rootcertbundle.</summary>
    public string RootCertificatePem => _certificate.ExportCertificatePem();

    /// <summary>The libtrust key id of the signing key (what a <c>kid</c> header must hold).</summary>
    public string LibtrustKeyId => LibtrustKeyIdOf(_key.ExportSubjectPublicKeyInfo());

    /// <summary>While set, every token request is answered with this status and no token.</summary>
    public int? FailWithStatus { get; set; }

    /// <summary>
    /// Decides the actions granted on a scope, given the authenticated user (null: anonymous). By
    /// default a user gets what it asked for and anonymous gets pull (if allowed) or a 401.
    /// </summary>
    public Func<string?, TokenScope, IReadOnlyList<string>>? Authorize { get; set; }

    public int TokensIssued => Volatile.Read(ref _issued);

    /// <summary>A snapshot of the requests received so far, oldest first.</summary>
    public IReadOnlyList<TokenRequest> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    public void ClearRequests()
    {
        lock (_requests)
        {
            _requests.Clear();
        }
    }

    /// <summary>Mints a token directly (e.g. to give a test one for the wrong repository, audience or time).</summary>
    public string IssueToken(
        string? subject,
        IEnumerable<TokenScope> access,
        TimeSpan? lifetime = null,
        string? audience = null,
        string? issuer = null,
        DateTimeOffset? now = null)
    {
        var issuedAt = (now ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds();
        var header = Json(w =>
        {
            w.WriteString("typ", "JWT");
            w.WriteString("alg", "ES256");
            if (Options.KeyReference == TokenKeyReference.X5c)
            {
                w.WriteStartArray("x5c");
                w.WriteStringValue(Convert.ToBase64String(_certificate.RawData));
                w.WriteEndArray();
            }
            else
            {
                w.WriteString("kid", LibtrustKeyId);
            }
        });
        var claims = Json(w =>
        {
            w.WriteString("iss", issuer ?? Options.Issuer);
            w.WriteString("sub", subject ?? "");
            w.WriteString("aud", audience ?? Options.Service);
            w.WriteNumber("exp", issuedAt + (long)(lifetime ?? Options.TokenLifetime).TotalSeconds);
            w.WriteNumber("nbf", issuedAt - 1);
            w.WriteNumber("iat", issuedAt);
            w.WriteString("jti", Guid.NewGuid().ToString("N"));
            w.WriteStartArray("access");
            foreach (var scope in access)
            {
                w.WriteStartObject();
                w.WriteString("type", scope.Type);
                w.WriteString("name", scope.Name);
                w.WriteStartArray("actions");
                foreach (var action in scope.Actions)
                {
                    w.WriteStringValue(action);
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
        var signingInput = Base64Url(header) + "." + Base64Url(claims);
        // .NET signs ECDSA as IEEE P1363 (r || s), which is JWS's ES256 form and what libtrust verifies.
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256);
        Interlocked.Increment(ref _issued);
        return signingInput + "." + Base64Url(signature);
    }

    private Task<WireResponse> HandleAsync(WireRequest request, CancellationToken ct)
    {
        var form = request.Method == "POST" ? new WireRequest("POST", "/?" + Encoding.UTF8.GetString(request.Body), request.Head, []) : request;
        var service = form.QueryValues("service").FirstOrDefault();
        // A GET may repeat scope; a POST (and some GETs) join scopes with spaces.
        var scopes = form.QueryValues("scope")
            .SelectMany(s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(TokenScope.TryParse)
            .OfType<TokenScope>()
            .ToList();
        var authorization = request.Head.Get("Authorization");
        var (status, response, user) = Decide(request, form, authorization, scopes);
        lock (_requests)
        {
            _requests.Add(new TokenRequest(request.Method, request.Path, request.Query, service, scopes, authorization, user, status));
        }
        return Task.FromResult(response);
    }

    private (int Status, WireResponse Response, string? User) Decide(WireRequest request, WireRequest form, string? authorization, List<TokenScope> scopes)
    {
        if (FailWithStatus is { } failure)
        {
            return (failure, WireResponse.Json(failure, """{"errors":[{"code":"UNAVAILABLE","message":"token server told to fail"}]}"""), null);
        }
        string? user = null;
        string? password = null;
        if (request.Method == "POST")
        {
            if (form.QueryValues("grant_type").FirstOrDefault() != "password")
            {
                return (400, WireResponse.Json(400, """{"error":"unsupported_grant_type"}"""), null);
            }
            user = form.QueryValues("username").FirstOrDefault();
            password = form.QueryValues("password").FirstOrDefault();
        }
        else if (authorization is not null)
        {
            if (!TryParseBasic(authorization, out user, out password))
            {
                return Unauthorized(null);
            }
        }
        else if (request.Method != "GET")
        {
            return (405, WireResponse.Text(405, "GET or POST\n"), null);
        }
        if (user is not null && (user != Options.User || password != Options.Password))
        {
            return Unauthorized(user);
        }
        if (user is null && !Options.AllowAnonymousPull && Authorize is null)
        {
            return Unauthorized(null);
        }
        var authorize = Authorize ?? DefaultAuthorize;
        var granted = scopes
            .Select(s => s with { Actions = [.. authorize(user, s).Intersect(s.Actions)] })
            .Where(s => s.Actions.Count > 0)
            .ToList();
        var token = IssueToken(user, granted);
        var issuedAt = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var body = Json(w =>
        {
            if (Options.ResponseShape != TokenResponseShape.AccessTokenOnly)
            {
                w.WriteString("token", token);
            }
            if (Options.ResponseShape != TokenResponseShape.TokenOnly)
            {
                w.WriteString("access_token", token);
            }
            w.WriteNumber("expires_in", (long)Options.TokenLifetime.TotalSeconds);
            w.WriteString("issued_at", issuedAt);
        });
        return (200, new WireResponse(200, body, ("Content-Type", "application/json")), user);
    }

    private IReadOnlyList<string> DefaultAuthorize(string? user, TokenScope scope) =>
        user is not null ? scope.Actions
        : Options.AllowAnonymousPull ? ["pull"]
        : [];

    private static (int, WireResponse, string?) Unauthorized(string? user) =>
        (401, new WireResponse(401, """{"details":"incorrect username or password"}"""u8.ToArray(),
            ("Content-Type", "application/json"), ("WWW-Authenticate", "Basic realm=\"trc-test-token\"")), user);

    private static bool TryParseBasic(string authorization, out string? user, out string? password)
    {
        user = password = null;
        if (!authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(authorization[6..].Trim()));
            var colon = decoded.IndexOf(':');
            if (colon < 0)
            {
                return false;
            }
            (user, password) = (decoded[..colon], decoded[(colon + 1)..]);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>
    /// libtrust's key id: the SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32 without
    /// padding (48 characters), in 12 groups of 4 joined by ':'.
    /// </summary>
    public static string LibtrustKeyIdOf(byte[] subjectPublicKeyInfo)
    {
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var hash = SHA256.HashData(subjectPublicKeyInfo).AsSpan(0, 30);
        var base32 = new StringBuilder();
        for (var bit = 0; bit < hash.Length * 8; bit += 5)
        {
            var index = 0;
            for (var i = 0; i < 5; i++)
            {
                var b = bit + i;
                index = (index << 1) | ((hash[b / 8] >> (7 - (b % 8))) & 1);
            }
            base32.Append(Alphabet[index]);
        }
        return string.Join(':', base32.ToString().Chunk(4).Select(c => new string(c)));
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public async ValueTask DisposeAsync()
    {
        await _http.DisposeAsync();
        _certificate.Dispose();
        _key.Dispose();
    }
}
