using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Trc.Testing.Registry;

/// <summary>
/// Plain-HttpClient helpers for the fixtures' self-tests and for tests that prepare or inspect a
/// registry without the client under test: no redirects followed, no proxy, no cookies.
/// </summary>
public static class RegistryHttp
{
    public static HttpClient CreateClient() =>
        new(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false, UseCookies = false })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };

    public static AuthenticationHeaderValue Basic(FixtureCredentials credentials) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credentials.User}:{credentials.Password}")));

    /// <summary>The parameters of a <c>WWW-Authenticate</c> challenge (<c>scheme k="v",k="v"</c>), names lower-cased, plus "scheme".</summary>
    public static IReadOnlyDictionary<string, string> ParseChallenge(string header)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var space = header.IndexOf(' ');
        result["scheme"] = space < 0 ? header : header[..space];
        var i = space < 0 ? header.Length : space + 1;
        while (i < header.Length)
        {
            var eq = header.IndexOf('=', i);
            if (eq < 0)
            {
                break;
            }
            var name = header[i..eq].Trim().TrimStart(',').Trim();
            i = eq + 1;
            var value = new StringBuilder();
            if (i < header.Length && header[i] == '"')
            {
                for (i++; i < header.Length && header[i] != '"'; i++)
                {
                    if (header[i] == '\\' && i + 1 < header.Length)
                    {
                        i++;
                    }
                    value.Append(header[i]);
                }
                i++;
            }
            else
            {
                for (; i < header.Length && header[i] != ','; i++)
                {
                    value.Append(header[i]);
                }
            }
            result[name.ToLowerInvariant()] = value.ToString().Trim();
            while (i < header.Length && (header[i] == ',' || header[i] == ' '))
            {
                i++;
            }
        }
        return result;
    }

    /// <summary>
    /// The token dance by hand: GET <paramref name="challengeUri"/> (expects 401 Bearer), then the
    /// realm with service and <paramref name="scope"/>, with Basic credentials when given. Returns the token.
    /// </summary>
    public static async Task<string> GetBearerTokenAsync(
        HttpClient http, Uri challengeUri, string scope, FixtureCredentials? credentials, CancellationToken ct)
    {
        using var challenged = await http.GetAsync(challengeUri, ct);
        if (challenged.StatusCode != HttpStatusCode.Unauthorized || challenged.Headers.WwwAuthenticate.Count == 0)
        {
            throw new InvalidOperationException($"Expected a 401 Bearer challenge from {challengeUri}, got {(int)challenged.StatusCode}.");
        }
        var challenge = ParseChallenge(challenged.Headers.WwwAuthenticate.First().ToString());
        if (!challenge["scheme"].Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"Expected a Bearer challenge, got {challenge["scheme"]}.");
        }
        var url = $"{challenge["realm"]}?service={Uri.EscapeDataString(challenge["service"])}&scope={Uri.EscapeDataString(scope)}";
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (credentials is not null)
        {
            request.Headers.Authorization = Basic(credentials);
        }
        using var response = await http.SendAsync(request, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"The token endpoint answered {(int)response.StatusCode}: {body}", null, response.StatusCode);
        }
        using var json = JsonDocument.Parse(body);
        return json.RootElement.TryGetProperty("token", out var token) ? token.GetString()!
            : json.RootElement.GetProperty("access_token").GetString()!;
    }

    /// <summary>A GET with an Accept header and optional Authorization; the caller disposes the response.</summary>
    public static Task<HttpResponseMessage> GetAsync(
        HttpClient http, Uri uri, CancellationToken ct, string? accept = null, AuthenticationHeaderValue? authorization = null, HttpMethod? method = null)
    {
        var request = new HttpRequestMessage(method ?? HttpMethod.Get, uri);
        if (accept is not null)
        {
            request.Headers.Accept.ParseAdd(accept);
        }
        request.Headers.Authorization = authorization;
        return http.SendAsync(request, ct);
    }

    /// <summary>Every manifest media type, for an Accept header.</summary>
    public const string AnyManifest =
        ImageTools.OciManifestMediaType + ", " + ImageTools.OciIndexMediaType + ", "
        + ImageTools.DockerManifestMediaType + ", " + ImageTools.DockerManifestListMediaType;
}
