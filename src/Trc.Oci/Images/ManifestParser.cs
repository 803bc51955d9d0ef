using System.Text.Json;

namespace Trc.Oci.Images;

/// <summary>
/// Parses and validates manifests, indexes and image configurations. Every problem, including
/// malformed, truncated or hostile JSON, is an <see cref="OciFormatException"/> that names the JSON
/// path of the offending value; nothing else escapes.
/// </summary>
/// <remarks>
/// Duplicate object keys are refused: two parsers that keep different duplicates would see
/// different content behind one digest. Unknown keys are ignored, as the image spec requires.
/// </remarks>
public static class ManifestParser
{
    /// <summary>The largest manifest or index accepted, 4 MiB (the limit distribution and containerd use).</summary>
    public const int MaxManifestBytes = 4 * 1024 * 1024;

    /// <summary>The largest image configuration accepted, 8 MiB.</summary>
    public const int MaxConfigBytes = 8 * 1024 * 1024;

    private const int MaxDepth = 32;

    private static readonly JsonDocumentOptions DocumentOptions = new()
    {
        MaxDepth = MaxDepth,
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowDuplicateProperties = false,
    };

    /// <summary>Parses a manifest or an index.</summary>
    /// <param name="body">The response body.</param>
    /// <param name="contentType">The response's Content-Type, or null. Used only when the body has no <c>mediaType</c>.</param>
    /// <returns>An <see cref="ImageManifest"/> or an <see cref="ImageIndex"/>.</returns>
    /// <exception cref="OciFormatException">The body is not a valid manifest or index.</exception>
    public static ManifestDocument Parse(ReadOnlySpan<byte> body, string? contentType)
    {
        if (body.Length > MaxManifestBytes)
        {
            throw new OciFormatException("", $"manifest is {body.Length} bytes, more than the {MaxManifestBytes} byte limit");
        }
        return Guard(body, root =>
        {
            var kind = DecideKind(root, MediaTypes.Bare(contentType));
            var schemaVersion = RequireSchemaVersion(root);
            var mediaType = OptionalString(root, "mediaType", "");
            var annotations = OptionalStringMap(root, "annotations", "");
            return kind == Kind.Index
                ? new ImageIndex
                {
                    SchemaVersion = schemaVersion,
                    MediaType = mediaType,
                    Annotations = annotations,
                    Manifests = RequireDescriptors(root, "manifests", allowPlatform: true),
                }
                : (ManifestDocument)new ImageManifest
                {
                    SchemaVersion = schemaVersion,
                    MediaType = mediaType,
                    Annotations = annotations,
                    Config = ReadDescriptor(Require(root, "config", ""), "config", allowPlatform: false),
                    Layers = RequireDescriptors(root, "layers", allowPlatform: false),
                };
        });
    }

    /// <summary>Parses an image configuration blob.</summary>
    /// <param name="body">The configuration bytes.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="OciFormatException">The body is not a valid image configuration.</exception>
    public static ImageConfig ParseConfig(ReadOnlySpan<byte> body)
    {
        if (body.Length > MaxConfigBytes)
        {
            throw new OciFormatException("", $"image config is {body.Length} bytes, more than the {MaxConfigBytes} byte limit");
        }
        return Guard(body, root =>
        {
            ContainerConfig? config = null;
            if (root.TryGetProperty("config", out var c) && c.ValueKind != JsonValueKind.Null)
            {
                ExpectKind(c, JsonValueKind.Object, "config", "an object");
                config = new ContainerConfig
                {
                    Entrypoint = OptionalStringList(c, "Entrypoint", "config"),
                    Cmd = OptionalStringList(c, "Cmd", "config"),
                    Env = OptionalStringList(c, "Env", "config"),
                    WorkingDir = OptionalString(c, "WorkingDir", "config"),
                    User = OptionalString(c, "User", "config"),
                    ExposedPorts = OptionalKeys(c, "ExposedPorts", "config"),
                };
            }
            var rootFs = Require(root, "rootfs", "");
            ExpectKind(rootFs, JsonValueKind.Object, "rootfs", "an object");
            var type = RequireString(rootFs, "type", "rootfs");
            if (type != "layers")
            {
                throw new OciFormatException("rootfs.type", $"must be \"layers\", not \"{Digest.Shorten(type)}\"");
            }
            var diffIds = Require(rootFs, "diff_ids", "rootfs");
            ExpectKind(diffIds, JsonValueKind.Array, "rootfs.diff_ids", "an array");
            var digests = new List<Digest>();
            var i = 0;
            foreach (var item in diffIds.EnumerateArray())
            {
                digests.Add(ReadDigest(item, $"rootfs.diff_ids[{i++}]"));
            }
            return new ImageConfig
            {
                Architecture = RequireString(root, "architecture", ""),
                Os = RequireString(root, "os", ""),
                Variant = OptionalString(root, "variant", ""),
                Config = config,
                RootFs = new RootFs { Type = type, DiffIds = digests },
            };
        });
    }

    private enum Kind
    {
        Manifest,
        Index,
    }

    // Every exception from parsing becomes an OciFormatException: callers catch one type, whatever the body.
    private static T Guard<T>(ReadOnlySpan<byte> body, Func<JsonElement, T> read)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body.ToArray(), DocumentOptions);
        }
        catch (JsonException ex)
        {
            throw new OciFormatException("", $"not valid JSON: {ex.Message}", ex);
        }
        using (document)
        {
            try
            {
                ExpectKind(document.RootElement, JsonValueKind.Object, "", "a JSON object");
                return read(document.RootElement);
            }
            catch (OciFormatException)
            {
                throw;
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException or OverflowException or JsonException)
            {
                // Invalid UTF-8 inside a string surfaces here, when the string is decoded.
                throw new OciFormatException("", $"malformed document: {ex.Message}", ex);
            }
        }
    }

    private static Kind DecideKind(JsonElement root, string? contentType)
    {
        if (root.TryGetProperty("mediaType", out var mediaTypeElement) && mediaTypeElement.ValueKind != JsonValueKind.Null)
        {
            var mediaType = ReadString(mediaTypeElement, "mediaType");
            return MediaTypes.IsIndex(mediaType) ? Kind.Index
                : MediaTypes.IsManifest(mediaType) ? Kind.Manifest
                : throw new OciFormatException("mediaType", $"\"{Digest.Shorten(mediaType)}\" is not a manifest or index type this client reads");
        }
        if (MediaTypes.IsIndex(contentType))
        {
            return Kind.Index;
        }
        if (MediaTypes.IsManifest(contentType))
        {
            return Kind.Manifest;
        }
        var hasManifests = root.TryGetProperty("manifests", out _);
        var hasLayers = root.TryGetProperty("layers", out _);
        return (hasManifests, hasLayers) switch
        {
            (true, false) => Kind.Index,
            (false, true) => Kind.Manifest,
            (true, true) => throw new OciFormatException("", "has both \"manifests\" and \"layers\" and no mediaType to say which it is"),
            _ => throw new OciFormatException("", "has no mediaType, no manifest Content-Type, and neither \"manifests\" nor \"layers\""),
        };
    }

    private static int RequireSchemaVersion(JsonElement root)
    {
        var element = Require(root, "schemaVersion", "");
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt32(out var version))
        {
            throw new OciFormatException("schemaVersion", "must be the number 2");
        }
        return version switch
        {
            2 => 2,
            1 => throw new OciFormatException("schemaVersion", "1 is Docker schema 1, which is not supported; only 2 is"),
            _ => throw new OciFormatException("schemaVersion", $"{version} is not supported; only 2 is"),
        };
    }

    private static List<Descriptor> RequireDescriptors(JsonElement parent, string name, bool allowPlatform)
    {
        var array = Require(parent, name, "");
        ExpectKind(array, JsonValueKind.Array, name, "an array");
        var descriptors = new List<Descriptor>(array.GetArrayLength());
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            descriptors.Add(ReadDescriptor(item, $"{name}[{i++}]", allowPlatform));
        }
        return descriptors;
    }

    private static Descriptor ReadDescriptor(JsonElement element, string path, bool allowPlatform)
    {
        ExpectKind(element, JsonValueKind.Object, path, "a descriptor object");
        var sizeElement = Require(element, "size", path);
        if (sizeElement.ValueKind != JsonValueKind.Number || !sizeElement.TryGetInt64(out var size) || size < 0)
        {
            throw new OciFormatException(Join(path, "size"), "must be a whole number of bytes from 0 to 2^63-1");
        }
        Platform? platform = null;
        if (allowPlatform && element.TryGetProperty("platform", out var p) && p.ValueKind != JsonValueKind.Null)
        {
            platform = ReadPlatform(p, Join(path, "platform"));
        }
        return new Descriptor
        {
            MediaType = RequireString(element, "mediaType", path),
            Digest = ReadDigest(Require(element, "digest", path), Join(path, "digest")),
            Size = size,
            Urls = OptionalStringList(element, "urls", path),
            Annotations = OptionalStringMap(element, "annotations", path),
            Platform = platform,
            ArtifactType = OptionalString(element, "artifactType", path),
        };
    }

    private static Platform ReadPlatform(JsonElement element, string path)
    {
        ExpectKind(element, JsonValueKind.Object, path, "an object");
        return new Platform
        {
            Architecture = RequireString(element, "architecture", path),
            Os = RequireString(element, "os", path),
            Variant = OptionalString(element, "variant", path),
            OsVersion = OptionalString(element, "os.version", path),
            OsFeatures = OptionalStringList(element, "os.features", path),
        };
    }

    private static Digest ReadDigest(JsonElement element, string path)
    {
        var text = ReadString(element, path);
        return Digest.TryParse(text, out var digest, out var error) ? digest : throw new OciFormatException(path, error);
    }

    private static JsonElement Require(JsonElement parent, string name, string path) =>
        parent.TryGetProperty(name, out var element) && element.ValueKind != JsonValueKind.Null
            ? element
            : throw new OciFormatException(Join(path, name), "is required");

    private static string RequireString(JsonElement parent, string name, string path) =>
        ReadString(Require(parent, name, path), Join(path, name));

    private static string? OptionalString(JsonElement parent, string name, string path) =>
        parent.TryGetProperty(name, out var element) && element.ValueKind != JsonValueKind.Null
            ? ReadString(element, Join(path, name))
            : null;

    private static List<string>? OptionalStringList(JsonElement parent, string name, string path)
    {
        if (!parent.TryGetProperty(name, out var array) || array.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        var arrayPath = Join(path, name);
        ExpectKind(array, JsonValueKind.Array, arrayPath, "an array of strings");
        var list = new List<string>(array.GetArrayLength());
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            list.Add(ReadString(item, $"{arrayPath}[{i++}]"));
        }
        return list;
    }

    private static Dictionary<string, string>? OptionalStringMap(JsonElement parent, string name, string path)
    {
        if (!parent.TryGetProperty(name, out var map) || map.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        var mapPath = Join(path, name);
        ExpectKind(map, JsonValueKind.Object, mapPath, "an object of strings");
        var dictionary = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in map.EnumerateObject())
        {
            dictionary[property.Name] = ReadString(property.Value, Join(mapPath, property.Name));
        }
        return dictionary;
    }

    private static List<string>? OptionalKeys(JsonElement parent, string name, string path)
    {
        if (!parent.TryGetProperty(name, out var map) || map.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        ExpectKind(map, JsonValueKind.Object, Join(path, name), "an object");
        return map.EnumerateObject().Select(p => p.Name).ToList();
    }

    private static string ReadString(JsonElement element, string path)
    {
        ExpectKind(element, JsonValueKind.String, path, "a string");
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new OciFormatException(path, "is not valid UTF-8");
        }
    }

    private static void ExpectKind(JsonElement element, JsonValueKind kind, string path, string what)
    {
        if (element.ValueKind != kind)
        {
            throw new OciFormatException(path, $"must be {what}, not {Describe(element.ValueKind)}");
        }
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    // Keys with a '.' (os.version, annotation names) are bracketed so the path stays unambiguous.
    private static string Join(string path, string name)
    {
        var segment = name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') ? name : $"[\"{Digest.Shorten(name)}\"]";
        return path.Length == 0 ? segment.TrimStart() : segment.StartsWith('[') ? path + segment : $"{path}.{segment}";
    }
}
