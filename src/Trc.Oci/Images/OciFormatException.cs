namespace Trc.Oci.Images;

/// <summary>
/// A manifest, index or configuration document is not valid. The message starts with the JSON
/// path of the offending value (<c>layers[2].digest: ...</c>) when there is one.
/// </summary>
public sealed class OciFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="path">The JSON path of the offending value, or empty for the document as a whole.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="inner">The exception that revealed the problem, if any.</param>
    public OciFormatException(string path, string problem, Exception? inner = null)
        : base(path.Length == 0 ? problem : $"{path}: {problem}", inner)
    {
        JsonPath = path;
        Problem = problem;
    }

    /// <summary>The JSON path of the offending value, without the leading <c>$.</c>; empty for the whole document.</summary>
    public string JsonPath { get; }

    /// <summary>What is wrong, without the path.</summary>
    public string Problem { get; }
}
