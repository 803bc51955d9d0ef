using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Trc.Agent.Runtime.Firecracker;

/// <summary>
/// Firecracker refused or did not answer an API request. The message names the request
/// (<c>PUT /drives/vdb</c>) and carries Firecracker's <c>fault_message</c>.
/// </summary>
internal sealed class FirecrackerApiException(string method, string path, HttpStatusCode? status, string? fault, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public string Method { get; } = method;

    public string Path { get; } = path;

    public HttpStatusCode? Status { get; } = status;

    public string? FaultMessage { get; } = fault;
}

/// <summary>
/// The Firecracker API on its unix socket (HTTP/1.1, JSON): the pre-boot configuration of one VM
/// and <c>InstanceStart</c>. Request bodies are the API's own types (the contract test checks each
/// against Firecracker's swagger); nothing secret is ever in one.
/// </summary>
internal sealed class FirecrackerApiClient : IDisposable
{
    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly HttpClient _http;

    public FirecrackerApiClient(string socketPath, TimeSpan requestTimeout)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            UseProxy = false,
            AllowAutoRedirect = false,
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://localhost/"), Timeout = requestTimeout };
    }

    /// <summary>The pre-boot configuration, in the order Firecracker's docs give it, then <c>InstanceStart</c>.</summary>
    public async Task ConfigureAndStartAsync(FirecrackerLaunchPlan plan, CancellationToken ct)
    {
        await PutAsync("/boot-source", new BootSource(plan.KernelPath, plan.InitrdPath, FirecrackerLaunch.BootArgs), ct).ConfigureAwait(false);
        foreach (var drive in plan.Drives)
        {
            // No drive is the kernel's root device: init mounts vda itself (docs/guest.md), so
            // Firecracker adds no root= to the command line.
            await PutAsync("/drives/" + drive.Id, new Drive(drive.Id, drive.PathOnHost, IsRootDevice: false, drive.ReadOnly), ct).ConfigureAwait(false);
        }
        await PutAsync("/machine-config", new MachineConfiguration(plan.Vcpus, plan.MemoryMib), ct).ConfigureAwait(false);
        if (plan.Network is { } net)
        {
            await PutAsync("/network-interfaces/eth0", new NetworkInterface("eth0", net.TapDevice, net.MacAddress), ct).ConfigureAwait(false);
        }
        await PutAsync("/actions", new InstanceAction("InstanceStart"), ct).ConfigureAwait(false);
    }

    /// <summary>One PUT; a refusal or a silence becomes a <see cref="FirecrackerApiException"/> naming it.</summary>
    public async Task PutAsync<T>(string path, T body, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            // A body of known length: Firecracker's HTTP server does not take chunked requests.
            using var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body, Json));
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            response = await _http.PutAsync(path.TrimStart('/'), content, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new FirecrackerApiException("PUT", path, null, null, $"Firecracker API PUT {path} failed: {e.Message}", e);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new FirecrackerApiException("PUT", path, null, null, $"Firecracker API PUT {path} got no answer within {_http.Timeout.TotalSeconds:0.#} s", e);
        }
        using (response)
        {
            if (response.IsSuccessStatusCode)
            {
                return;
            }
            var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            var fault = FaultOf(text);
            throw new FirecrackerApiException("PUT", path, response.StatusCode, fault,
                $"Firecracker refused PUT {path} ({(int)response.StatusCode} {response.ReasonPhrase}): {fault ?? Shorten(text)}");
        }
    }

    // {"fault_message": "..."} is the API's error body; anything else is quoted as it came.
    private static string? FaultOf(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("fault_message", out var fault)
                && fault.ValueKind == JsonValueKind.String
                ? fault.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Shorten(string text)
    {
        text = text.Trim();
        return text.Length == 0 ? "(no body)" : text.Length <= 300 ? text : text[..300] + "...";
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Whether something accepts connections on <paramref name="socketPath"/> now.</summary>
    public static async Task<bool> IsListeningAsync(string socketPath, CancellationToken ct)
    {
        if (!File.Exists(socketPath))
        {
            return false;
        }
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private sealed record BootSource(
        [property: JsonPropertyName("kernel_image_path")] string KernelImagePath,
        [property: JsonPropertyName("initrd_path")] string InitrdPath,
        [property: JsonPropertyName("boot_args")] string BootArgs);

    private sealed record Drive(
        [property: JsonPropertyName("drive_id")] string DriveId,
        [property: JsonPropertyName("path_on_host")] string PathOnHost,
        [property: JsonPropertyName("is_root_device")] bool IsRootDevice,
        [property: JsonPropertyName("is_read_only")] bool IsReadOnly);

    private sealed record MachineConfiguration(
        [property: JsonPropertyName("vcpu_count")] int VcpuCount,
        [property: JsonPropertyName("mem_size_mib")] long MemSizeMib);

    private sealed record NetworkInterface(
        [property: JsonPropertyName("iface_id")] string IfaceId,
        [property: JsonPropertyName("host_dev_name")] string HostDevName,
        [property: JsonPropertyName("guest_mac")] string GuestMac);

    private sealed record InstanceAction(
        [property: JsonPropertyName("action_type")] string ActionType);
}
