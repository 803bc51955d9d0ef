namespace Trc.Oci.Layers;

/// <summary>What applying layers did besides writing files.</summary>
public sealed class LayerApplyResult
{
    /// <summary>Entries not written (device nodes, FIFOs, unsupported types), with the reason.</summary>
    public List<SkippedEntry> Skipped { get; } = [];

    /// <summary>Owner of every written entry, by root-relative path (as in the tar, normalized).</summary>
    public List<EntryOwner> Owners { get; } = [];

    /// <summary>Tar entries read.</summary>
    public long Entries { get; internal set; }

    /// <summary>File content bytes written.</summary>
    public long BytesWritten { get; internal set; }
}

/// <summary>An entry that was not written, and why.</summary>
/// <param name="Name">The entry name as stored in the layer.</param>
/// <param name="Type">The tar entry type.</param>
/// <param name="Reason">Why it was skipped.</param>
public sealed record SkippedEntry(string Name, System.Formats.Tar.TarEntryType Type, string Reason);

/// <summary>The owner recorded for a written entry.</summary>
/// <param name="Path">Root-relative path, '/'-separated, no leading slash.</param>
/// <param name="Uid">User id from the header.</param>
/// <param name="Gid">Group id from the header.</param>
public sealed record EntryOwner(string Path, int Uid, int Gid);
