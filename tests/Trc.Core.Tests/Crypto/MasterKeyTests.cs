using System.Runtime.Versioning;
using System.Text;
using Trc.Core.Crypto;

namespace Trc.Core.Tests.Crypto;

public sealed class MasterKeyTests : IDisposable
{
    private const UnixFileMode Mode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _dir = Directory.CreateTempSubdirectory("trc-masterkey-").FullName;

    private string KeyPath => Path.Combine(_dir, "master.key");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // ---- Creating and loading ----

    [Fact]
    public void A_created_key_file_loads_back_as_the_same_key()
    {
        using var created = MasterKey.CreateFile(KeyPath);
        using var loaded = MasterKey.LoadFile(KeyPath);

        Assert.Equal(created.Id, loaded.Id);
        var box = Envelope.Seal(created, "secret"u8, "ad"u8);
        Assert.Equal("secret"u8.ToArray(), Envelope.Open(loaded, box, "ad"u8));
    }

    [Fact]
    public void A_created_key_file_is_44_base64_characters_and_a_newline()
    {
        using var created = MasterKey.CreateFile(KeyPath);
        var text = File.ReadAllText(KeyPath, Encoding.ASCII);

        Assert.Matches("^[A-Za-z0-9+/]{43}=\n$", text);
        Assert.Equal(32, Convert.FromBase64String(text.TrimEnd('\n')).Length);
    }

    [UnixFact]
    [UnsupportedOSPlatform("windows")]
    public void A_created_key_file_has_mode_0600()
    {
        using var created = MasterKey.CreateFile(KeyPath);
        Assert.Equal(Mode600, File.GetUnixFileMode(KeyPath));
    }

    [Fact]
    public void Creating_over_an_existing_file_is_refused_and_leaves_it_alone()
    {
        File.WriteAllText(KeyPath, "precious");

        var e = Assert.Throws<IOException>(() => MasterKey.CreateFile(KeyPath));
        Assert.Contains("already exists", e.Message);
        Assert.Equal("precious", File.ReadAllText(KeyPath));
    }

    [Fact]
    public void Creating_leaves_no_temporary_file_behind()
    {
        using var created = MasterKey.CreateFile(KeyPath);
        Assert.Equal(["master.key"], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void Two_created_keys_differ()
    {
        using var a = MasterKey.CreateFile(KeyPath);
        using var b = MasterKey.CreateFile(Path.Combine(_dir, "other.key"));
        Assert.NotEqual(a.Id, b.Id);
    }

    [Fact]
    public void A_missing_key_file_is_named_in_the_error()
    {
        var e = Assert.Throws<FileNotFoundException>(() => MasterKey.LoadFile(KeyPath));
        Assert.Contains(KeyPath, e.Message);
        Assert.Contains("does not exist", e.Message);

        Assert.Throws<FileNotFoundException>(() => MasterKey.LoadFile(Path.Combine(_dir, "no-such-dir", "master.key")));
    }

    [Fact]
    public void A_key_file_without_its_final_newline_loads()
    {
        var base64 = CreateAndReadBase64(out var id);
        WriteKeyFile(Encoding.ASCII.GetBytes(base64));

        using var loaded = MasterKey.LoadFile(KeyPath);
        Assert.Equal(id, loaded.Id);
    }

    // ---- Permissions ----

    [UnixTheory]
    [UnsupportedOSPlatform("windows")]
    [InlineData("0644")]
    [InlineData("0640")]
    [InlineData("0604")]
    [InlineData("0660")]
    [InlineData("0606")]
    [InlineData("0610")]
    [InlineData("0777")]
    public void A_key_file_readable_or_writable_by_others_is_refused_with_the_fix(string mode)
    {
        var base64 = CreateAndReadBase64(out _);
        File.SetUnixFileMode(KeyPath, (UnixFileMode)Convert.ToInt32(mode, 8));

        var e = Assert.Throws<MasterKeyFileException>(() => MasterKey.LoadFile(KeyPath));
        Assert.Contains($"has mode {mode}", e.Message);
        Assert.Contains("0600", e.Message);
        Assert.Contains("chmod 600", e.Message);
        AssertNoKeyMaterial(e.Message, base64);
    }

    [UnixFact]
    [UnsupportedOSPlatform("windows")]
    public void A_read_only_key_file_with_mode_0400_loads()
    {
        CreateAndReadBase64(out var id);
        File.SetUnixFileMode(KeyPath, UnixFileMode.UserRead);

        using var loaded = MasterKey.LoadFile(KeyPath);
        Assert.Equal(id, loaded.Id);
    }

    // ---- Content ----

    public static TheoryData<string, string> BadContents => new()
    {
        { "empty", "" },
        { "only a newline", "\n" },
        { "43 characters", "KEY43" },
        { "CRLF", "{key}\r\n" },
        { "two newlines", "{key}\n\n" },
        { "leading space", " {key}" },
        { "trailing space", "{key} " },
        { "a second line", "{key}\nmore\n" },
        { "URL-safe alphabet", "URLSAFE" },
        { "space inside", "SPACE" },
        { "33 bytes (no padding)", "LEN33" },
        { "31 bytes (two padding characters)", "LEN31" },
        { "32 raw bytes", "RAW32" },
        { "1 MB of base64", "HUGE" },
    };

    [Theory]
    [MemberData(nameof(BadContents))]
    public void A_key_file_that_is_not_exactly_one_base64_key_is_refused_without_quoting_it(string name, string template)
    {
        var base64 = CreateAndReadBase64(out _);
        File.Delete(KeyPath);
        WriteKeyFile(Content(template, base64));

        var e = Assert.Throws<MasterKeyFileException>(() => MasterKey.LoadFile(KeyPath));
        Assert.Contains(KeyPath, e.Message);
        AssertNoKeyMaterial(e.Message, base64);
        Assert.True(e.Message.Length < 400, name);
    }

    [Fact]
    public void The_length_error_says_what_a_key_file_must_hold()
    {
        WriteKeyFile(Encoding.ASCII.GetBytes(Convert.ToBase64String(new byte[31]) + "\n"));
        var e = Assert.Throws<MasterKeyFileException>(() => MasterKey.LoadFile(KeyPath));
        Assert.Contains("decodes to 31 bytes", e.Message);

        WriteKeyFile(Encoding.ASCII.GetBytes(Convert.ToBase64String(new byte[24])));
        e = Assert.Throws<MasterKeyFileException>(() => MasterKey.LoadFile(KeyPath));
        Assert.Contains("exactly 44 base64 characters", e.Message);
    }

    // ---- Never showing the key ----

    [Fact]
    public void ToString_shows_the_key_id_and_never_the_key()
    {
        using var created = MasterKey.CreateFile(KeyPath);
        var base64 = File.ReadAllText(KeyPath).TrimEnd('\n');

        Assert.Equal($"MasterKey {created.Id}", created.ToString());
        AssertNoKeyMaterial(created.ToString(), base64);
        Assert.Matches("^[0-9a-f]{16}$", created.Id);
    }

    [Fact]
    public void The_key_id_is_the_first_8_bytes_of_the_keys_sha256_in_hex()
    {
        using var created = MasterKey.CreateFile(KeyPath);
        var key = Convert.FromBase64String(File.ReadAllText(KeyPath));

        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(key)[..8]), created.Id);
    }

    [Fact]
    public void The_key_is_not_a_public_property()
    {
        var visible = typeof(MasterKey).GetProperties().Select(p => p.Name);
        Assert.Equal(["Id"], visible);
    }

    // ---- Helpers ----

    private string CreateAndReadBase64(out string id)
    {
        using var created = MasterKey.CreateFile(KeyPath);
        id = created.Id;
        return File.ReadAllText(KeyPath).TrimEnd('\n');
    }

    private void WriteKeyFile(byte[] content)
    {
        File.WriteAllBytes(KeyPath, content);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(KeyPath, Mode600);
        }
    }

    private static byte[] Content(string template, string base64) => template switch
    {
        "KEY43" => Encoding.ASCII.GetBytes(base64[..43]),
        "URLSAFE" => Encoding.ASCII.GetBytes("-_" + base64[2..]),
        "SPACE" => Encoding.ASCII.GetBytes(base64[..20] + " " + base64[21..]),
        "LEN33" => Encoding.ASCII.GetBytes(Convert.ToBase64String(Convert.FromBase64String(base64).Append((byte)7).ToArray())),
        "LEN31" => Encoding.ASCII.GetBytes(Convert.ToBase64String(Convert.FromBase64String(base64)[..31])),
        "RAW32" => Convert.FromBase64String(base64),
        "HUGE" => Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(base64, 25_000))),
        _ => Encoding.ASCII.GetBytes(template.Replace("{key}", base64)),
    };

    private static void AssertNoKeyMaterial(string message, string base64)
    {
        Assert.DoesNotContain(base64, message);
        for (var i = 0; i + 8 <= base64.Length; i += 4)
        {
            Assert.DoesNotContain(base64.Substring(i, 8), message);
        }
    }
}

/// <summary>A fact that needs Unix file modes: skipped on Windows.</summary>
public sealed class UnixFactAttribute : FactAttribute
{
    public UnixFactAttribute()
    {
        if (OperatingSystem.IsWindows())
        {
            Skip = "Unix file modes only";
        }
    }
}

/// <summary>A theory that needs Unix file modes: skipped on Windows.</summary>
public sealed class UnixTheoryAttribute : TheoryAttribute
{
    public UnixTheoryAttribute()
    {
        if (OperatingSystem.IsWindows())
        {
            Skip = "Unix file modes only";
        }
    }
}
