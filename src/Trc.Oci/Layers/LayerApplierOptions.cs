namespace Trc.Oci.Layers;

/// <summary>Limits and permissions for <see cref="LayerApplier"/>.</summary>
public sealed record LayerApplierOptions
{
    /// <summary>Cap on file bytes written over all layers applied by one applier (default 64 GiB).</summary>
    public long MaxTotalBytes { get; init; } = 64L << 30;

    /// <summary>Cap on tar entries read over all layers applied by one applier (default 1,000,000).</summary>
    public long MaxEntries { get; init; } = 1_000_000;

    /// <summary>Keep setuid and setgid bits from the headers (default false: they are dropped).</summary>
    public bool KeepSetuidSetgid { get; init; }

    /// <summary>
    /// Apply uid/gid with lchown. Only takes effect when the process is privileged; otherwise the
    /// owners are only recorded in <see cref="LayerApplyResult.Owners"/>. The root disk is later built
    /// with <c>mkfs.ext4 -d</c>, which copies ownership from the files on disk, so an unprivileged run
    /// gives a disk owned by the applying user unless the caller maps the recorded owners itself.
    /// </summary>
    public bool ApplyOwnership { get; init; }
}
