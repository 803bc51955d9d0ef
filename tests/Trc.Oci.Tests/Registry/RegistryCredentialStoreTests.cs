using System.Text;
using Trc.Oci.Registry;

namespace Trc.Oci.Tests.Registry;

public sealed class RegistryCredentialStoreTests
{
    private static RegistryCredentialStore Parse(string json) => RegistryCredentialStore.Parse(Encoding.UTF8.GetBytes(json), "auth.json");

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void Docker_config_entries_are_found_by_host_whatever_form_the_key_has()
    {
        var store = Parse($$"""
            {
              "auths": {
                "https://index.docker.io/v1/": { "auth": "{{B64("hub:pw1")}}" },
                "registry.example.com:5000": { "auth": "{{B64("me:p:w:2")}}", "token_hosts": ["auth.example.com"] },
                "HTTPS://Other.Example/": { "username": "u", "password": "p" },
                "helper-only.example": {}
              },
              "credsStore": "desktop"
            }
            """);
        Assert.Equal(("hub", "pw1"), (store.Find("docker.io")!.Username, store.Find("docker.io")!.Password));
        var example = store.Find("registry.example.com:5000")!;
        Assert.Equal(("me", "p:w:2"), (example.Username, example.Password));
        Assert.Equal(["auth.example.com"], example.TokenHosts);
        Assert.Equal("u", store.Find("other.example")!.Username);
        Assert.Null(store.Find("helper-only.example"));
        Assert.Null(store.Find("registry.example.com"));
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[]", "top level must be an object")]
    [InlineData("{\"auths\": []}", "auths must be an object")]
    [InlineData("{\"auths\": {\"h\": 1}}", "auths[\"h\"] must be an object")]
    [InlineData("{\"auths\": {\"h\": {\"auth\": \"%%%\"}}}", "auths[\"h\"].auth is not base64")]
    [InlineData("{\"auths\": {\"h\": {\"auth\": \"bm9jb2xvbg==\"}}}", "does not decode to user:password")]
    [InlineData("{\"auths\": {\"h\": {\"username\": \"u\"}}}", "needs both a user name and a password")]
    [InlineData("{\"auths\": {\"h\": {\"username\": 5}}}", "auths[\"h\"].username must be a string")]
    [InlineData("{\"auths\": {\"h\": {\"username\": \"u\", \"password\": \"p\", \"token_hosts\": \"x\"}}}", "token_hosts must be an array")]
    [InlineData("{\"auths\": {\"h\": {\"username\": \"u\", \"password\": \"p\", \"token_hosts\": [1]}}}", "token_hosts[0] must be a host name")]
    public void Malformed_files_name_the_entry_and_never_the_secret(string json, string expected)
    {
        var e = Assert.Throws<RegistryCredentialsException>(() => Parse(json));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("auth.json", e.Message);
    }

    [Fact]
    public void A_secret_in_a_malformed_entry_is_not_echoed()
    {
        var e = Assert.Throws<RegistryCredentialsException>(() => Parse("{\"auths\": {\"h\": {\"username\": \"\", \"password\": \"hunter2-secret\"}}}"));
        Assert.DoesNotContain("hunter2", e.Message);
        Assert.DoesNotContain("hunter2", new RegistryCredentials("u", "hunter2-secret").ToString());
    }

    [Fact]
    public void A_missing_or_huge_file_is_a_clear_error()
    {
        var dir = Directory.CreateTempSubdirectory("trc-creds-");
        try
        {
            Assert.Contains("no such file", Assert.Throws<RegistryCredentialsException>(() => RegistryCredentialStore.Load(Path.Combine(dir.FullName, "none.json"))).Message);
            var big = Path.Combine(dir.FullName, "big.json");
            File.WriteAllBytes(big, new byte[RegistryCredentialStore.MaxFileBytes + 1]);
            Assert.Contains("more than the", Assert.Throws<RegistryCredentialsException>(() => RegistryCredentialStore.Load(big)).Message);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
