using Trc.Core.Manifest;

namespace Trc.Core.Tests.Manifest;

public sealed class ManifestFormatterTests
{
    [Fact]
    public void The_example_is_already_canonical()
    {
        var text = File.ReadAllText(ManifestLoaderTests.ExamplePath);
        Assert.Equal(text, Format(text));
    }

    [Fact]
    public void A_messy_manifest_is_rewritten_in_canonical_order_and_layout_with_its_comments()
    {
        const string messy = """
            # header comment

            # about the app
            app = 'shop'   # trailing on app
            processes.worker.memory = "256Mi"
            [[routes]]
            backend_port = 8443
            hostname = "shop.example.com"    # the public name
            [processes.web]
            memory = "1Gi"
            ports = [ 8443, # https
              9090 ]
            scaling = { max = 1, min = 1 }
            healthcheck.http = { path = "/healthz", port = 9090 }
            cpu = 2
            [[volumes]]
            size = "1Gi"
            name = "data"
            # the end

            """;
        const string expected = """
            # header comment

            # about the app
            app = "shop" # trailing on app

            [processes.web]
            ports = [
                8443, # https
                9090,
            ]
            cpu = 2
            memory = "1Gi"

            [processes.web.scaling]
            min = 1
            max = 1

            [processes.web.healthcheck]
            http = { port = 9090, path = "/healthz" }

            [processes.worker]
            memory = "256Mi"

            [[routes]]
            hostname = "shop.example.com" # the public name
            backend_port = 8443

            [[volumes]]
            name = "data"
            size = "1Gi"

            # the end

            """;
        Assert.Equal(expected, Format(messy));
    }

    [Fact]
    public void Scalars_are_written_canonically()
    {
        var formatted = Format("""
            app = "a"
            [processes.web]
            memory = '''1Gi'''
            cpu = 0.250
            command = ['C:\bin\app', "say \"hi\"", "tab\there", 'it''s']
            """.Replace("'it''s'", "\"it's\"", StringComparison.Ordinal));
        Assert.Contains("""command = ['C:\bin\app', 'say "hi"', "tab\there", "it's"]""", formatted);
        Assert.Contains("cpu = 0.25\n", formatted);
        Assert.Contains("memory = \"1Gi\"\n", formatted);
    }

    [Fact]
    public void Long_arrays_are_written_one_element_per_line()
    {
        var args = string.Join(", ", Enumerable.Range(0, 20).Select(i => $"\"--argument-{i}\""));
        var formatted = Format($"app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncommand = [{args}]\n");
        Assert.Contains("command = [\n    \"--argument-0\",\n", formatted);
        Assert.Equal(formatted, Format(formatted));
    }

    [Fact]
    public void A_commented_http_check_is_written_as_a_table_so_no_comment_is_lost()
    {
        var formatted = Format("""
            app = "a"
            [processes.web]
            memory = "1Gi"
            ports = [80]
            [processes.web.healthcheck.http]
            port = 80 # the admin port
            """);
        Assert.Contains("[processes.web.healthcheck.http]\nport = 80 # the admin port\n", formatted);
        Assert.Equal(formatted, Format(formatted));
    }

    [Fact]
    public void An_empty_routes_array_keeps_its_comment()
    {
        var formatted = Format("app = \"a\"\nroutes = [] # none yet\n[processes.web]\nmemory = \"1Gi\"\n");
        Assert.Contains("routes = [] # none yet\n", formatted);
    }

    [Fact]
    public void Rule_errors_do_not_stop_formatting_but_shape_errors_do()
    {
        // backend_port not among the ports is a rule error: the file can still be formatted.
        var ruleOnly = ManifestLoader.Load("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\n[[routes]]\nhostname = \"a.example.com\"\nbackend_port = 1\n");
        Assert.False(ruleOnly.IsValid);
        Assert.True(ruleOnly.HasValidShape);
        Assert.NotEmpty(ManifestFormatter.Format(ruleOnly));

        // An unknown key has no canonical place: formatting is refused.
        var unknown = ManifestLoader.Load("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncolour = 1\n");
        Assert.False(unknown.HasValidShape);
        Assert.Throws<InvalidOperationException>(() => ManifestFormatter.Format(unknown));
    }

    [Fact]
    public void Formatting_generated_manifests_is_idempotent_keeps_meaning_and_keeps_every_comment()
    {
        var generator = new ManifestGenerator(seed: 20261122);
        for (var i = 0; i < 2000; i++)
        {
            var text = generator.Next();
            var original = ManifestLoader.Load(text);
            Assert.True(original.IsValid, $"case {i} generated an invalid manifest:\n{text}\n{string.Join("\n", original.Diagnostics)}");

            var once = ManifestFormatter.Format(original);
            var reloaded = ManifestLoader.Load(once);
            Assert.True(reloaded.IsValid, $"case {i}: the formatted text is invalid:\n{once}\n{string.Join("\n", reloaded.Diagnostics)}");
            Assert.True(ManifestJson.Serialize(original.Manifest!) == ManifestJson.Serialize(reloaded.Manifest!), $"case {i}: formatting changed the meaning of:\n{text}\n---\n{once}");

            var twice = ManifestFormatter.Format(reloaded);
            Assert.True(once == twice, $"case {i}: not idempotent:\n{text}\n--- once:\n{once}\n--- twice:\n{twice}");

            foreach (var comment in generator.Comments)
            {
                Assert.True(once.Contains("#" + comment + "\n", StringComparison.Ordinal), $"case {i}: lost comment '{comment}':\n{text}\n---\n{once}");
            }
        }
    }

    private static string Format(string text)
    {
        var loaded = ManifestLoader.Load(text);
        Assert.True(loaded.HasValidShape, string.Join("\n", loaded.Diagnostics));
        return ManifestFormatter.Format(loaded);
    }
}
