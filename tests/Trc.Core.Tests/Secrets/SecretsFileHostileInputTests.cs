using System.Text;
using Trc.Core.Secrets;

namespace Trc.Core.Tests.Secrets;

/// <summary>Hostile inputs: each must give a clean error quickly, never an exception or a hang.</summary>
public sealed class SecretsFileHostileInputTests
{
    private static byte[] Header => "# TRC_SECRETS_V1\n"u8.ToArray();

    public static TheoryData<string> Inputs => new(HostileInputs.Keys);

    private static readonly Dictionary<string, Func<byte[]>> HostileInputs = new()
    {
        ["1 MB key"] = () => [.. Header, .. Repeat((byte)'K', 1_000_000), .. "=v\n"u8],
        ["1 MB key with no equals sign"] = () => [.. Header, .. Repeat((byte)'K', 1_000_000)],
        ["5 MB file"] = () => [.. Header, .. "A="u8, .. Repeat((byte)'x', 5_000_000), (byte)'\n'],
        ["5 MB of random bytes"] = () => RandomBytes(5_000_000, seed: 1),
        ["invalid UTF-8 in a value"] = () => [.. Header, .. "A="u8, 0xFF, 0xFE, (byte)'\n'],
        ["invalid UTF-8 instead of the header"] = () => [0xFF, 0xFE, 0x00, 0x0A],
        ["lone CR"] = () => [.. Header, .. "A=1\rB=2\n"u8],
        ["CRLF file"] = () => "# TRC_SECRETS_V1\r\nA=1\r\nB=2\r\n"u8.ToArray(),
        ["old Mac CR-only file"] = () => "# TRC_SECRETS_V1\rA=1\r"u8.ToArray(),
        ["duplicate keys"] = () => [.. Header, .. "A=1\nA=1\n"u8],
        ["50,000 duplicate keys"] = () => [.. Header, .. Enumerable.Repeat("DUP=x\n"u8.ToArray(), 50_000).SelectMany(b => b)],
        ["NUL"] = () => [.. Header, .. "A=\0\n"u8],
        ["a megabyte of NULs"] = () => new byte[1_000_000],
        ["deep garbage"] = () => [.. Header, .. Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("{[(\"\\'", 200_000)))],
        ["a megabyte of equals signs"] = () => [.. Header, .. Repeat((byte)'=', 1_000_000)],
        ["a megabyte of base64 with one bad byte at the end"] = () => [.. Header, .. "A=base64:"u8, .. Repeat((byte)'A', 1_000_000), (byte)'!', (byte)'\n'],
        ["random bytes after the header"] = () => [.. Header, .. RandomBytes(100_000, seed: 2)],
        ["random bytes"] = () => RandomBytes(100_000, seed: 3),
        ["only a BOM"] = () => [0xEF, 0xBB, 0xBF],
        ["a million empty lines then a bad key"] = () => [.. Header, .. Repeat((byte)'\n', 1_000_000), .. "bad=1\n"u8],
    };

    [Theory]
    [MemberData(nameof(Inputs))]
    public async Task A_hostile_input_gives_a_clean_error_quickly(string name)
    {
        var file = HostileInputs[name]();

        // WaitAsync throws TimeoutException if the parser hangs.
        var result = await Task.Run(() => SecretsFile.Parse(file)).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(result.IsSuccess, name);
        var error = result.Error!;
        Assert.True(error.Line >= 1 && error.Column >= 1, error.ToString());
        Assert.InRange(error.ByteOffset, 0, file.Length);
        Assert.InRange(error.Message.Length, 1, 400);
    }

    [Fact]
    public async Task A_large_valid_file_parses_in_linear_time()
    {
        var body = string.Concat(Enumerable.Range(0, 100_000).Select(i => $"KEY_{i}=value {i}\n"));
        var file = Encoding.UTF8.GetBytes("# TRC_SECRETS_V1\n" + body);
        var result = await Task.Run(() => SecretsFile.Parse(file)).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(100_000, result.Secrets!.Count);
    }

    private static byte[] Repeat(byte b, int count)
    {
        var bytes = new byte[count];
        Array.Fill(bytes, b);
        return bytes;
    }

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
