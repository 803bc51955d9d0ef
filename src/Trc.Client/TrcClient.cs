using System.Globalization;
using System.Net;
using System.Text.Json;
using Trc.Client.Events;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.Client;

/// <summary>Settings of a <see cref="TrcClient"/>.</summary>
public sealed record TrcClientOptions
{
    /// <summary>How long one call (not an event stream) may take, answer included. Default: 100 s.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>The User-Agent sent; default <c>trc-client/VERSION</c>.</summary>
    public string? UserAgent { get; init; }
}

/// <summary>
/// The typed client of the trc <c>/v1</c> API: one method per endpoint. A failed call throws
/// <see cref="TrcApiException"/> (the server answered: status and problem) or
/// <see cref="TrcConnectionException"/> (it could not be reached); cancellation throws
/// <see cref="OperationCanceledException"/>. Mutating calls take an optional idempotency key: a
/// retried call with the same key and body is answered without acting twice. The token is sent
/// as <c>Authorization: Bearer</c> and appears in no message.
/// </summary>
public sealed partial class TrcClient : IDisposable
{
    /// <summary>
    /// A client of the server at <paramref name="baseAddress"/> (like <c>https://trc.example.com</c>;
    /// a path prefix is kept), presenting <paramref name="token"/>.
    /// </summary>
    /// <param name="baseAddress">The server's URL, http or https.</param>
    /// <param name="token">An API token (<c>trc_...</c>).</param>
    /// <param name="handler">The HTTP handler to use (tests, proxies); the caller keeps ownership.</param>
    /// <param name="options">Timeouts and the User-Agent.</param>
    public TrcClient(Uri baseAddress, string token, HttpMessageHandler? handler = null, TrcClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(baseAddress);
        if (!baseAddress.IsAbsoluteUri || baseAddress.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException("the server URL must be an absolute http:// or https:// URL", nameof(baseAddress));
        }
        if (!string.IsNullOrEmpty(baseAddress.Query) || !string.IsNullOrEmpty(baseAddress.Fragment))
        {
            throw new ArgumentException("the server URL must not have a query or a fragment", nameof(baseAddress));
        }
        // Printable ASCII without spaces: anything else could not travel in a header, and the
        // message must not quote the token to say so.
        if (string.IsNullOrEmpty(token) || token.Any(c => c is < (char)0x21 or > (char)0x7E))
        {
            throw new ArgumentException("the token must be non-empty printable ASCII without spaces", nameof(token));
        }
        var builder = new UriBuilder(baseAddress) { UserName = "", Password = "" };
        builder.Path = builder.Path.TrimEnd('/');
        BaseAddress = builder.Uri;
        _base = BaseAddress.GetLeftPart(UriPartial.Path).TrimEnd('/');
        _token = token;
        _options = options ?? new TrcClientOptions();
        _http = handler is null
            ? new HttpClient(new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                ConnectTimeout = TimeSpan.FromSeconds(15),
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                AutomaticDecompression = DecompressionMethods.None,
            })
            : new HttpClient(handler, disposeHandler: false);
        // Each call has its own deadline (RequestTimeout); event streams have none.
        _http.Timeout = Timeout.InfiniteTimeSpan;
        _http.DefaultRequestHeaders.UserAgent.ParseAdd(_options.UserAgent ?? $"trc-client/{typeof(TrcClient).Assembly.GetName().Version?.ToString(3) ?? "0"}");
    }

    /// <summary>A client of the server at <paramref name="baseAddress"/>.</summary>
    /// <param name="baseAddress">The server's URL, http or https.</param>
    /// <param name="token">An API token.</param>
    /// <param name="handler">The HTTP handler to use; the caller keeps ownership.</param>
    /// <param name="options">Timeouts and the User-Agent.</param>
    public TrcClient(string baseAddress, string token, HttpMessageHandler? handler = null, TrcClientOptions? options = null)
        : this(ParseBaseAddress(baseAddress), token, handler, options)
    {
    }

    /// <summary>The server's URL as used and shown in messages (any user info removed).</summary>
    public Uri BaseAddress { get; }

    /// <summary>Parses a server URL; a bare <c>host:port</c> is refused rather than guessed.</summary>
    public static Uri ParseBaseAddress(string baseAddress)
    {
        ArgumentNullException.ThrowIfNull(baseAddress);
        if (!Uri.TryCreate(baseAddress.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException("the server URL must be an absolute http:// or https:// URL, like https://trc.example.com", nameof(baseAddress));
        }
        return uri;
    }

    // ---- who am I ----------------------------------------------------------------------------------

    /// <summary>Who the token belongs to: its id, name, role and org.</summary>
    public Task<WhoAmIView> WhoAmIAsync(CancellationToken ct = default) =>
        GetAsync<WhoAmIView>(ApiPaths.WhoAmI, ct);

    // ---- orgs and quotas ---------------------------------------------------------------------------

    /// <summary>The orgs the token can see (all of them for the admin, its own otherwise).</summary>
    public Task<ListView<OrgView>> ListOrgsAsync(CancellationToken ct = default) =>
        GetAsync<ListView<OrgView>>(ApiPaths.Orgs, ct);

    /// <summary>Creates an org (platform admin); the cluster's default quotas apply when <paramref name="quotas"/> is null.</summary>
    public Task<OrgView> CreateOrgAsync(string name, Quotas? quotas = null, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<OrgView>(HttpMethod.Post, ApiPaths.Orgs, new CreateOrgRequest(name, quotas), idempotencyKey, ct);

    /// <summary>One org, with its quotas and usage.</summary>
    public Task<OrgView> GetOrgAsync(string org, CancellationToken ct = default) =>
        GetAsync<OrgView>(ApiPaths.Org(org), ct);

    /// <summary>An org's quotas and what it uses.</summary>
    public Task<QuotaView> GetQuotasAsync(string org, CancellationToken ct = default) =>
        GetAsync<QuotaView>(ApiPaths.Quotas(org), ct);

    /// <summary>Sets an org's quotas (platform admin).</summary>
    public Task<QuotaView> SetQuotasAsync(string org, Quotas quotas, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<QuotaView>(HttpMethod.Put, ApiPaths.Quotas(org), quotas, idempotencyKey, ct);

    // ---- tokens ------------------------------------------------------------------------------------

    /// <summary>The org's tokens (owners only); secrets are never listed.</summary>
    public Task<ListView<TokenView>> ListTokensAsync(string org, CancellationToken ct = default) =>
        GetAsync<ListView<TokenView>>(ApiPaths.Tokens(org), ct);

    /// <summary>Creates a token of <paramref name="role"/> (viewer, deployer, owner); its secret is in the answer, once.</summary>
    public Task<TokenCreatedView> CreateTokenAsync(string org, string name, string role, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<TokenCreatedView>(HttpMethod.Post, ApiPaths.Tokens(org), new CreateTokenRequest(name, role), idempotencyKey, ct);

    /// <summary>Revokes a token: it is refused from now on.</summary>
    public Task RevokeTokenAsync(string org, Guid id, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendNoContentAsync(HttpMethod.Delete, ApiPaths.Token(org, id), idempotencyKey, ct);

    // ---- apps and envs -----------------------------------------------------------------------------

    /// <summary>The org's apps.</summary>
    public Task<ListView<AppView>> ListAppsAsync(string org, CancellationToken ct = default) =>
        GetAsync<ListView<AppView>>(ApiPaths.Apps(org), ct);

    /// <summary>Creates an app.</summary>
    public Task<AppView> CreateAppAsync(string org, string name, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<AppView>(HttpMethod.Post, ApiPaths.Apps(org), new CreateAppRequest(name), idempotencyKey, ct);

    /// <summary>One app.</summary>
    public Task<AppView> GetAppAsync(string org, string app, CancellationToken ct = default) =>
        GetAsync<AppView>(ApiPaths.App(org, app), ct);

    /// <summary>An app's envs.</summary>
    public Task<ListView<EnvView>> ListEnvsAsync(string org, string app, CancellationToken ct = default) =>
        GetAsync<ListView<EnvView>>(ApiPaths.Envs(org, app), ct);

    /// <summary>Creates an env of an app.</summary>
    public Task<EnvView> CreateEnvAsync(string org, string app, string name, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<EnvView>(HttpMethod.Post, ApiPaths.Envs(org, app), new CreateEnvRequest(name), idempotencyKey, ct);

    /// <summary>One env.</summary>
    public Task<EnvView> GetEnvAsync(string org, string app, string env, CancellationToken ct = default) =>
        GetAsync<EnvView>(ApiPaths.Env(org, app, env), ct);

    // ---- releases ----------------------------------------------------------------------------------

    /// <summary>
    /// Deploys: records a release (the image pinned to a digest, the manifest's TOML) and makes it the
    /// env's deployed release. In the same atomic change the server creates the routes and volumes
    /// the manifest lists that the env does not have, and changes those it has with other settings;
    /// when any part is refused nothing is created.
    /// </summary>
    public Task<ReleaseView> DeployAsync(string org, string app, string env, DeployRequest request, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<ReleaseView>(HttpMethod.Post, ApiPaths.Releases(org, app, env), request, idempotencyKey, ct);

    /// <summary>The env's deployments (rollouts), newest first.</summary>
    public Task<ListView<DeploymentView>> ListDeploymentsAsync(string org, string app, string env, int limit = 20, CancellationToken ct = default) =>
        GetAsync<ListView<DeploymentView>>(ApiPaths.Deployments(org, app, env) + "?limit=" + limit.ToString(System.Globalization.CultureInfo.InvariantCulture), ct);

    /// <summary>One deployment: its status, and why it failed if it did.</summary>
    public Task<DeploymentView> GetDeploymentAsync(string org, string app, string env, int number, CancellationToken ct = default) =>
        GetAsync<DeploymentView>(ApiPaths.Deployment(org, app, env, number), ct);

    /// <summary>Rolls back to release <paramref name="release"/>, or to the release that served before the one serving now.</summary>
    public Task<DeploymentView> RollbackAsync(string org, string app, string env, int? release = null, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<DeploymentView>(HttpMethod.Post, ApiPaths.Rollback(org, app, env), new RollbackRequest(release), idempotencyKey, ct);

    /// <summary>Restarts every instance once, blue/green.</summary>
    public Task<DeploymentView> RestartAsync(string org, string app, string env, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<DeploymentView>(HttpMethod.Post, ApiPaths.Restart(org, app, env), null, idempotencyKey, ct);

    /// <summary>Runs <paramref name="count"/> instances of <paramref name="process"/>.</summary>
    public Task<EnvView> ScaleAsync(string org, string app, string env, string process, int count, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<EnvView>(HttpMethod.Put, ApiPaths.Scale(org, app, env), new ScaleRequest(process, count), idempotencyKey, ct);

    /// <summary>The env's releases, newest first.</summary>
    public Task<ListView<ReleaseView>> ListReleasesAsync(string org, string app, string env, CancellationToken ct = default) =>
        GetAsync<ListView<ReleaseView>>(ApiPaths.Releases(org, app, env), ct);

    /// <summary>One release by number.</summary>
    public Task<ReleaseView> GetReleaseAsync(string org, string app, string env, int number, CancellationToken ct = default) =>
        GetAsync<ReleaseView>(ApiPaths.Release(org, app, env, number), ct);

    // ---- routes ------------------------------------------------------------------------------------

    /// <summary>The env's routes.</summary>
    public Task<ListView<RouteView>> ListRoutesAsync(string org, string app, string env, CancellationToken ct = default) =>
        GetAsync<ListView<RouteView>>(ApiPaths.Routes(org, app, env), ct);

    /// <summary>Binds a hostname and port to the env.</summary>
    public Task<RouteView> CreateRouteAsync(string org, string app, string env, CreateRouteRequest route, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<RouteView>(HttpMethod.Post, ApiPaths.Routes(org, app, env), route, idempotencyKey, ct);

    /// <summary>Removes a route.</summary>
    public Task DeleteRouteAsync(string org, string app, string env, string hostname, int listenPort, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendNoContentAsync(HttpMethod.Delete, ApiPaths.Route(org, app, env, hostname, listenPort), idempotencyKey, ct);

    // ---- IPv4 --------------------------------------------------------------------------------------

    /// <summary>The env's dedicated IPv4 address (404 when the add-on is off).</summary>
    public Task<Ipv4View> GetIpv4Async(string org, string app, string env, CancellationToken ct = default) =>
        GetAsync<Ipv4View>(ApiPaths.Ipv4(org, app, env), ct);

    /// <summary>Turns the IPv4 add-on on: the env gets an address from the cluster's pool.</summary>
    public Task<Ipv4View> EnableIpv4Async(string org, string app, string env, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<Ipv4View>(HttpMethod.Put, ApiPaths.Ipv4(org, app, env), null, idempotencyKey, ct);

    /// <summary>Turns the IPv4 add-on off; the address returns to the pool.</summary>
    public Task DisableIpv4Async(string org, string app, string env, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendNoContentAsync(HttpMethod.Delete, ApiPaths.Ipv4(org, app, env), idempotencyKey, ct);

    // ---- secrets -----------------------------------------------------------------------------------

    /// <summary>
    /// Sets (<paramref name="set"/>: name to exact bytes) and unsets secrets, making a new version.
    /// Values travel as base64, so any bytes round-trip.
    /// </summary>
    public Task<SecretsView> SetSecretsAsync(string org, string app, string env, IReadOnlyDictionary<string, byte[]>? set, IReadOnlyList<string>? unset = null, string? idempotencyKey = null, CancellationToken ct = default)
    {
        Dictionary<string, JsonElement>? values = null;
        if (set is { Count: > 0 })
        {
            values = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var (name, value) in set)
            {
                values[name] = JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["base64"] = Convert.ToBase64String(value) });
            }
        }
        var request = new SetSecretsRequest(values, unset is { Count: > 0 } ? unset : null);
        return SendAsync<SecretsView>(HttpMethod.Put, ApiPaths.Secrets(org, app, env), request, idempotencyKey, ct);
    }

    /// <summary>Unsets secrets, making a new version.</summary>
    public Task<SecretsView> UnsetSecretsAsync(string org, string app, string env, IReadOnlyList<string> names, string? idempotencyKey = null, CancellationToken ct = default) =>
        SetSecretsAsync(org, app, env, null, names, idempotencyKey, ct);

    /// <summary>The env's secret names and current version (never values).</summary>
    public Task<SecretsView> ListSecretsAsync(string org, string app, string env, CancellationToken ct = default) =>
        GetAsync<SecretsView>(ApiPaths.Secrets(org, app, env), ct);

    /// <summary>
    /// The exact secrets file (<c># TRC_SECRETS_V1</c>) of the env (owners only). An answer that is
    /// not one (a captive portal's or a proxy's page with status 200) is a <see cref="TrcApiException"/>,
    /// never bytes to write into a file.
    /// </summary>
    public async Task<byte[]> RenderSecretsAsync(string org, string app, string env, CancellationToken ct = default)
    {
        using var request = NewRequest(HttpMethod.Get, ApiPaths.SecretsRender(org, app, env), null, null);
        return await ExecuteAsync(request, async (response, token) =>
        {
            await EnsureSuccessAsync(response, token).ConfigureAwait(false);
            var media = response.Content.Headers.ContentType?.MediaType;
            var body = await ReadBodyAsync(response, MaxSecretsBytes, token).ConfigureAwait(false);
            if (media != "text/plain" || !body.AsSpan().StartsWith(SecretsHeader))
            {
                throw new TrcApiException(response.StatusCode, null,
                    $"the server at {BaseAddress} answered HTTP {(int)response.StatusCode} with {Describe(Printable(media, 100))} that is not a secrets file (# TRC_SECRETS_V1); is this the URL of a trc server?", BaseAddress);
            }
            return body;
        }, ct).ConfigureAwait(false);
    }

    private static readonly byte[] SecretsHeader = System.Text.Encoding.ASCII.GetBytes(Trc.Core.Secrets.SecretsFile.Header + "\n");

    // ---- volumes -----------------------------------------------------------------------------------

    /// <summary>The env's volumes.</summary>
    public Task<ListView<VolumeView>> ListVolumesAsync(string org, string app, string env, CancellationToken ct = default) =>
        GetAsync<ListView<VolumeView>>(ApiPaths.Volumes(org, app, env), ct);

    /// <summary>Declares a volume of a process.</summary>
    public Task<VolumeView> CreateVolumeAsync(string org, string app, string env, CreateVolumeRequest volume, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendAsync<VolumeView>(HttpMethod.Post, ApiPaths.Volumes(org, app, env), volume, idempotencyKey, ct);

    /// <summary>Removes a volume declaration.</summary>
    public Task DeleteVolumeAsync(string org, string app, string env, string name, string? idempotencyKey = null, CancellationToken ct = default) =>
        SendNoContentAsync(HttpMethod.Delete, ApiPaths.Volume(org, app, env, name), idempotencyKey, ct);

    // ---- events ------------------------------------------------------------------------------------

    /// <summary>One page of events after <see cref="EventQuery.After"/>; follow <see cref="EventPageView.NextCursor"/> for the next.</summary>
    public Task<EventPageView> GetEventsAsync(EventQuery query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        return GetAsync<EventPageView>(EventsPath(query, stream: false) + QueryString(query, query.After), ct);
    }

    // ---- edge --------------------------------------------------------------------------------------

    /// <summary>
    /// Every route with its listen addresses and backends (platform admin). With <paramref name="after"/>
    /// set to an event id, the answer waits until the catalog has applied that event.
    /// </summary>
    public Task<EdgeRoutesView> GetEdgeRoutesAsync(long after = 0, CancellationToken ct = default) =>
        GetAsync<EdgeRoutesView>(after > 0 ? ApiPaths.EdgeRoutes + "?after=" + after.ToString(CultureInfo.InvariantCulture) : ApiPaths.EdgeRoutes, ct);

    private static string EventsPath(EventQuery query, bool stream) => query.Org is null
        ? stream ? ApiPaths.EventsStream : ApiPaths.Events
        : stream ? ApiPaths.OrgEventsStream(query.Org) : ApiPaths.OrgEvents(query.Org);

    private static string QueryString(EventQuery query, long? after)
    {
        var parts = new List<string>();
        if (after is > 0)
        {
            parts.Add("after=" + after.Value.ToString(CultureInfo.InvariantCulture));
        }
        if (query.Limit is { } limit)
        {
            parts.Add("limit=" + limit.ToString(CultureInfo.InvariantCulture));
        }
        foreach (var type in query.Types ?? [])
        {
            parts.Add("type=" + Uri.EscapeDataString(type));
        }
        if (!string.IsNullOrEmpty(query.Node))
        {
            parts.Add("node=" + Uri.EscapeDataString(query.Node));
        }
        return parts.Count == 0 ? "" : "?" + string.Join('&', parts);
    }
}
