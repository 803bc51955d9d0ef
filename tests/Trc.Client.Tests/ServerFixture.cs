namespace Trc.Client.Tests;

/// <summary>One server per test class; each test makes its own org, so tests do not interfere.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private ClientTestServer? _server;

    public ClientTestServer Server => _server ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync() => _server = await ClientTestServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    /// <summary>A fresh org name.</summary>
    public static string NewName(string prefix = "o") => prefix + Guid.NewGuid().ToString("N")[..10];
}
