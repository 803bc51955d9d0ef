using System.Text.Json;
using System.Text.Json.Serialization;
using Trc.Oci.Images;

namespace Trc.Oci.RootDisks;

/// <summary>
/// What the guest needs to run the image, written beside the disk as <c>HEX.json</c> (snake_case
/// JSON). Fields are only ever added; <see cref="Format"/> changes only if one changes meaning.
/// </summary>
public sealed record RootDiskConfig
{
    /// <summary>The format version this code writes.</summary>
    public const int CurrentFormat = 1;

    /// <summary>The format version of this record, <see cref="CurrentFormat"/>.</summary>
    [JsonPropertyName("format")]
    public int Format { get; init; } = CurrentFormat;

    /// <summary>The digest of the image manifest the disk was built from.</summary>
    [JsonPropertyName("manifest_digest")]
    public required Digest ManifestDigest { get; init; }

    /// <summary>The image's CPU architecture (<c>amd64</c>).</summary>
    [JsonPropertyName("architecture")]
    public required string Architecture { get; init; }

    /// <summary>The image's operating system (<c>linux</c>).</summary>
    [JsonPropertyName("os")]
    public required string Os { get; init; }

    /// <summary>The CPU variant, or null.</summary>
    [JsonPropertyName("variant")]
    public string? Variant { get; init; }

    /// <summary>The image's entrypoint, or null when it has none.</summary>
    [JsonPropertyName("entrypoint")]
    public IReadOnlyList<string>? Entrypoint { get; init; }

    /// <summary>The image's command (arguments to the entrypoint), or null when it has none.</summary>
    [JsonPropertyName("cmd")]
    public IReadOnlyList<string>? Cmd { get; init; }

    /// <summary>The image's environment as <c>NAME=value</c>, or null when it has none.</summary>
    [JsonPropertyName("env")]
    public IReadOnlyList<string>? Env { get; init; }

    /// <summary>The image's working directory, or null when it has none.</summary>
    [JsonPropertyName("working_dir")]
    public string? WorkingDir { get; init; }

    /// <summary>The image's user (<c>name</c>, <c>uid</c>, <c>uid:gid</c>...), or null when it has none.</summary>
    [JsonPropertyName("user")]
    public string? User { get; init; }

    /// <summary>When the disk was built.</summary>
    [JsonPropertyName("built_at")]
    public required DateTimeOffset BuiltAt { get; init; }

    /// <summary>Bytes of regular file content on the disk (hard links counted once).</summary>
    [JsonPropertyName("content_bytes")]
    public required long ContentBytes { get; init; }

    /// <summary>Files, directories and symlinks on the disk, the root included (hard links counted once).</summary>
    [JsonPropertyName("inodes")]
    public required long Inodes { get; init; }

    /// <summary>The size of the disk.</summary>
    [JsonPropertyName("disk_bytes")]
    public required long DiskBytes { get; init; }

    /// <summary>The ext4 UUID, derived from <see cref="ManifestDigest"/>: the same image gives the same UUID.</summary>
    [JsonPropertyName("filesystem_uuid")]
    public required Guid FilesystemUuid { get; init; }

    /// <summary>Inodes whose owner or mode debugfs set after mkfs (0 when the host files were already right).</summary>
    [JsonPropertyName("inodes_fixed")]
    public required int InodesFixed { get; init; }

    /// <summary>How many image entries were not put on the disk (device nodes, FIFOs...).</summary>
    [JsonPropertyName("skipped_count")]
    public required int SkippedCount { get; init; }

    /// <summary>The first <see cref="MaxSkippedListed"/> of them, with the reason.</summary>
    [JsonPropertyName("skipped")]
    public required IReadOnlyList<RootDiskSkippedEntry> Skipped { get; init; }

    /// <summary>How many skipped entries are listed at most; <see cref="SkippedCount"/> has them all.</summary>
    public const int MaxSkippedListed = 100;

    /// <summary>Serialises the record as the JSON written beside the disk.</summary>
    /// <returns>Indented UTF-8 JSON.</returns>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, RootDiskJsonContext.Default.RootDiskConfig);

    /// <summary>Reads the JSON written beside a disk.</summary>
    /// <param name="json">The file's bytes.</param>
    /// <returns>The record.</returns>
    /// <exception cref="JsonException">The bytes are not a configuration of a format this code reads.</exception>
    public static RootDiskConfig Parse(ReadOnlySpan<byte> json)
    {
        var config = JsonSerializer.Deserialize(json, RootDiskJsonContext.Default.RootDiskConfig)
            ?? throw new JsonException("root disk configuration is null");
        return config.Format == CurrentFormat
            ? config
            : throw new JsonException($"root disk configuration format {config.Format} is not {CurrentFormat}");
    }
}

/// <summary>An image entry that is not on the disk, and why.</summary>
/// <param name="Name">The entry name as stored in the layer.</param>
/// <param name="Type">The tar entry type (<c>Fifo</c>, <c>CharacterDevice</c>...).</param>
/// <param name="Reason">Why it was skipped.</param>
public sealed record RootDiskSkippedEntry(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("reason")] string Reason);

[JsonSourceGenerationOptions(
    WriteIndented = true,
    Converters = [typeof(DigestJsonConverter)],
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(RootDiskConfig))]
internal sealed partial class RootDiskJsonContext : JsonSerializerContext;
