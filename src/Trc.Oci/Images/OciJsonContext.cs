using System.Text.Json;
using System.Text.Json.Serialization;

namespace Trc.Oci.Images;

/// <summary>
/// Source-generated serialisation of the image models, for writing them (an OCI layout, a test
/// fixture). Reading goes through <see cref="ManifestParser"/>, which validates and names the path of
/// whatever is wrong.
/// </summary>
[JsonSourceGenerationOptions(
    Converters = [typeof(DigestJsonConverter)],
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ImageManifest))]
[JsonSerializable(typeof(ImageIndex))]
[JsonSerializable(typeof(ImageConfig))]
public sealed partial class OciJsonContext : JsonSerializerContext;

/// <summary>Writes and reads a <see cref="Digest"/> as its <c>algorithm:hex</c> string.</summary>
public sealed class DigestJsonConverter : JsonConverter<Digest>
{
    /// <inheritdoc />
    public override Digest Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException("digest must be a string");
        }
        return Digest.TryParse(reader.GetString(), out var digest, out var error) ? digest : throw new JsonException(error);
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, Digest value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}

/// <summary>Writes and reads Docker's port set, <c>{"80/tcp": {}}</c>, as a list of its keys.</summary>
public sealed class PortSetJsonConverter : JsonConverter<IReadOnlyList<string>>
{
    /// <inheritdoc />
    public override IReadOnlyList<string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("port set must be an object");
        }
        var ports = new List<string>();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            ports.Add(reader.GetString()!);
            reader.Read();
            reader.Skip();
        }
        return ports;
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, IReadOnlyList<string> value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        foreach (var port in value)
        {
            writer.WriteStartObject(port);
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
    }
}
