using System.Text.Json.Nodes;
using Trc.Core.Tests;

namespace Trc.Agent.Tests.Firecracker;

public sealed class MiniYamlTests
{
    [Fact]
    public void Block_collections_and_scalars_read_as_json()
    {
        var yaml = """
            # a comment
            swagger: "2.0"
            count: 42
            negative: -7
            ratio: 1.5
            on: true
            off: Off
            nothing: ~
            schemes:
            - http
            - "https" # trailing comment
            nested:
              list:
                - name: body
                  in: body
                - plain item
              '204':
                description: it's fine
            """;

        var node = MiniYaml.Parse(yaml)!;

        Assert.Equal("2.0", node["swagger"]!.GetValue<string>());
        Assert.Equal(42L, node["count"]!.GetValue<long>());
        Assert.Equal(-7L, node["negative"]!.GetValue<long>());
        Assert.Equal(1.5, node["ratio"]!.GetValue<double>());
        Assert.True(node["on"]!.GetValue<bool>());
        Assert.Equal("Off", node["off"]!.GetValue<string>()); // YAML 1.2: not a boolean
        Assert.Null(node["nothing"]);
        Assert.True(((JsonObject)node).ContainsKey("nothing"));
        Assert.Equal(["http", "https"], node["schemes"]!.AsArray().Select(n => n!.GetValue<string>()));
        var list = node["nested"]!["list"]!.AsArray();
        Assert.Equal("body", list[0]!["name"]!.GetValue<string>());
        Assert.Equal("body", list[0]!["in"]!.GetValue<string>());
        Assert.Equal("plain item", list[1]!.GetValue<string>());
        Assert.Equal("it's fine", node["nested"]!["204"]!["description"]!.GetValue<string>());
    }

    [Fact]
    public void Plain_scalars_fold_over_lines_and_quoted_ones_unescape()
    {
        var yaml = """
            description: RESTful public-facing API.
              The API is accessible
              over a socket.
            later:
              First line
              second line # not part of it
            double: "tab\there \"quoted\" \u00e9 # not a comment"
            single: 'it''s'
            url: "#/definitions/Error"
            colon: http://localhost/x
            """;

        var node = MiniYaml.Parse(yaml)!;

        Assert.Equal("RESTful public-facing API. The API is accessible over a socket.", node["description"]!.GetValue<string>());
        Assert.Equal("First line second line", node["later"]!.GetValue<string>());
        Assert.Equal("tab\there \"quoted\" \u00e9 # not a comment", node["double"]!.GetValue<string>());
        Assert.Equal("it's", node["single"]!.GetValue<string>());
        Assert.Equal("#/definitions/Error", node["url"]!.GetValue<string>());
        Assert.Equal("http://localhost/x", node["colon"]!.GetValue<string>());
    }

    [Fact]
    public void Block_scalars_keep_or_fold_lines_and_chomp()
    {
        var yaml = "literal: |\n  one\n    two\n\n  three\n\nfolded: >-\n  a\n  b\n\n  c\nkept: |+\n  x\n\nnext: 1\n";

        var node = MiniYaml.Parse(yaml)!;

        Assert.Equal("one\n  two\n\nthree\n", node["literal"]!.GetValue<string>());
        Assert.Equal("a b\nc", node["folded"]!.GetValue<string>());
        Assert.Equal("x\n\n", node["kept"]!.GetValue<string>());
        Assert.Equal(1L, node["next"]!.GetValue<long>());
    }

    [Fact]
    public void Flow_collections_on_one_line()
    {
        var node = MiniYaml.Parse("enum: [Error, \"Warning\", 2M, 3]\nempty: []\nmap: {a: 1, b: [x]}\n")!;

        Assert.Equal("[\"Error\",\"Warning\",\"2M\",3]", node["enum"]!.ToJsonString());
        Assert.Empty(node["empty"]!.AsArray());
        Assert.Equal(1L, node["map"]!["a"]!.GetValue<long>());
        Assert.Equal("x", node["map"]!["b"]![0]!.GetValue<string>());
    }

    [Theory]
    [InlineData("a: 1\na: 2\n", "duplicate key 'a'")]
    [InlineData("a: \"open\n", "unterminated quoted scalar")]
    [InlineData("a:\n\tb: 1\n", "tabs")]
    [InlineData("a: [1, 2\n", "flow")]
    public void Malformed_documents_are_rejected_with_the_reason(string yaml, string reason)
    {
        var e = Assert.ThrowsAny<FormatException>(() => MiniYaml.Parse(yaml));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [SharedTestDataFact]
    public void Firecrackers_spec_reads_with_the_facts_the_contract_tests_rely_on()
    {
        var spec = MiniYaml.Parse(File.ReadAllText(SharedTestData.PathOf("firecracker", "firecracker.yaml")))!;

        Assert.Equal("2.0", spec["swagger"]!.GetValue<string>());
        Assert.StartsWith("RESTful public-facing API. The API is accessible through HTTP calls", spec["info"]!["description"]!.GetValue<string>(), StringComparison.Ordinal);
        var paths = spec["paths"]!.AsObject();
        foreach (var path in new[] { "/boot-source", "/drives/{drive_id}", "/machine-config", "/network-interfaces/{iface_id}", "/actions" })
        {
            Assert.True(paths[path]?["put"] is JsonObject, $"no PUT {path}");
        }
        Assert.NotNull(paths["/actions"]!["put"]!["responses"]!["204"]);
        var definitions = spec["definitions"]!;
        Assert.Equal(32L, definitions["MachineConfiguration"]!["properties"]!["vcpu_count"]!["maximum"]!.GetValue<long>());
        Assert.Equal(["mem_size_mib", "vcpu_count"], definitions["MachineConfiguration"]!["required"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal("[\"Error\",\"Warning\",\"Info\",\"Debug\",\"Trace\",\"Off\"]", definitions["Logger"]!["properties"]!["level"]!["enum"]!.ToJsonString());
        Assert.Equal("[\"None\",\"Transparent\",\"2M\"]", definitions["MachineConfiguration"]!["properties"]!["huge_pages"]!["enum"]!.ToJsonString());
        var hugePages = definitions["MachineConfiguration"]!["properties"]!["huge_pages"]!["description"]!.GetValue<string>();
        Assert.StartsWith("Which huge pages configuration should be used to back guest memory. \"None\" uses", hugePages, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', hugePages);
        // A commented-out property is not a property.
        Assert.Null(definitions["MachineConfiguration"]!["properties"]!["gdb_socket_path"]);
        Assert.Equal("#/definitions/RateLimiter", definitions["Drive"]!["properties"]!["rate_limiter"]!["$ref"]!.GetValue<string>());
    }
}
