using System.Text;
using System.Text.Json;
using Trc.Oci.Images;

namespace Trc.Oci.Registry;

/// <summary>A user name and password (or token) for one registry.</summary>
/// <param name="Username">The user name.</param>
/// <param name="Password">The password or access token. Never logged; <see cref="ToString"/> hides it.</param>
public sealed record RegistryCredentials(string Username, string Password)
{
    /// <summary>
    /// Other hosts this registry's token service lives on, to which the credentials may be sent
    /// when the registry's Bearer challenge names them as its realm. By default credentials go only
    /// to the registry's own host (and, for Docker Hub, to <c>auth.docker.io</c>).
    /// </summary>
    public IReadOnlyList<string> TokenHosts { get; init; } = [];

    /// <summary>The value of an HTTP Basic <c>Authorization</c> header.</summary>
    internal string BasicHeaderValue => Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Username}:{Password}"));

    /// <summary>Hides the password.</summary>
    /// <returns><c>RegistryCredentials { Username = ..., Password = *** }</c>.</returns>
    public override string ToString() => $"RegistryCredentials {{ Username = {Username}, Password = *** }}";
}

/// <summary>
/// Credentials by registry host, read from a Docker-style <c>config.json</c>
/// (<c>{"auths": {"registry.example.com": {"auth": "base64(user:password)"}}}</c>), the format
/// <c>docker login</c>, <c>skopeo login</c> and <c>podman login</c> write. trc adds one optional field
/// per entry, <c>"token_hosts": ["auth.example.com"]</c>: other hosts the credentials may be sent to
/// as a Bearer token realm.
/// </summary>
public sealed class RegistryCredentialStore
{
    /// <summary>The largest file read.</summary>
    public const int MaxFileBytes = 1024 * 1024;

    private readonly Dictionary<string, RegistryCredentials> _byHost;

    private RegistryCredentialStore(Dictionary<string, RegistryCredentials> byHost) => _byHost = byHost;

    /// <summary>A store with no credentials: every registry is used anonymously.</summary>
    public static RegistryCredentialStore Empty { get; } = new(new Dictionary<string, RegistryCredentials>(StringComparer.OrdinalIgnoreCase));

    /// <summary>The hosts that have credentials.</summary>
    public IEnumerable<string> Hosts => _byHost.Keys;

    /// <summary>A store holding the given credentials.</summary>
    /// <param name="byHost">Credentials by registry host (<c>host[:port]</c>).</param>
    /// <returns>The store.</returns>
    public static RegistryCredentialStore From(IReadOnlyDictionary<string, RegistryCredentials> byHost)
    {
        var map = new Dictionary<string, RegistryCredentials>(StringComparer.OrdinalIgnoreCase);
        foreach (var (host, credentials) in byHost)
        {
            map[NormalizeHost(host)] = credentials;
        }
        return new RegistryCredentialStore(map);
    }

    /// <summary>The credentials for a registry host, or null.</summary>
    /// <param name="registry">The registry as written in image references (<c>docker.io</c>, <c>127.0.0.1:5000</c>).</param>
    /// <returns>The credentials, or null when there are none.</returns>
    public RegistryCredentials? Find(string registry)
    {
        var host = NormalizeHost(registry);
        if (_byHost.TryGetValue(host, out var credentials))
        {
            return credentials;
        }
        return host == "docker.io" && _byHost.TryGetValue("registry-1.docker.io", out credentials) ? credentials : null;
    }

    /// <summary>Loads a Docker-style credentials file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The store.</returns>
    /// <exception cref="RegistryCredentialsException">The file is unreadable or malformed; the message names the entry, never a secret.</exception>
    public static RegistryCredentialStore Load(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new RegistryCredentialsException($"{path}: no such file");
            }
            if (info.Length > MaxFileBytes)
            {
                throw new RegistryCredentialsException($"{path}: {info.Length} bytes, more than the {MaxFileBytes} a credentials file may have");
            }
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryCredentialsException($"{path}: cannot read it: {e.Message}", e);
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses the contents of a Docker-style credentials file.</summary>
    /// <param name="json">The file's bytes.</param>
    /// <param name="source">The file's name, for messages.</param>
    /// <returns>The store.</returns>
    /// <exception cref="RegistryCredentialsException">The content is malformed.</exception>
    public static RegistryCredentialStore Parse(ReadOnlySpan<byte> json, string source)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 16, CommentHandling = JsonCommentHandling.Skip });
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            // JsonException's message holds no content, only line and position.
            throw new RegistryCredentialsException($"{source}: not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            var map = new Dictionary<string, RegistryCredentials>(StringComparer.OrdinalIgnoreCase);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new RegistryCredentialsException($"{source}: the top level must be an object with \"auths\"");
            }
            if (!document.RootElement.TryGetProperty("auths", out var auths))
            {
                return new RegistryCredentialStore(map);
            }
            if (auths.ValueKind != JsonValueKind.Object)
            {
                throw new RegistryCredentialsException($"{source}: auths must be an object keyed by registry host");
            }
            foreach (var entry in auths.EnumerateObject())
            {
                var where = $"{source}: auths[\"{Digest.Shorten(entry.Name)}\"]";
                if (entry.Value.ValueKind != JsonValueKind.Object)
                {
                    throw new RegistryCredentialsException($"{where} must be an object");
                }
                var credentials = ReadEntry(entry.Value, where);
                if (credentials is not null)
                {
                    map[NormalizeHost(entry.Name)] = credentials;
                }
            }
            return new RegistryCredentialStore(map);
        }
    }

    private static RegistryCredentials? ReadEntry(JsonElement entry, string where)
    {
        string? username = null;
        string? password = null;
        if (entry.TryGetProperty("auth", out var auth) && auth.ValueKind == JsonValueKind.String && auth.GetString() is { Length: > 0 } encoded)
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
            }
            catch (FormatException)
            {
                throw new RegistryCredentialsException($"{where}.auth is not base64 of user:password");
            }
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new RegistryCredentialsException($"{where}.auth does not decode to user:password");
            }
            (username, password) = (decoded[..colon], decoded[(colon + 1)..]);
        }
        else
        {
            username = StringOrNull(entry, "username", where);
            password = StringOrNull(entry, "password", where);
        }
        if (username is null && password is null)
        {
            // An entry that only names a credential helper: trc does not run helpers.
            return null;
        }
        if (string.IsNullOrEmpty(username) || password is null)
        {
            throw new RegistryCredentialsException($"{where}: needs both a user name and a password");
        }
        var tokenHosts = new List<string>();
        if (entry.TryGetProperty("token_hosts", out var hosts))
        {
            if (hosts.ValueKind != JsonValueKind.Array)
            {
                throw new RegistryCredentialsException($"{where}.token_hosts must be an array of host names");
            }
            var i = 0;
            foreach (var host in hosts.EnumerateArray())
            {
                if (host.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(host.GetString()))
                {
                    throw new RegistryCredentialsException($"{where}.token_hosts[{i}] must be a host name");
                }
                tokenHosts.Add(NormalizeHost(host.GetString()!));
                i++;
            }
        }
        return new RegistryCredentials(username, password) { TokenHosts = tokenHosts };
    }

    private static string? StringOrNull(JsonElement entry, string name, string where)
    {
        if (!entry.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw new RegistryCredentialsException($"{where}.{name} must be a string");
    }

    /// <summary>
    /// Reduces the keys Docker writes (<c>https://index.docker.io/v1/</c>, <c>host:5000</c>) to <c>host[:port]</c>.
    /// </summary>
    internal static string NormalizeHost(string key)
    {
        var host = key.Trim();
        var scheme = host.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            host = host[(scheme + 3)..];
        }
        var slash = host.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            host = host[..slash];
        }
        host = host.ToLowerInvariant();
        return host is "index.docker.io" or "registry-1.docker.io" ? "docker.io" : host;
    }
}

/// <summary>A credentials file could not be read.</summary>
public sealed class RegistryCredentialsException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, naming the file and entry.</param>
    /// <param name="inner">The cause, or null.</param>
    public RegistryCredentialsException(string message, Exception? inner = null) : base(message, inner) { }
}
