using Trc.ControlPlane;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Testing;

namespace Trc.Client.Tests;

/// <summary>
/// A real <c>trc server</c> on 127.0.0.1 (a free port) over SQLite in a temp dir, and clients of
/// it: the admin's, and owners' of new orgs.
/// </summary>
public sealed class ClientTestServer : IAsyncDisposable
{
    private readonly TestControlPlane _server;
    private readonly List<TrcClient> _clients = [];

    private ClientTestServer(TestControlPlane server)
    {
        _server = server;
        Admin = Client(AdminToken);
        Node = Client(server.NodeToken);
    }

    public ServerHost Host => _server.Host;

    public Uri Address => _server.Address;

    public string AdminToken => _server.AdminToken;

    public string NodeToken => _server.NodeToken;

    public TrcClient Admin { get; }

    /// <summary>A client with the shared node token, as an agent has.</summary>
    public TrcClient Node { get; }

    /// <summary>A manifest with a web process on 8443, a route and a volume.</summary>
    public static string Manifest(string app, string hostname = "shop.example.com") => $$"""
        app = "{{app}}"

        [processes.web]
        ports = [8443]
        memory = "256Mi"

        [[routes]]
        hostname = "{{hostname}}"
        process = "web"
        backend_port = 8443

        [[volumes]]
        name = "data"
        size = "1Gi"
        process = "web"
        """;

    public static string Image { get; } = "registry.example.com/shop@sha256:" + new string('a', 64);

    public static async Task<ClientTestServer> StartAsync() => new(await TestControlPlane.StartAsync());

    /// <summary>A client presenting <paramref name="token"/>, disposed with the server.</summary>
    public TrcClient Client(string token, Uri? address = null)
    {
        var client = new TrcClient(address ?? Address, token);
        _clients.Add(client);
        return client;
    }

    /// <summary>Creates an org (as the admin) and returns a client with a new token of <paramref name="role"/> in it.</summary>
    public async Task<TrcClient> NewOrgAsync(string org, string role = Roles.Owner)
    {
        await Admin.CreateOrgAsync(org);
        return await TokenAsync(org, role);
    }

    /// <summary>A client with a new token of <paramref name="role"/> in the org.</summary>
    public async Task<TrcClient> TokenAsync(string org, string role) =>
        Client((await Admin.CreateTokenAsync(org, role + "-" + Guid.NewGuid().ToString("N")[..8], role)).Token);

    /// <summary>Creates org, app "shop" and env "prod"; returns the owner's client.</summary>
    public async Task<TrcClient> NewEnvAsync(string org)
    {
        var owner = await NewOrgAsync(org);
        await owner.CreateAppAsync(org, "shop");
        await owner.CreateEnvAsync(org, "shop", "prod");
        return owner;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }
        await _server.DisposeAsync();
    }
}
