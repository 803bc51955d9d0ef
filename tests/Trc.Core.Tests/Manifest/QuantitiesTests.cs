using Trc.Core.Manifest;

namespace Trc.Core.Tests.Manifest;

public sealed class QuantitiesTests
{
    [Theory]
    [InlineData("1Ki", 1024L)]
    [InlineData("512Mi", 512L << 20)]
    [InlineData("2Gi", 2L << 30)]
    [InlineData("16Ti", 16L << 40)]
    [InlineData("8388607Ti", 8388607L << 40)]
    public void Sizes_parse_to_bytes(string text, long bytes)
    {
        Assert.True(ByteSize.TryParse(text, out var parsed, out var error), error);
        Assert.Equal(bytes, parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("512")]
    [InlineData("512M")]
    [InlineData("512MB")]
    [InlineData("512mi")]
    [InlineData("0Mi")]
    [InlineData("012Mi")]
    [InlineData("-1Gi")]
    [InlineData("1.5Gi")]
    [InlineData(" 1Gi")]
    [InlineData("Gi")]
    [InlineData("9999999999999999Ti")]
    [InlineData("8388608Ti")]
    public void Malformed_or_overflowing_sizes_are_rejected_with_a_message(string text)
    {
        Assert.False(ByteSize.TryParse(text, out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Theory]
    [InlineData(536870912L, "512Mi")]
    [InlineData(1073741824L, "1Gi")]
    [InlineData(1536L << 20, "1536Mi")]
    [InlineData(1000L, "1000 bytes")]
    public void Sizes_format_to_their_shortest_exact_form(long bytes, string text) => Assert.Equal(text, ByteSize.Format(bytes));

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("5s", 5000)]
    [InlineData("2m", 120000)]
    [InlineData("1h", 3600000)]
    [InlineData("256204778h", 256204778L * 3600000)]
    public void Durations_parse(string text, long ms)
    {
        Assert.True(Duration.TryParse(text, out var value, out var error), error);
        Assert.Equal(TimeSpan.FromMilliseconds(ms), value);
    }

    [Theory]
    [InlineData("5")]
    [InlineData("0s")]
    [InlineData("5 s")]
    [InlineData("1.5s")]
    [InlineData("5S")]
    [InlineData("1d")]
    [InlineData("1m30s")]
    [InlineData("9999999999s")]
    [InlineData("")]
    [InlineData("999999999h")] // beyond TimeSpan.MaxValue: refused, not an OverflowException
    [InlineData("256204779h")]
    public void Malformed_durations_are_rejected_with_a_message(string text)
    {
        Assert.False(Duration.TryParse(text, out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Theory]
    [InlineData(500, "500ms")]
    [InlineData(5000, "5s")]
    [InlineData(90000, "90s")]
    [InlineData(120000, "2m")]
    [InlineData(7200000, "2h")]
    public void Durations_format_to_their_shortest_exact_form(long ms, string text) => Assert.Equal(text, Duration.Format(TimeSpan.FromMilliseconds(ms)));
}
