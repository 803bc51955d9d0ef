using System.Data.Common;
using Trc.Core.Crypto;
using Trc.EventStore;
using Trc.EventStore.Projections;

namespace Trc.ControlPlane.Secrets;

/// <summary>
/// Encrypted secret bundles, stored beside the log (events carry only names and a version): each
/// bundle is a whole secrets file sealed with a fresh data key wrapped by the master key, bound to
/// its env and bundle id. A bundle row is written before the event that names it, so an event
/// never points at nothing; a row whose event never came (a failed append) is inert.
/// </summary>
public sealed class SecretVault(ISqlDatabase database, MasterKey masterKey)
{
    /// <summary>Creates the table if missing.</summary>
    public Task InitializeAsync(CancellationToken ct) => CreateTableAsync(database, ct);

    /// <summary>Creates the bundle table if missing.</summary>
    public static async Task CreateTableAsync(ISqlDatabase database, CancellationToken ct)
    {
        var blob = database.Dialect == SqlDialect.Postgres ? "bytea" : "blob";
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = $"CREATE TABLE IF NOT EXISTS secret_bundles (id text PRIMARY KEY, env_id text NOT NULL, sealed {blob} NOT NULL, master_key_id text NOT NULL, created_at text NOT NULL)";
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The ids of the master keys the stored bundles are sealed with (at most a few).</summary>
    public static async Task<IReadOnlyList<string>> MasterKeyIdsAsync(ISqlDatabase database, CancellationToken ct)
    {
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var command = Command(connection, "SELECT DISTINCT master_key_id FROM secret_bundles ORDER BY master_key_id LIMIT 8");
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var ids = new List<string>();
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            ids.Add(reader.GetString(0));
        }
        return ids;
    }

    /// <summary>Seals and stores a bundle (a secrets file's bytes).</summary>
    public async Task WriteAsync(Guid envId, Guid bundleId, byte[] file, CancellationToken ct)
    {
        var box = Envelope.Seal(masterKey, file, AssociatedData(envId, bundleId));
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var command = Command(connection, "INSERT INTO secret_bundles (id, env_id, sealed, master_key_id, created_at) VALUES (@id, @e, @s, @k, @t)",
            ("@id", bundleId.ToString("D")), ("@e", envId.ToString("D")), ("@s", box.ToBytes()), ("@k", masterKey.Id), ("@t", DateTimeOffset.UtcNow.ToString("O")));
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>A bundle's plaintext (the secrets file), or an empty file when there is none.</summary>
    public async Task<byte[]?> ReadAsync(Guid envId, Guid bundleId, CancellationToken ct)
    {
        await using var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var command = Command(connection, "SELECT sealed FROM secret_bundles WHERE id = @id AND env_id = @e", ("@id", bundleId.ToString("D")), ("@e", envId.ToString("D")));
        if (await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is not byte[] sealedBytes)
        {
            return null;
        }
        return Envelope.Open(masterKey, SealedBox.Parse(sealedBytes), AssociatedData(envId, bundleId));
    }

    /// <summary>
    /// The exact secrets file of a bundle, or the empty file (header only) when there is no bundle:
    /// what <c>secrets render</c> answers and what a node receives for an instance.
    /// </summary>
    public async Task<byte[]> FileAsync(Guid envId, Guid? bundleId, CancellationToken ct) => bundleId is { } bundle
        ? await ReadAsync(envId, bundle, ct).ConfigureAwait(false) ?? throw new InvalidOperationException($"secrets bundle {bundle} is missing")
        : Core.Secrets.SecretsFile.Encode([]);

    private static byte[] AssociatedData(Guid envId, Guid bundleId) =>
        [.. "trc secrets bundle\0"u8, .. envId.ToByteArray(bigEndian: true), .. bundleId.ToByteArray(bigEndian: true)];

    private static DbCommand Command(DbConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var p = command.CreateParameter();
            p.ParameterName = name;
            p.Value = value;
            command.Parameters.Add(p);
        }
        return command;
    }
}
