namespace Trc.Oci.RootDisks;

/// <summary>
/// A root disk could not be built: a tool (mkfs.ext4, debugfs) is missing or failed, or the populated
/// tree holds something the builder cannot put on the disk. The message says which, with the tool's
/// own error output when there is one. (File-system errors on the cache directory itself surface as
/// the <see cref="IOException"/> they are.)
/// </summary>
public sealed class RootDiskException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="toolOutput">The standard error of the tool that failed, if any.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public RootDiskException(string message, string? toolOutput = null, Exception? inner = null)
        : base(toolOutput is { Length: > 0 } ? $"{message}: {toolOutput.Trim()}" : message, inner)
    {
        ToolOutput = toolOutput;
    }

    /// <summary>The standard error of the tool that failed, when a tool failed.</summary>
    public string? ToolOutput { get; }
}
