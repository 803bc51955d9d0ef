using System.Diagnostics.CodeAnalysis;

namespace Trc.Oci.Images;

/// <summary>
/// A reference to an image in a local OCI image layout directory, written <c>oci:DIR[:tag]</c> as
/// skopeo and buildah write it. The directory ends at the first ':' after the scheme, so a
/// directory whose name contains ':' cannot be named this way.
/// </summary>
/// <remarks>
/// <c>oci:foo</c> is also a valid registry reference (<c>docker.io/library/oci:foo</c>); the scheme
/// wins, and that image is written in full to mean the registry.
/// </remarks>
public sealed record OciLayoutReference
{
    /// <summary>The scheme prefix, <c>oci:</c>.</summary>
    public const string Scheme = "oci:";

    private OciLayoutReference(string directory, string? tag)
    {
        Directory = directory;
        Tag = tag;
    }

    /// <summary>The layout directory, as written.</summary>
    public string Directory { get; }

    /// <summary>
    /// The image's <c>org.opencontainers.image.ref.name</c> in the layout's index, or null to mean
    /// the only image in it.
    /// </summary>
    public string? Tag { get; }

    /// <summary>Whether <paramref name="text"/> starts with <c>oci:</c> and so is meant as a layout reference.</summary>
    /// <param name="text">Any reference text.</param>
    /// <returns>Whether it has the scheme.</returns>
    public static bool HasScheme(string? text) => text is not null && text.StartsWith(Scheme, StringComparison.Ordinal);

    /// <summary>Parses <paramref name="text"/>, throwing <see cref="FormatException"/> naming the offending part.</summary>
    /// <param name="text">Text such as <c>oci:/var/images/app:v1</c>.</param>
    /// <returns>The reference.</returns>
    /// <exception cref="FormatException">The text is not a valid layout reference.</exception>
    public static OciLayoutReference Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var reference, out var error) ? reference : throw new FormatException(error);
    }

    /// <summary>Parses <paramref name="text"/> without throwing.</summary>
    /// <param name="text">Text such as <c>oci:/var/images/app:v1</c>.</param>
    /// <param name="reference">The reference, when the text is valid.</param>
    /// <param name="error">Which part is wrong and why, when it is not.</param>
    /// <returns>Whether the text is a valid layout reference.</returns>
    public static bool TryParse(string? text, [NotNullWhen(true)] out OciLayoutReference? reference, [NotNullWhen(false)] out string? error)
    {
        reference = null;
        if (!HasScheme(text))
        {
            error = $"layout reference \"{Digest.Shorten(text ?? "")}\": must start with \"{Scheme}\"";
            return false;
        }
        var rest = text![Scheme.Length..];
        var colon = rest.IndexOf(':');
        var directory = colon < 0 ? rest : rest[..colon];
        var tag = colon < 0 ? null : rest[(colon + 1)..];
        if (directory.Length == 0)
        {
            error = $"layout reference \"{Digest.Shorten(text)}\": directory is empty";
            return false;
        }
        if (directory.Any(char.IsControl))
        {
            error = $"layout reference \"{Digest.Shorten(text)}\": directory contains a control character";
            return false;
        }
        if (tag is not null && !IsValidRefName(tag, out var why))
        {
            error = $"layout reference \"{Digest.Shorten(text)}\": tag \"{Digest.Shorten(tag)}\" {why}";
            return false;
        }
        reference = new OciLayoutReference(directory, tag);
        error = null;
        return true;
    }

    // OCI image-layout annotation org.opencontainers.image.ref.name:
    // ref ::= component ('/' component)*, component ::= alphanum (separator alphanum)*,
    // alphanum ::= [A-Za-z0-9]+, separator ::= [-._:@+] | '--'
    private static bool IsValidRefName(string tag, [NotNullWhen(false)] out string? why)
    {
        why = null;
        if (tag.Length == 0)
        {
            why = "is empty";
            return false;
        }
        foreach (var component in tag.Split('/'))
        {
            var previousWasAlphaNumeric = false;
            for (var i = 0; i < component.Length; i++)
            {
                var c = component[i];
                if (char.IsAsciiLetterOrDigit(c))
                {
                    previousWasAlphaNumeric = true;
                }
                else if (c is '-' or '.' or '_' or ':' or '@' or '+' && previousWasAlphaNumeric)
                {
                    if (c == '-' && i + 1 < component.Length && component[i + 1] == '-')
                    {
                        i++;
                    }
                    previousWasAlphaNumeric = false;
                }
                else
                {
                    why = $"is not letters and digits joined by '-', '.', '_', ':', '@', '+', '--' or '/'";
                    return false;
                }
            }
            if (!previousWasAlphaNumeric)
            {
                why = "is not letters and digits joined by '-', '.', '_', ':', '@', '+', '--' or '/'";
                return false;
            }
        }
        return true;
    }

    /// <summary>The reference as <c>oci:DIR[:tag]</c>.</summary>
    /// <returns>Text that <see cref="Parse"/> turns back into an equal reference.</returns>
    public override string ToString() => Tag is null ? Scheme + Directory : $"{Scheme}{Directory}:{Tag}";
}
