using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Trc.Oci.Images;

/// <summary>
/// A reference to an image in a registry, parsed with the grammar of the distribution project's
/// <c>reference</c> package and normalised the way <c>docker pull</c> does: a name without a
/// registry is on <c>docker.io</c>, and a single-component name there is under <c>library/</c>.
/// </summary>
/// <remarks>
/// The local layout form <c>oci:DIR[:tag]</c> is not an <see cref="ImageReference"/>; it is parsed by
/// <see cref="OciLayoutReference"/>, and a caller that accepts both checks
/// <see cref="OciLayoutReference.HasScheme"/> first.
/// </remarks>
public sealed class ImageReference : IEquatable<ImageReference>
{
    /// <summary>The registry used when a reference names none.</summary>
    public const string DefaultRegistry = "docker.io";

    /// <summary>The tag a registry serves when a reference has neither tag nor digest.</summary>
    public const string DefaultTag = "latest";

    /// <summary>The longest name (registry and repository, as written) the grammar allows.</summary>
    public const int MaxNameLength = 255;

    private const string LegacyDefaultRegistry = "index.docker.io";
    private const string OfficialRepositoryPrefix = "library/";

    private ImageReference(string registry, string repository, string? tag, Digest? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>The registry host, with its port if one was given (<c>docker.io</c>, <c>[::1]:5000</c>).</summary>
    public string Registry { get; }

    /// <summary>The repository path in the registry (<c>library/nginx</c>).</summary>
    public string Repository { get; }

    /// <summary>The tag, or null when the reference has none.</summary>
    public string? Tag { get; }

    /// <summary>The digest, or null when the reference has none. When present it wins over the tag.</summary>
    public Digest? Digest { get; }

    /// <summary>What to put in <c>/v2/&lt;name&gt;/manifests/&lt;reference&gt;</c>: the digest, else the tag, else <c>latest</c>.</summary>
    public string ManifestReference => Digest?.ToString() ?? Tag ?? DefaultTag;

    /// <summary>Parses <paramref name="text"/>, throwing <see cref="FormatException"/> naming the offending part.</summary>
    /// <param name="text">A reference such as <c>nginx:1.25</c>.</param>
    /// <returns>The normalised reference.</returns>
    /// <exception cref="FormatException">The text is not a valid reference.</exception>
    public static ImageReference Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var reference, out var error) ? reference : throw new FormatException(error);
    }

    /// <summary>Parses <paramref name="text"/> without throwing.</summary>
    /// <param name="text">A reference such as <c>registry.example.com:5000/team/app:tag@sha256:...</c>.</param>
    /// <param name="reference">The normalised reference, when the text is valid.</param>
    /// <param name="error">Which part is wrong and why, when it is not.</param>
    /// <returns>Whether the text is a valid reference.</returns>
    public static bool TryParse(string? text, [NotNullWhen(true)] out ImageReference? reference, [NotNullWhen(false)] out string? error)
    {
        reference = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "reference is empty";
            return false;
        }
        if (text.Length > 1024)
        {
            error = $"reference \"{Digest.Shorten(text)}\": longer than 1024 characters";
            return false;
        }

        var rest = text;
        Digest? digest = null;
        var at = rest.IndexOf('@');
        if (at >= 0)
        {
            if (!Digest.TryParse(rest[(at + 1)..], out digest, out var digestError))
            {
                error = digestError;
                return false;
            }
            rest = rest[..at];
        }

        // The tag separator is the last ':' after the last '/'; a ':' before a '/' is a port.
        string? tag = null;
        var colon = rest.LastIndexOf(':');
        if (colon > rest.LastIndexOf('/') && colon > rest.LastIndexOf(']'))
        {
            tag = rest[(colon + 1)..];
            if (!IsValidTag(tag, out var tagError))
            {
                error = tagError;
                return false;
            }
            rest = rest[..colon];
        }

        if (rest.Length == 0)
        {
            error = $"reference \"{Digest.Shorten(text)}\": name is empty";
            return false;
        }
        string registry;
        string repository;
        var slash = rest.IndexOf('/');
        var first = slash < 0 ? rest : rest[..slash];
        // Distribution's splitDockerDomain: the first component is a registry only if it looks like a host.
        if (slash >= 0 && (first.Contains('.') || first.Contains(':') || first == "localhost" || first.Any(char.IsAsciiLetterUpper)))
        {
            if (!IsValidRegistry(first, out var registryError))
            {
                error = registryError;
                return false;
            }
            registry = first == LegacyDefaultRegistry ? DefaultRegistry : first;
            repository = rest[(slash + 1)..];
        }
        else
        {
            registry = DefaultRegistry;
            repository = rest;
        }

        if (!IsValidRepository(repository, out var repositoryError))
        {
            error = repositoryError;
            return false;
        }
        if (registry == DefaultRegistry && !repository.Contains('/'))
        {
            repository = OfficialRepositoryPrefix + repository;
        }
        // Distribution checks the length of the normalised name, so ToString always parses back.
        if (registry.Length + 1 + repository.Length > MaxNameLength)
        {
            error = $"name \"{Digest.Shorten(registry + "/" + repository)}\": longer than {MaxNameLength} characters";
            return false;
        }

        reference = new ImageReference(registry, repository, tag, digest);
        error = null;
        return true;
    }

    /// <summary>Whether <paramref name="tag"/> matches <c>[\w][\w.-]{0,127}</c>.</summary>
    /// <param name="tag">The tag.</param>
    /// <param name="error">Why not, when it does not.</param>
    /// <returns>Whether the tag is valid.</returns>
    public static bool IsValidTag(string tag, [NotNullWhen(false)] out string? error)
    {
        error = null;
        if (tag.Length == 0)
        {
            error = "tag is empty";
        }
        else if (tag.Length > 128)
        {
            error = $"tag \"{Digest.Shorten(tag)}\": longer than 128 characters";
        }
        else if (!IsWordChar(tag[0]))
        {
            error = $"tag \"{Digest.Shorten(tag)}\": must start with a letter, digit or underscore";
        }
        else
        {
            foreach (var c in tag)
            {
                if (!IsWordChar(c) && c is not ('.' or '-'))
                {
                    error = $"tag \"{Digest.Shorten(tag)}\": '{c}' is not allowed (letters, digits, '_', '.' and '-' are)";
                    break;
                }
            }
        }
        return error is null;
    }

    // repository ::= path-component ('/' path-component)*
    // path-component ::= [a-z0-9]+ (separator [a-z0-9]+)*, separator ::= [_.] | '__' | '-'*
    private static bool IsValidRepository(string repository, [NotNullWhen(false)] out string? error)
    {
        error = null;
        if (repository.Length == 0)
        {
            error = "repository is empty";
            return false;
        }
        foreach (var component in repository.Split('/'))
        {
            if (!IsValidPathComponent(component, out var why))
            {
                error = $"repository \"{Digest.Shorten(repository)}\": component \"{Digest.Shorten(component)}\" {why}";
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// Whether <paramref name="component"/> is one component of a repository name (the distribution
    /// grammar: lowercase letters and digits, joined inside by '.', '_', '__' or dashes).
    /// </summary>
    /// <param name="component">One '/'-separated part of a repository name.</param>
    /// <param name="why">What is wrong with it, when it is not.</param>
    /// <returns>Whether it is valid.</returns>
    public static bool IsValidPathComponent(string component, [NotNullWhen(false)] out string? why)
    {
        why = null;
        if (component.Length == 0)
        {
            why = "is empty";
            return false;
        }
        var i = 0;
        while (true)
        {
            var start = i;
            while (i < component.Length && IsLowerAlphaNumeric(component[i]))
            {
                i++;
            }
            if (i == start)
            {
                why = i < component.Length && char.IsAsciiLetterUpper(component[i]) ? "must be lowercase"
                    :  i == 0 ? "must start with a lowercase letter or digit" : "has a separator that is not followed by a lowercase letter or digit";
                return false;
            }
            if (i == component.Length)
            {
                return true;
            }
            var c = component[i];
            if (c == '.')
            {
                i++;
            }
            else if (c == '_')
            {
                i += i + 1 < component.Length && component[i + 1] == '_' ? 2 : 1;
            }
            else if (c == '-')
            {
                while (i < component.Length && component[i] == '-')
                {
                    i++;
                }
            }
            else
            {
                why = char.IsAsciiLetterUpper(c)
                    ? "must be lowercase"
                    : $"has '{c}', which is not allowed (lowercase letters, digits and the separators '.', '_', '__' and '-' are)";
                return false;
            }
            if (i == component.Length)
            {
                why = "must end with a lowercase letter or digit";
                return false;
            }
        }
    }

    // domain ::= host (':' port)?, host ::= domain-name | '[' IPv6 ']'
    // domain-name ::= component ('.' component)*, component ::= [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    private static bool IsValidRegistry(string registry, [NotNullWhen(false)] out string? error)
    {
        error = null;
        string host;
        string? port = null;
        if (registry.StartsWith('['))
        {
            var close = registry.IndexOf(']');
            if (close < 0)
            {
                error = $"registry \"{registry}\": '[' without a closing ']'";
                return false;
            }
            var address = registry[1..close];
            if (address.Length == 0 || !address.All(c => char.IsAsciiHexDigit(c) || c == ':')
                || !IPAddress.TryParse(address, out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"registry \"{registry}\": \"{address}\" is not an IPv6 address";
                return false;
            }
            var after = registry[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':')
                {
                    error = $"registry \"{registry}\": only \":port\" may follow \"]\"";
                    return false;
                }
                port = after[1..];
            }
            host = registry[..(close + 1)];
        }
        else
        {
            var colon = registry.IndexOf(':');
            host = colon < 0 ? registry : registry[..colon];
            port = colon < 0 ? null : registry[(colon + 1)..];
            foreach (var component in host.Split('.'))
            {
                if (component.Length == 0 || !component.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')
                    || component[0] == '-' || component[^1] == '-')
                {
                    error = $"registry \"{registry}\": host component \"{component}\" must be letters, digits and inner '-'";
                    return false;
                }
            }
        }
        if (port is not null && (port.Length == 0 || !port.All(char.IsAsciiDigit)))
        {
            error = $"registry \"{registry}\": port \"{port}\" must be digits";
            return false;
        }
        return true;
    }

    private static bool IsLowerAlphaNumeric(char c) => c is (>= 'a' and <= 'z') or (>= '0' and <= '9');

    private static bool IsWordChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    /// <summary>The canonical, fully qualified form: <c>registry/repository[:tag][@digest]</c>.</summary>
    /// <returns>Text that <see cref="Parse"/> turns back into an equal reference.</returns>
    public override string ToString() =>
        $"{Registry}/{Repository}{(Tag is null ? "" : ":" + Tag)}{(Digest is null ? "" : "@" + Digest)}";

    /// <inheritdoc />
    public bool Equals(ImageReference? other) =>
        other is not null && Registry == other.Registry && Repository == other.Repository && Tag == other.Tag && Digest == other.Digest;

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as ImageReference);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Registry, Repository, Tag, Digest);
}
