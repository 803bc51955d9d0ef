using System.Net;
using System.Text;
using Trc.Edge.Routing;

namespace Trc.Edge.Tests.Routing;

public sealed class RoutesFileTests
{
    private static (Trc.Edge.Proxy.EdgeSettings Settings, RouteTable Table) Parse(string toml) => RoutesFile.Parse(Encoding.UTF8.GetBytes(toml), "routes.toml");

    private static string Error(string toml) => Assert.Throws<RoutesFileException>(() => Parse(toml)).Message;

    [Fact]
    public void A_full_file_gives_settings_and_one_route_per_listen_address()
    {
        var (settings, table) = Parse("""
            [settings]
            hello_timeout = "3s"
            connect_timeout = "500ms"
            idle_timeout = "10m"
            drain_timeout = "5s"
            max_connections = 500

            [[routes]]
            listen = ["[::]:443", "0.0.0.0:443"]
            hostname = "Shop.Example.com."
            backends = ["[fd00::10]:8443", "10.0.0.2:8443"]
            proxy_protocol = "v2"
            max_connections = 20

            [[routes]]
            name = "db"
            listen = "[::]:5432"
            protocol = "tcp_raw"
            backends = "[fd00::11]:5432"
            """);

        Assert.Equal(TimeSpan.FromSeconds(3), settings.HelloTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(500), settings.ConnectTimeout);
        Assert.Equal(TimeSpan.FromMinutes(10), settings.IdleTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), settings.DrainTimeout);
        Assert.Equal(500, settings.MaxConnections);
        Assert.Equal(3, table.Routes.Count);
        var shop = table.ForListener(new IPEndPoint(IPAddress.Any, 443))!.Match("shop.example.com")!;
        Assert.Equal("shop.example.com@0.0.0.0:443", shop.Name);
        Assert.True(shop.ProxyV2);
        Assert.Equal(20, shop.MaxConnections);
        Assert.Equal([IPEndPoint.Parse("[fd00::10]:8443"), IPEndPoint.Parse("10.0.0.2:8443")], shop.Backends);
        var db = table.ForListener(IPEndPoint.Parse("[::]:5432"))!.Raw!;
        Assert.Equal("db", db.Name);
        Assert.False(db.ProxyV2);
    }

    [Theory]
    [InlineData("[[routes]]\nlisten = \"[::]:443\"\nbackends = [\"[::1]:1\"]\n", "routes.toml:1:1: routes[0]: missing hostname")]
    [InlineData("[[routes]]\nhostname = \"a.example.com\"\nbackends = [\"[::1]:1\"]\n", "routes.toml:1:1: routes[0]: missing listen")]
    [InlineData("[[routes]]\nhostname = \"a.example.com\"\nlisten = \"[::]:443\"\n", "routes.toml:1:1: routes[0]: missing backends")]
    [InlineData("[[routes]]\nhostname = \"a.example.com\"\nlisten = \"[::]:443\"\nbackends = []\n", "routes.toml:4:12: routes[0].backends: expected at least one backend")]
    [InlineData("[[routes]]\nhostname = \"a.example.com\"\nlisten = \"::1:443\"\nbackends = [\"[::1]:1\"]\n", "routes.toml:3:10: routes[0].listen: \"::1:443\": write IPv6 addresses in brackets")]
    [InlineData("[[routes]]\nhostname = \"a.example.com\"\nlisten = \"[::]:443\"\nbackends = [\"db.internal:5432\"]\n", "routes.toml:4:13: routes[0].backends[0]: \"db.internal\" is not an IP address")]
    [InlineData("[[routes]]\nhostname = \"a.example.com\"\nlisten = \"[::]:443\"\nbackends = [\"[::]:5432\"]\n", "routes.toml:4:13: routes[0].backends[0]: a backend needs a specific address")]
    [InlineData("[[routes]]\nhostname = \"a.example.com\"\nlisten = \"[::]:70000\"\nbackends = [\"[::1]:1\"]\n", "routes.toml:3:10: routes[0].listen: \"70000\" is not a port")]
    [InlineData("[[routes]]\nhostname = \"a b.example.com\"\nlisten = \"[::]:443\"\nbackends = [\"[::1]:1\"]\n", "routes.toml:2:12: routes[0].hostname: expected a DNS name")]
    [InlineData("[[routes]]\nprotocol = \"tcp_raw\"\nhostname = \"a.example.com\"\nlisten = \"[::]:5432\"\nbackends = [\"[::1]:1\"]\n", "routes.toml:3:12: routes[0].hostname: a tcp_raw route is chosen by address and port alone")]
    [InlineData("[[routes]]\nhostname = \"a.example.com\"\nlisten = \"[::]:443\"\nbackends = [\"[::1]:1\"]\nproxy_protocol = \"v1\"\n", "routes.toml:5:18: routes[0].proxy_protocol: expected \"off\" or \"v2\"")]
    [InlineData("[[routes]]\nhostname = \"a.example.com\"\nlisten = \"[::]:443\"\nbackends = [\"[::1]:1\", \"[::1]:1\"]\n", "routes.toml:4:24: routes[0].backends[1]: [::1]:1 is listed twice")]
    [InlineData("[[routes]]\nhostname = \"a.example.com\"\nlisten = \"[::]:443\"\nbackends = [\"[::1]:1\"]\nbackend = 1\n", "routes.toml:5:1: routes[0].backend: unknown key")]
    [InlineData("[settings]\nhello_timeout = 10\n", "routes.toml:2:17: settings.hello_timeout: expected a duration")]
    [InlineData("[settings]\nmax_connections = 0\n", "routes.toml:2:19: settings.max_connections: expected a whole number from 1")]
    [InlineData("routes = 1\n", "routes.toml:1:10: routes: expected an array of tables")]
    [InlineData("[[routes]\n", "routes.toml:1:")]
    public void Every_problem_names_file_line_column_and_key(string toml, string expected) =>
        Assert.StartsWith(expected, Error(toml));

    [Fact]
    public void Two_routes_claiming_one_name_on_one_listener_are_refused()
    {
        var message = Error("""
            [[routes]]
            hostname = "a.example.com"
            listen = "[::]:443"
            backends = ["[::1]:1"]
            [[routes]]
            hostname = "a.example.com"
            listen = "[::]:443"
            backends = ["[::1]:2"]
            """);
        Assert.Contains("both claim a.example.com on [::]:443", message);
    }

    [Fact]
    public void Control_characters_in_bad_values_are_escaped()
    {
        var message = Error("[[routes]]\nhostname = \"a.example.com\"\nlisten = \"\\u001b[31m:443\"\nbackends = [\"[::1]:1\"]\n");
        Assert.DoesNotContain('\u001b', message);
    }

    [Fact]
    public void Mutated_files_are_either_read_or_refused_with_a_routes_file_error()
    {
        var sample = Encoding.UTF8.GetBytes("""
            [settings]
            hello_timeout = "3s"
            max_connections = 500
            [[routes]]
            listen = ["[::]:443", "0.0.0.0:443"]
            hostname = "*.example.com"
            backends = ["[fd00::10]:8443", "10.0.0.2:8443"]
            proxy_protocol = "v2"
            [[routes]]
            listen = "[::]:5432"
            protocol = "tcp_raw"
            backends = "[fd00::11]:5432"
            """);
        var random = new Random(20261122);
        byte[] interesting = [0x00, 0x1B, (byte)'"', (byte)'[', (byte)']', (byte)':', (byte)'.', (byte)'*', (byte)'\n', 0xFF, 0xC3];
        var read = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var mutated = (byte[])sample.Clone();
            for (var m = random.Next(1, 4); m > 0; m--)
            {
                mutated[random.Next(mutated.Length)] = random.Next(2) == 0 ? interesting[random.Next(interesting.Length)] : (byte)random.Next(256);
            }
            try
            {
                RoutesFile.Parse(mutated, "fuzz.toml");
                read++;
            }
            catch (RoutesFileException e)
            {
                Assert.StartsWith("fuzz.toml:", e.Message);
                Assert.DoesNotContain('\u001b', e.Message);
            }
        }
        Assert.InRange(read, 1, 19_999);
    }

    [Fact]
    public void An_empty_file_is_an_edge_without_routes()
    {
        var (_, table) = Parse("");
        Assert.Empty(table.Routes);
    }
}
