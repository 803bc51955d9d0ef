using System.Text.Encodings.Web;
using System.Text.Json;

namespace Trc.Core.Manifest;

/// <summary>
/// The normalized JSON form of a manifest (<c>trc manifest json</c>): every default filled, sizes in
/// bytes, durations in milliseconds, keys in a fixed order. Releases store this form, so it must
/// only ever gain optional fields.
/// </summary>
public static class ManifestJson
{
    /// <summary>Writes the manifest as indented JSON ending with a newline.</summary>
    public static string Serialize(AppManifest manifest)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            Write(writer, manifest);
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>Writes the manifest to a JSON writer.</summary>
    public static void Write(Utf8JsonWriter w, AppManifest manifest)
    {
        w.WriteStartObject();
        w.WriteString("app", manifest.App);
        w.WriteStartObject("processes");
        foreach (var p in manifest.Processes)
        {
            w.WriteStartObject(p.Name);
            if (p.Command is null)
            {
                w.WriteNull("command");
            }
            else
            {
                w.WriteStartArray("command");
                foreach (var arg in p.Command)
                {
                    w.WriteStringValue(arg);
                }
                w.WriteEndArray();
            }
            w.WriteStartArray("ports");
            foreach (var port in p.Ports)
            {
                w.WriteNumberValue(port);
            }
            w.WriteEndArray();
            w.WriteNumber("cpu", p.Cpu);
            w.WriteNumber("memory_bytes", p.MemoryBytes);
            WriteStringOrNull(w, "user", p.User);
            w.WriteStartObject("scaling");
            w.WriteNumber("min", p.Scaling.Min);
            w.WriteNumber("max", p.Scaling.Max);
            w.WriteEndObject();
            if (p.Healthcheck is not { } h)
            {
                w.WriteNull("healthcheck");
            }
            else
            {
                w.WriteStartObject("healthcheck");
                w.WriteString("type", h.Kind == HealthcheckKind.Tcp ? "tcp" : "http");
                w.WriteNumber("port", h.Port);
                WriteStringOrNull(w, "path", h.Path);
                w.WriteNumber("interval_ms", (long)h.Interval.TotalMilliseconds);
                w.WriteNumber("timeout_ms", (long)h.Timeout.TotalMilliseconds);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();

        w.WriteStartArray("routes");
        foreach (var r in manifest.Routes)
        {
            w.WriteStartObject();
            w.WriteString("hostname", r.Hostname);
            w.WriteNumber("listen_port", r.ListenPort);
            w.WriteString("protocol", r.Protocol == RouteProtocol.TcpRaw ? "tcp_raw" : "tls_passthrough");
            w.WriteString("process", r.Process);
            w.WriteNumber("backend_port", r.BackendPort);
            w.WriteString("proxy_protocol", r.ProxyProtocol == ProxyProtocolMode.V2 ? "v2" : "off");
            w.WriteBoolean("backend_expects_proxy_protocol", r.BackendExpectsProxyProtocol);
            w.WriteBoolean("ipv4_required", r.Ipv4Required);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        w.WriteStartArray("volumes");
        foreach (var v in manifest.Volumes)
        {
            w.WriteStartObject();
            w.WriteString("name", v.Name);
            w.WriteNumber("size_bytes", v.SizeBytes);
            w.WriteString("process", v.Process);
            w.WriteBoolean("backup_enabled", v.BackupEnabled);
            w.WriteString("mount_path", v.MountPath);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>
    /// Reads the normalized form back (as releases store it): the inverse of <see cref="Write"/>.
    /// Only for JSON this class wrote; anything else throws <see cref="JsonException"/>.
    /// </summary>
    public static AppManifest Read(JsonElement root)
    {
        try
        {
            var processes = root.GetProperty("processes").EnumerateObject().Select(p =>
            {
                var v = p.Value;
                var command = v.GetProperty("command") is { ValueKind: JsonValueKind.Array } c ? c.EnumerateArray().Select(a => a.GetString()!).ToList() : null;
                var scaling = v.GetProperty("scaling");
                HealthcheckSpec? health = null;
                if (v.GetProperty("healthcheck") is { ValueKind: JsonValueKind.Object } h)
                {
                    health = new HealthcheckSpec(
                        h.GetProperty("type").GetString() == "http" ? HealthcheckKind.Http : HealthcheckKind.Tcp,
                        h.GetProperty("port").GetInt32(),
                        h.GetProperty("path").GetString(),
                        TimeSpan.FromMilliseconds(h.GetProperty("interval_ms").GetInt64()),
                        TimeSpan.FromMilliseconds(h.GetProperty("timeout_ms").GetInt64()));
                }
                return new ProcessSpec(
                    p.Name,
                    command,
                    v.GetProperty("ports").EnumerateArray().Select(x => x.GetInt32()).ToList(),
                    v.GetProperty("cpu").GetDecimal(),
                    v.GetProperty("memory_bytes").GetInt64(),
                    v.GetProperty("user").GetString(),
                    new ScalingSpec(scaling.GetProperty("min").GetInt32(), scaling.GetProperty("max").GetInt32()),
                    health);
            }).ToList();
            var routes = root.GetProperty("routes").EnumerateArray().Select(r => new RouteSpec(
                r.GetProperty("hostname").GetString()!,
                r.GetProperty("listen_port").GetInt32(),
                r.GetProperty("protocol").GetString() == "tcp_raw" ? RouteProtocol.TcpRaw : RouteProtocol.TlsPassthrough,
                r.GetProperty("process").GetString()!,
                r.GetProperty("backend_port").GetInt32(),
                r.GetProperty("proxy_protocol").GetString() == "v2" ? ProxyProtocolMode.V2 : ProxyProtocolMode.Off,
                r.GetProperty("backend_expects_proxy_protocol").GetBoolean(),
                r.GetProperty("ipv4_required").GetBoolean())).ToList();
            var volumes = root.GetProperty("volumes").EnumerateArray().Select(v => new VolumeSpec(
                v.GetProperty("name").GetString()!,
                v.GetProperty("size_bytes").GetInt64(),
                v.GetProperty("process").GetString()!,
                v.GetProperty("backup_enabled").GetBoolean())).ToList();
            return new AppManifest(root.GetProperty("app").GetString()!, processes, routes, volumes);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new JsonException("not a normalized manifest: " + e.Message, e);
        }
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }
}
