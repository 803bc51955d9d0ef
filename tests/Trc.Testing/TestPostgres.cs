using System.Diagnostics;
using Npgsql;

namespace Trc.Testing;

/// <summary>
/// The test run's PostgreSQL: <c>$TRC_TEST_POSTGRES</c> when set (scripts/test sets it), otherwise
/// the private cluster started by <c>scripts/test-postgres</c>. Each test class works in a schema of
/// its own, so classes run in parallel without seeing each other's events.
/// </summary>
public static class TestPostgres
{
    private static readonly Lazy<string> Url = new(Locate);

    public static string ConnectionString => Url.Value;

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>A fresh, empty schema; dropped with everything in it on dispose.</summary>
    public static async Task<TestSchema> CreateSchemaAsync()
    {
        var name = "t_" + Guid.NewGuid().ToString("N")[..16];
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using (var command = new NpgsqlCommand($"CREATE SCHEMA {name}", connection))
        {
            await command.ExecuteNonQueryAsync();
        }
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString) { SearchPath = name };
        return new TestSchema(name, builder.ConnectionString);
    }

    /// <summary>Runs scripts/test-postgres with the given arguments and environment; returns its stdout.</summary>
    public static string RunScript(string arguments, IDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(Path.Combine(RepositoryRoot, "scripts", "test-postgres"), arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/test-postgres {arguments} failed ({process.ExitCode}): {stderr}");
        }
        return stdout.Trim();
    }

    private static string Locate()
    {
        var fromEnv = Environment.GetEnvironmentVariable("TRC_TEST_POSTGRES");
        return string.IsNullOrEmpty(fromEnv) ? RunScript("start") : fromEnv;
    }

    private static string FindRepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "trc.slnx")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? Environment.GetEnvironmentVariable("TRC_REPOSITORY_ROOT") ?? Environment.CurrentDirectory;
    }
}

/// <summary>A schema of the test database, dropped on dispose.</summary>
public sealed class TestSchema(string name, string connectionString) : IAsyncDisposable
{
    public string Name { get; } = name;

    /// <summary>A connection string whose search path is this schema.</summary>
    public string ConnectionString { get; } = connectionString;

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(TestPostgres.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {Name} CASCADE", connection);
        await command.ExecuteNonQueryAsync();
    }
}
