namespace Trc.Oci.RootDisks;

/// <summary>What <see cref="RootDiskCache.CollectGarbage"/> did.</summary>
/// <param name="DisksDeleted">Published disks deleted (with their configuration).</param>
/// <param name="DisksKept">Published disks left in place: kept, recently used, or being built.</param>
/// <param name="TempEntriesDeleted">Abandoned build directories and stray files deleted.</param>
/// <param name="BytesFreed">Bytes the deleted files occupied on the host's disk (allocated, not apparent: disks are sparse).</param>
public sealed record RootDiskGcResult(int DisksDeleted, int DisksKept, int TempEntriesDeleted, long BytesFreed);
