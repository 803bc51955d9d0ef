using System.Text.Json.Serialization;

namespace Trc.Oci.Images;

/// <summary>What <see cref="ManifestParser.Parse"/> returns: an <see cref="ImageManifest"/> or an <see cref="ImageIndex"/>.</summary>
public abstract record ManifestDocument
{
    /// <summary>The schema version; always 2 once parsed.</summary>
    [JsonPropertyName("schemaVersion")]
    public int SchemaVersion { get; init; } = 2;

    /// <summary>The media type as the document states it, or null when it does not.</summary>
    [JsonPropertyName("mediaType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MediaType { get; init; }

    /// <summary>Arbitrary metadata, or null.</summary>
    [JsonPropertyName("annotations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>A single-platform image: a configuration and its layers, base first.</summary>
public sealed record ImageManifest : ManifestDocument
{
    /// <summary>The image configuration blob.</summary>
    [JsonPropertyName("config")]
    public required Descriptor Config { get; init; }

    /// <summary>The layers, base layer first.</summary>
    [JsonPropertyName("layers")]
    public required IReadOnlyList<Descriptor> Layers { get; init; }
}

/// <summary>A multi-platform image: one manifest per platform (an OCI index or a Docker manifest list).</summary>
public sealed record ImageIndex : ManifestDocument
{
    /// <summary>The manifests, each usually with a <see cref="Descriptor.Platform"/>.</summary>
    [JsonPropertyName("manifests")]
    public required IReadOnlyList<Descriptor> Manifests { get; init; }
}
