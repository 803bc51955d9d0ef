using System.Text.Json;
using Trc.Oci.Images;
using Trc.Oci.Registry;
using Trc.Oci.Store;

namespace Trc.Oci.Layout;

/// <summary>
/// An OCI image layout directory (image-spec <c>image-layout.md</c>): <c>oci-layout</c>,
/// <c>index.json</c> and <c>blobs/</c>. Images in it are named by the
/// <c>org.opencontainers.image.ref.name</c> annotation of their <c>index.json</c> entry, as skopeo
/// and umoci write them.
/// </summary>
public sealed class OciLayout
{
    /// <summary>The annotation that names an image in a layout's index.</summary>
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    private OciLayout(string directory)
    {
        Directory = Path.GetFullPath(directory);
        Blobs = new BlobStore(Directory);
    }

    /// <summary>The layout's directory.</summary>
    public string Directory { get; }

    /// <summary>The layout's blobs, as a store.</summary>
    public BlobStore Blobs { get; }

    private string IndexPath => Path.Combine(Directory, "index.json");

    /// <summary>Opens an existing layout.</summary>
    /// <param name="directory">The layout's directory.</param>
    /// <returns>The layout.</returns>
    /// <exception cref="OciFormatException">The directory is not an OCI layout.</exception>
    public static OciLayout Open(string directory)
    {
        var marker = Path.Combine(directory, "oci-layout");
        if (!File.Exists(marker))
        {
            throw new OciFormatException("oci-layout", $"{directory} is not an OCI image layout (it has no oci-layout file)");
        }
        var text = File.ReadAllBytes(marker);
        try
        {
            using var document = JsonDocument.Parse(text);
            if (!document.RootElement.TryGetProperty("imageLayoutVersion", out var version) || version.GetString() != "1.0.0")
            {
                throw new OciFormatException("oci-layout", $"{directory}: imageLayoutVersion must be \"1.0.0\"");
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new OciFormatException("oci-layout", $"{directory}: oci-layout is not the layout marker JSON", e);
        }
        return new OciLayout(directory);
    }

    /// <summary>Opens a layout, creating an empty one when the directory has none.</summary>
    /// <param name="directory">The layout's directory (created if missing).</param>
    /// <returns>The layout.</returns>
    public static OciLayout OpenOrCreate(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        var layout = new OciLayout(directory);
        if (!File.Exists(layout.IndexPath))
        {
            var empty = new ImageIndex { MediaType = MediaTypes.OciIndex, Manifests = [] };
            BlobStore.WriteAtomically(layout.IndexPath, JsonSerializer.SerializeToUtf8Bytes(empty, OciJsonContext.Default.ImageIndex));
        }
        return Open(directory);
    }

    /// <summary>The layout's <c>index.json</c>.</summary>
    /// <returns>The index.</returns>
    /// <exception cref="OciFormatException">It is missing or malformed.</exception>
    public ImageIndex ReadIndex()
    {
        if (!File.Exists(IndexPath))
        {
            throw new OciFormatException("index.json", $"{Directory} has no index.json");
        }
        var bytes = File.ReadAllBytes(IndexPath);
        try
        {
            return ManifestParser.Parse(bytes, MediaTypes.OciIndex) as ImageIndex
                ?? throw new OciFormatException("index.json", "is a manifest, not an index");
        }
        catch (OciFormatException e)
        {
            throw new OciFormatException("index.json", $"{Directory}/index.json: {e.Message}", e);
        }
    }

    /// <summary>Finds the image named <paramref name="tag"/>, or the only image when the tag is null.</summary>
    /// <param name="tag">The image's ref name, or null.</param>
    /// <returns>The index entry.</returns>
    /// <exception cref="RegistryException">No such image (kind <see cref="RegistryErrorKind.NotFound"/>).</exception>
    public Descriptor Find(string? tag)
    {
        var entries = ReadIndex().Manifests;
        if (tag is null)
        {
            return entries.Count == 1
                ? entries[0]
                : throw new RegistryException(RegistryErrorKind.NotFound,
                    $"oci:{Directory}: holds {entries.Count} images; name one with oci:{Directory}:TAG (tags: {Tags(entries)})");
        }
        var found = entries.Where(e => e.Annotations?.GetValueOrDefault(RefNameAnnotation) == tag).ToList();
        return found.Count switch
        {
            1 => found[0],
            0 => throw new RegistryException(RegistryErrorKind.NotFound, $"oci:{Directory}: no image tagged \"{tag}\" (tags: {Tags(entries)})"),
            _ => throw new RegistryException(RegistryErrorKind.BadResponse, $"oci:{Directory}: {found.Count} images are tagged \"{tag}\""),
        };
    }

    /// <summary>Reads a manifest or index blob and checks its digest and size.</summary>
    /// <param name="descriptor">Its descriptor.</param>
    /// <returns>The manifest.</returns>
    public FetchedManifest ReadManifest(Descriptor descriptor)
    {
        var what = $"oci:{Directory}: manifest {descriptor.Digest}";
        byte[] bytes;
        try
        {
            bytes = Blobs.ReadAll(descriptor.Digest, ManifestParser.MaxManifestBytes);
        }
        catch (BlobStoreException e)
        {
            throw new RegistryException(RegistryErrorKind.NotFound, $"{what}: {e.Message}", e);
        }
        var actual = Digest.Compute(descriptor.Digest.Algorithm, bytes);
        if (actual != descriptor.Digest || bytes.Length != descriptor.Size)
        {
            throw new RegistryException(RegistryErrorKind.Verification, $"{what}: the file holds {bytes.Length} bytes hashing to {actual}, not the {descriptor.Size} bytes its descriptor names");
        }
        try
        {
            var document = ManifestParser.Parse(bytes, descriptor.MediaType);
            return new FetchedManifest(actual, document.MediaType ?? descriptor.MediaType, bytes, document);
        }
        catch (OciFormatException e)
        {
            throw new RegistryException(RegistryErrorKind.BadResponse, $"{what}: {e.Message}", e);
        }
    }

    /// <summary>Names <paramref name="descriptor"/> <paramref name="tag"/> in <c>index.json</c>, replacing any image that had that name.</summary>
    /// <param name="descriptor">The manifest or index, already in the layout's blobs.</param>
    /// <param name="tag">The name.</param>
    public void Tag(Descriptor descriptor, string tag)
    {
        if (!ImageReference.IsValidTag(tag, out var error))
        {
            throw new ArgumentException(error, nameof(tag));
        }
        var index = ReadIndex();
        var annotations = new Dictionary<string, string>(descriptor.Annotations ?? new Dictionary<string, string>()) { [RefNameAnnotation] = tag };
        var entries = index.Manifests.Where(e => e.Annotations?.GetValueOrDefault(RefNameAnnotation) != tag).ToList();
        entries.Add(descriptor with { Annotations = annotations });
        var updated = index with { MediaType = MediaTypes.OciIndex, Manifests = entries };
        BlobStore.WriteAtomically(IndexPath, JsonSerializer.SerializeToUtf8Bytes(updated, OciJsonContext.Default.ImageIndex));
    }

    private static string Tags(IReadOnlyList<Descriptor> entries)
    {
        var tags = entries.Select(e => e.Annotations?.GetValueOrDefault(RefNameAnnotation)).Where(t => t is not null).ToList();
        return tags.Count == 0 ? "none" : string.Join(", ", tags);
    }
}
