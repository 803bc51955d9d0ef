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
