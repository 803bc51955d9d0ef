using System.CommandLine;
using Trc.ControlPlane;

namespace Trc.Cli.Commands;

/// <summary><c>trc server</c>: the control plane.</summary>
internal static class ServerCommand
{
    public static Command Create(CliConsole console)
    {
        var config = new Option<string?>("--config") { Description = "A TOML config file (also TRC_CONFIG)." };
        var database = new Option<string?>("--database") { Description = "sqlite:PATH, or postgres://user:password@host:port/db?search_path=schema (also TRC_DATABASE). Default: sqlite:DATA/trc.db." };
        var listen = new Option<string?>("--listen") { Description = "Address to serve the API on (also TRC_LISTEN). Default: http://127.0.0.1:7080." };
        var dataDir = new Option<string?>("--data-dir") { Description = "Where the master key, admin token and (by default) the SQLite database live (also TRC_DATA_DIR)." };
        var masterKey = new Option<string?>("--master-key-file") { Description = "The master key that seals secrets; created on first start (also TRC_MASTER_KEY_FILE). Default: DATA/master.key." };
        var nodeToken = new Option<string?>("--node-token-file") { Description = "Where the first start writes the token node agents share (also TRC_NODE_TOKEN_FILE). Default: node-token beside the admin token." };
        var overlay = new Option<string?>("--overlay-prefix") { Description = "The cluster's private IPv6 /48; node k gets its k-th /64 (also TRC_OVERLAY_PREFIX). Default: fd74:7263::/48." };
        var lease = new Option<string?>("--node-lease") { Description = "A node not heard from for this long is silent and gets no new instances (also TRC_NODE_LEASE). Default: 15s." };
        var retention = new Option<string?>("--log-retention") { Description = "How long app log lines are kept, like 7d or 12h (also TRC_LOG_RETENTION). Default: 7d." };
        var command = new Command("server", """
            Run the control plane: the /v1 API, the event store and its projections.
            Several servers may share one PostgreSQL database. On its first start against a
            database, the server writes an admin token to DATA/admin-token and the token node
            agents share to DATA/node-token (both mode 0600).

            Examples:
              trc server
              trc server --database postgres://trc:secret@db:5432/trc --listen http://0.0.0.0:7080
              trc server --config /etc/trc/server.toml
            """);
        foreach (var option in new[] { config, database, listen, dataDir, masterKey, nodeToken, overlay, lease, retention })
        {
            command.Options.Add(option);
        }
        command.SetAction(async (parse, ct) =>
        {
            ServerOptions options;
            try
            {
                var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
                    .ToDictionary(e => (string)e.Key, e => (string?)e.Value, StringComparer.Ordinal);
                options = ServerConfig.Load(parse.GetValue(config), environment, new Dictionary<string, string?>
                {
                    ["database"] = parse.GetValue(database),
                    ["listen"] = parse.GetValue(listen),
                    ["data_dir"] = parse.GetValue(dataDir),
                    ["master_key_file"] = parse.GetValue(masterKey),
                    ["node_token_file"] = parse.GetValue(nodeToken),
                    ["overlay_prefix"] = parse.GetValue(overlay),
                    ["node_lease"] = parse.GetValue(lease),
                    ["log_retention"] = parse.GetValue(retention),
                }, DefaultDataDirectory());
            }
            catch (ServerConfigException e)
            {
                console.Err.WriteLine($"trc server: {e.Message}");
                return ExitCodes.Invalid;
            }
            await using var host = await ServerHost.StartAsync(options, ct);
            console.Out.WriteLine($"trc server: API on {host.Address}");
            console.Out.WriteLine(host.AdminToken is not null
                ? $"trc server: created the admin token; it is in {host.AdminTokenFile} (readable by you only)"
                : $"trc server: the admin token was written to {host.AdminTokenFile} on first start");
            console.Out.WriteLine(host.NodeToken is not null
                ? $"trc server: created the node token for agents; it is in {host.NodeTokenFile} (readable by you only)"
                : $"trc server: the node token was written to {host.NodeTokenFile} on first start");
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                console.Out.WriteLine("trc server: stopping");
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static string DefaultDataDirectory() =>
        Environment.GetEnvironmentVariable("TRC_DATA_DIR") is { Length: > 0 } fromEnv ? fromEnv
        : Environment.UserName == "root" ? "/var/lib/trc"
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share", "trc");
}
