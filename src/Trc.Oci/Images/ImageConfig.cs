using System.Text.Json.Serialization;

namespace Trc.Oci.Images;

/// <summary>The parts of an OCI/Docker image configuration that running the image needs.</summary>
public sealed record ImageConfig
{
    /// <summary>The CPU architecture (<c>amd64</c>).</summary>
    [JsonPropertyName("architecture")]
    public required string Architecture { get; init; }

    /// <summary>The operating system (<c>linux</c>).</summary>
    [JsonPropertyName("os")]
    public required string Os { get; init; }

    /// <summary>The CPU variant, or null.</summary>
    [JsonPropertyName("variant")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Variant { get; init; }

    /// <summary>The defaults for a container started from the image, or null.</summary>
    [JsonPropertyName("config")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ContainerConfig? Config { get; init; }

    /// <summary>The uncompressed layer digests.</summary>
    [JsonPropertyName("rootfs")]
    public required RootFs RootFs { get; init; }
}

/// <summary>The run defaults in an image configuration; the property names are Docker's.</summary>
public sealed record ContainerConfig
{
    /// <summary>The entrypoint, or null.</summary>
    [JsonPropertyName("Entrypoint")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Entrypoint { get; init; }

    /// <summary>The command (arguments to the entrypoint), or null.</summary>
    [JsonPropertyName("Cmd")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Cmd { get; init; }

    /// <summary>Environment variables as <c>NAME=value</c>, or null.</summary>
    [JsonPropertyName("Env")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Env { get; init; }

    /// <summary>The working directory, or null.</summary>
    [JsonPropertyName("WorkingDir")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? WorkingDir { get; init; }

    /// <summary>The user (<c>name</c>, <c>uid</c>, <c>uid:gid</c>...), or null.</summary>
    [JsonPropertyName("User")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? User { get; init; }

    /// <summary>Exposed ports as <c>port/protocol</c> (<c>80/tcp</c>), or null. JSON writes them as the keys of an object.</summary>
    [JsonPropertyName("ExposedPorts")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    [JsonConverter(typeof(PortSetJsonConverter))]
    public IReadOnlyList<string>? ExposedPorts { get; init; }
}

/// <summary>The root filesystem of an image configuration.</summary>
public sealed record RootFs
{
    /// <summary>Always <c>layers</c>.</summary>
    [JsonPropertyName("type")]
    public required string Type { get; init; }

    /// <summary>The digests of the uncompressed layers, base first.</summary>
    [JsonPropertyName("diff_ids")]
    public required IReadOnlyList<Digest> DiffIds { get; init; }
}
