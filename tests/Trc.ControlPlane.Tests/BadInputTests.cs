using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Trc.Core.Api;

namespace Trc.ControlPlane.Tests;

/// <summary>
/// Hostile and broken bodies for every endpoint that takes one: each gets a problem naming what is
/// wrong, nothing is recorded, and the server goes on serving.
/// </summary>
public abstract class BadInputTests(ServerFixture fixture)
{
    private TestServer Server => fixture.Server;

    /// <summary>Who calls an endpoint.</summary>
    public enum Caller
    {
        Owner,
        Admin,
        Node,
    }

    /// <summary>Where a test's objects are: its org (with app shop, env prod and release 1) and its node.</summary>
    public sealed record Place(string Org, Guid Node);

    /// <summary>An endpoint with a body: a valid body for it, a string field and a number field in it.</summary>
    public sealed record BodyEndpoint(string Name, HttpMethod Method, Func<Place, string> Path, Caller Caller, Func<string> ValidBody, string StringField, string? NumberField);

    // Nodes here offer 1 byte of memory, so the scheduler never places this class's releases and
    // the only events are the ones the calls under test record.
    private static readonly BodyEndpoint[] All =
    [
        new("createOrg", HttpMethod.Post, _ => ApiPaths.Orgs, Caller.Admin, () => $$"""{"name":"{{Setup.OrgName()}}"}""", "name", null),
        new("setQuotas", HttpMethod.Put, p => ApiPaths.Quotas(p.Org), Caller.Admin, () => """{"memory_bytes":1073741824,"instances":4,"routes":2,"ipv4_addresses":1}""", "memory_bytes", "instances"),
        new("createToken", HttpMethod.Post, p => ApiPaths.Tokens(p.Org), Caller.Owner, () => """{"name":"ci","role":"viewer"}""", "role", null),
        new("createApp", HttpMethod.Post, p => ApiPaths.Apps(p.Org), Caller.Owner, () => """{"name":"web2"}""", "name", null),
        new("createEnv", HttpMethod.Post, p => ApiPaths.Envs(p.Org, "shop"), Caller.Owner, () => """{"name":"qa"}""", "name", null),
        new("deploy", HttpMethod.Post, p => ApiPaths.Releases(p.Org, "shop", "prod"), Caller.Owner,
            () => $$"""{"image":"{{Setup.Image}}","manifest":"app = \"shop\"\n[processes.web]\nmemory = \"256Mi\"\nports = [8443, 5432]\n"}""", "image", "expected_release"),
        new("createRoute", HttpMethod.Post, p => ApiPaths.Routes(p.Org, "shop", "prod"), Caller.Owner, () => """{"hostname":"bad-input.example.com","backend_port":8443}""", "hostname", "backend_port"),
        new("setSecrets", HttpMethod.Put, p => ApiPaths.Secrets(p.Org, "shop", "prod"), Caller.Owner, () => """{"set":{"A":"1"}}""", "unset", null),
        new("createVolume", HttpMethod.Post, p => ApiPaths.Volumes(p.Org, "shop", "prod"), Caller.Owner, () => """{"name":"vol","size":"1Gi"}""", "size", null),
        new("registerNode", HttpMethod.Post, _ => NodeApiPaths.Nodes, Caller.Node,
            () => $$"""{"name":"{{NodeAgent.NewName()}}","memory_bytes":1,"cpus":2,"driver":"fake","acceleration":"none"}""", "name", "cpus"),
        new("heartbeat", HttpMethod.Post, p => NodeApiPaths.Heartbeat(p.Node), Caller.Node, () => """{"memory_bytes":1,"cpus":2,"instances":[]}""", "instances", "cpus"),
        new("shipLogs", HttpMethod.Post, p => NodeApiPaths.NodeLogs(p.Node), Caller.Node, () => """{"lines":[]}""", "lines", null),
        new("rollback", HttpMethod.Post, p => ApiPaths.Rollback(p.Org, "shop", "prod"), Caller.Owner, () => """{"release":1}""", "release", "release"),
        new("scale", HttpMethod.Put, p => ApiPaths.Scale(p.Org, "shop", "prod"), Caller.Owner, () => """{"process":"web","count":1}""", "process", "count"),
        new("setNodeState", HttpMethod.Put, p => NodeApiPaths.NodeState(p.Node), Caller.Admin, () => """{"state":"active","reason":"ok"}""", "state", null),
    ];

    public static TheoryData<string> Endpoints() => new(All.Select(e => e.Name));

    private async Task<(HttpClient Client, string Path, BodyEndpoint Endpoint)> PrepareAsync(string name)
    {
        var endpoint = All.Single(e => e.Name == name);
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        var node = endpoint.Caller == Caller.Node || endpoint.Path(new Place(org, Guid.Empty)).StartsWith(NodeApiPaths.Nodes, StringComparison.Ordinal)
            ? (await NodeAgent.RegisterAsync(Server, memory: 1)).Id
            : Guid.Empty;
        var client = endpoint.Caller switch { Caller.Admin => Server.Admin, Caller.Node => Server.Node, _ => owner };
        return (client, endpoint.Path(new Place(org, node)), endpoint);
    }

    private static async Task<ProblemView> SendRawAsync(HttpClient client, HttpMethod method, string path, HttpContent? content, HttpStatusCode status, string code)
    {
        var response = await client.SendAsync(new HttpRequestMessage(method, path) { Content = content });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.True("application/problem+json" == response.Content.Headers.ContentType?.MediaType, $"{(int)response.StatusCode} {response.Headers} {response.Content.Headers} [{text}]");
        var problem = System.Text.Json.JsonSerializer.Deserialize<ProblemView>(text, ApiJson.ClientOptions)!;
        Assert.Equal(code, problem.Code);
        Assert.False(string.IsNullOrWhiteSpace(problem.Detail));
        return problem;
    }

    private static HttpContent Json(string body) => new StringContent(body, Encoding.UTF8, "application/json");

    private static HttpContent Json(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    private Task<long> HeadAsync() => TestServer.RequestHeadAsync(Server.Admin);

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Broken_json_is_a_400_naming_the_field_and_records_nothing(string name)
    {
        var (client, path, e) = await PrepareAsync(name);
        var valid = e.ValidBody();
        var head = await HeadAsync();

        foreach (var body in new[] { "{", "{\"", valid[..(valid.Length / 2)], "null", "[]", "42", "\"text\"", "true", "{}{}", valid + "x", "{\"a\":1,}", "{/* c */}", "{'name':'x'}" })
        {
            await SendRawAsync(client, e.Method, path, Json(body), HttpStatusCode.BadRequest, "invalid_json");
        }
        // An empty body, and one that is not UTF-8.
        await SendRawAsync(client, e.Method, path, Json(""), HttpStatusCode.BadRequest, "invalid_json");
        await SendRawAsync(client, e.Method, path, Json([.. Encoding.UTF8.GetBytes($"{{\"{e.StringField}\":\""), 0xff, 0xfe, .. "\"}"u8]), HttpStatusCode.BadRequest, "invalid_json");

        var unknown = await SendRawAsync(client, e.Method, path, Json(valid[..^1] + ",\"bogus_field\":1}"), HttpStatusCode.BadRequest, "invalid_json");
        Assert.Equal("bogus_field", unknown.Field);

        var wrongType = await SendRawAsync(client, e.Method, path, Json($"{{\"{e.StringField}\":{{\"nested\":true}}}}"), HttpStatusCode.BadRequest, "invalid_json");
        Assert.Equal(e.StringField, wrongType.Field);
        if (e.NumberField is { } number)
        {
            foreach (var bad in new[] { "\"four\"", "1.5", "99999999999999999999999", "true", "[1]" })
            {
                var problem = await SendRawAsync(client, e.Method, path, Json(valid[..^1] + $",\"{number}\":{bad}}}"), HttpStatusCode.BadRequest, "invalid_json");
                Assert.Equal(number, problem.Field);
            }
        }

        var comma = valid.IndexOf(',', StringComparison.Ordinal);
        var firstField = comma > 0 ? valid[1..comma] : valid[1..^1];
        var duplicate = await SendRawAsync(client, e.Method, path, Json(valid[..^1] + "," + firstField + "}"), HttpStatusCode.BadRequest, "invalid_json");
        Assert.Contains("more than once", duplicate.Detail);

        var deep = new string('[', 10_000) + new string(']', 10_000);
        await SendRawAsync(client, e.Method, path, Json($"{{\"{e.StringField}\":{deep}}}"), HttpStatusCode.BadRequest, "invalid_json");

        Assert.Equal(head, await HeadAsync());
        // (The node token may not call whoami; the admin asks for it.)
        await TestServer.Send(e.Caller == Caller.Node ? Server.Admin : client, HttpMethod.Get, ApiPaths.WhoAmI).Expect(HttpStatusCode.OK);
    }

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Oversized_or_mistyped_bodies_are_refused_before_they_are_read(string name)
    {
        var (client, path, e) = await PrepareAsync(name);
        var head = await HeadAsync();
        // A log batch has a limit of its own (1,000 lines of 16 KiB).
        var limit = name == "shipLogs" ? Server.Options.MaxLogBatchBytes : Server.Options.MaxRequestBodyBytes;
        var huge = $"{{\"{e.StringField}\":\"{new string('a', (int)limit + 10)}\"}}";

        // Over a raw socket: the server answers 413 without reading the rest, which an HTTP client
        // still writing its body would see as a broken pipe instead of the answer.
        var token = client.DefaultRequestHeaders.Authorization!.Parameter!;
        foreach (var chunked in new[] { false, true })
        {
            var (status, contentType, body) = await RawHttp.SendAsync(Server.Host.Address, e.Method.Method, path, token, Encoding.UTF8.GetBytes(huge), chunked);
            Assert.True(status == 413, $"chunked={chunked}: {status} {body}");
            Assert.Equal("application/problem+json", contentType);
            Assert.Contains("\"body_too_large\"", body);
            Assert.DoesNotContain("aaaa", body);
        }

        var text = await SendRawAsync(client, e.Method, path, new StringContent(e.ValidBody(), Encoding.UTF8, "text/plain"), HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        Assert.Equal("Content-Type", text.Field);
        var none = new ByteArrayContent(Encoding.UTF8.GetBytes(e.ValidBody()));
        await SendRawAsync(client, e.Method, path, none, HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        await SendRawAsync(client, e.Method, path, null, HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");

        Assert.Equal(head, await HeadAsync());
        // The valid body still works afterwards.
        var ok = await client.SendAsync(new HttpRequestMessage(e.Method, path) { Content = Json(e.ValidBody()) });
        Assert.True(ok.IsSuccessStatusCode, $"{(int)ok.StatusCode}: {await ok.Content.ReadAsStringAsync()}");
    }

    public static TheoryData<string, string> BadNames()
    {
        var data = new TheoryData<string, string>();
        foreach (var endpoint in new[] { "createOrg", "createApp", "createEnv", "createVolume" })
        {
            foreach (var bad in new[] { "", "UPPER", "a b", "a\u0000b", "a\nb", new string('a', 33), "../x", "-lead", "trail-", "1digit", "ünicode", "a\u202eb", "a/b", "a.b", "a%2fb" })
            {
                data.Add(endpoint, bad);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(BadNames))]
    public async Task Invalid_names_are_a_422_naming_the_field(string name, string bad)
    {
        var (client, path, e) = await PrepareAsync(name);
        var body = new Dictionary<string, string> { ["name"] = bad };
        if (name == "createVolume")
        {
            body["size"] = "1Gi";
        }
        var response = await client.SendAsync(new HttpRequestMessage(e.Method, path) { Content = JsonContent.Create(body) });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<ProblemView>(ApiJson.ClientOptions))!;
        Assert.Equal(("invalid_name", "name"), (problem.Code, problem.Field));
        // The message quotes the name only in printable form.
        Assert.DoesNotContain(problem.Detail!, c => char.IsControl(c) || c == '\u202e');
    }

    [Fact]
    public async Task Bad_path_segments_are_refused_never_a_500()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org);
        foreach (var path in new[]
        {
            ApiPaths.App(org, "NOPE"), ApiPaths.App(org, new string('a', 5000)), ApiPaths.Env(org, "shop", "\u0000"), ApiPaths.Release(org, "shop", "prod", 999),
            ApiPaths.Releases(org, "shop", "prod") + "/-1", ApiPaths.Releases(org, "shop", "prod") + "/99999999999999", ApiPaths.Token(org, Guid.Empty),
            ApiPaths.Volume(org, "shop", "prod", "..%2F.."), ApiPaths.Org("%00"),
        })
        {
            var response = await owner.GetAsync(path);
            // Kestrel itself refuses a NUL in a path (400) before trc sees it.
            Assert.True(response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.UnprocessableEntity or HttpStatusCode.BadRequest or HttpStatusCode.MethodNotAllowed, $"{path}: {(int)response.StatusCode}");
        }
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Tokens(org) + "/not-a-guid").Problem(HttpStatusCode.NotFound);
        await TestServer.Send(owner, HttpMethod.Delete, ApiPaths.Route(org, "shop", "prod", "nope.example.com", 443)).Problem(HttpStatusCode.NotFound);
    }
}

/// <summary>HTTP/1.1 by hand, for requests an HTTP client will not send or cannot finish.</summary>
public static class RawHttp
{
    /// <summary>Sends a request with a body (declared or chunked) while reading the answer; returns status, content type and body.</summary>
    public static async Task<(int Status, string? ContentType, string Body)> SendAsync(Uri server, string method, string path, string token, byte[] body, bool chunked)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        var stream = tcp.GetStream();
        var head = $"{method} {path} HTTP/1.1\r\nHost: {server.Authority}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            + (chunked ? "Transfer-Encoding: chunked\r\n" : $"Content-Length: {body.Length}\r\n") + "Connection: close\r\n\r\n";
        var writer = Task.Run(async () =>
        {
            try
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
                for (var offset = 0; offset < body.Length; offset += 65536)
                {
                    var n = Math.Min(65536, body.Length - offset);
                    if (chunked)
                    {
                        await stream.WriteAsync(Encoding.ASCII.GetBytes($"{n:x}\r\n"));
                    }
                    await stream.WriteAsync(body.AsMemory(offset, n));
                    if (chunked)
                    {
                        await stream.WriteAsync("\r\n"u8.ToArray());
                    }
                }
                if (chunked)
                {
                    await stream.WriteAsync("0\r\n\r\n"u8.ToArray());
                }
            }
            catch (IOException)
            {
                // The server stopped reading: expected once it has answered.
            }
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var response = new MemoryStream();
        var buffer = new byte[16384];
        int read;
        try
        {
            while ((read = await stream.ReadAsync(buffer, cts.Token)) > 0)
            {
                response.Write(buffer, 0, read);
            }
        }
        catch (IOException) when (response.Length > 0)
        {
            // A reset after the answer arrived.
        }
        await writer;
        var text = Encoding.UTF8.GetString(response.ToArray());
        var split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(split > 0, $"no complete HTTP answer: [{text}]");
        var lines = text[..split].Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var contentType = lines.Skip(1).Select(l => l.Split(':', 2)).Where(p => p[0].Equals("Content-Type", StringComparison.OrdinalIgnoreCase)).Select(p => p[1].Trim().Split(';')[0]).FirstOrDefault();
        return (status, contentType, text[(split + 4)..]);
    }
}

public sealed class SqliteBadInputTests(SqliteServer fixture) : BadInputTests(fixture), IClassFixture<SqliteServer>;

public sealed class PostgresBadInputTests(PostgresServer fixture) : BadInputTests(fixture), IClassFixture<PostgresServer>;
