namespace Trc.Oci.Images;

/// <summary>The media types an image pull meets, OCI and their Docker equivalents.</summary>
public static class MediaTypes
{
    /// <summary>OCI image manifest.</summary>
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";

    /// <summary>OCI image index (multi-platform).</summary>
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";

    /// <summary>OCI image configuration.</summary>
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";

    /// <summary>OCI layer, uncompressed tar.</summary>
    public const string OciLayerTar = "application/vnd.oci.image.layer.v1.tar";

    /// <summary>OCI layer, gzip-compressed tar.</summary>
    public const string OciLayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

    /// <summary>OCI layer, zstd-compressed tar.</summary>
    public const string OciLayerTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd";

    /// <summary>Docker image manifest, version 2 schema 2.</summary>
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

    /// <summary>Docker manifest list (multi-platform).</summary>
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

    /// <summary>Docker container configuration.</summary>
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";

    /// <summary>Docker layer, gzip-compressed tar.</summary>
    public const string DockerLayerTarGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// <summary>
    /// The <c>Accept</c> header for a manifest request: every manifest and index type this client
    /// understands, OCI first. Docker schema 1 is left out on purpose, so registries convert or refuse.
    /// </summary>
    public const string ManifestAccept = OciIndex + ", " + OciManifest + ", " + DockerManifestList + ", " + DockerManifest;

    /// <summary>Whether <paramref name="mediaType"/> is a single-platform image manifest type.</summary>
    /// <param name="mediaType">A media type without parameters.</param>
    /// <returns>Whether it is an OCI or Docker image manifest.</returns>
    public static bool IsManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;

    /// <summary>Whether <paramref name="mediaType"/> is a multi-platform index type.</summary>
    /// <param name="mediaType">A media type without parameters.</param>
    /// <returns>Whether it is an OCI index or Docker manifest list.</returns>
    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;

    /// <summary>Whether <paramref name="mediaType"/> is a layer type this client can unpack.</summary>
    /// <param name="mediaType">A media type without parameters.</param>
    /// <returns>Whether it is a known tar layer type.</returns>
    public static bool IsLayer(string? mediaType) =>
        mediaType is OciLayerTar or OciLayerTarGzip or OciLayerTarZstd or DockerLayerTarGzip;

    /// <summary>The media type without parameters, lowercased and trimmed (<c>a/b; charset=utf-8</c> is <c>a/b</c>).</summary>
    /// <param name="contentType">A Content-Type header value.</param>
    /// <returns>The bare media type, or null when there is none.</returns>
    public static string? Bare(string? contentType)
    {
        if (contentType is null)
        {
            return null;
        }
        var semicolon = contentType.IndexOf(';');
        var bare = (semicolon < 0 ? contentType : contentType[..semicolon]).Trim().ToLowerInvariant();
        return bare.Length == 0 ? null : bare;
    }
}
