using System.Data.Common;
using Trc.EventStore.Projections;

namespace Trc.EventStore;

/// <summary>
/// The relational database under an event store, for tables that live beside the log: read
/// models (read through this, written by projections) and data that is not an event (encrypted
/// secret bundles). Both backends implement it.
/// </summary>
public interface ISqlDatabase
{
    /// <summary>Which SQL dialect the database speaks.</summary>
    SqlDialect Dialect { get; }

    /// <summary>An open connection (pooled); dispose it to return it.</summary>
    Task<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken);
}

/// <summary>Commands with <c>@name</c> parameters, which both dialects accept.</summary>
public static class SqlCommands
{
    /// <summary>A command on <paramref name="connection"/> (in <paramref name="transaction"/>, if any); a null value is SQL NULL.</summary>
    public static DbCommand Create(DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }
        return command;
    }
}
