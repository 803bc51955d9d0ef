using Trc.ControlPlane.Api;

namespace Trc.ControlPlane.Tests;

/// <summary>Durations of the server's settings, and <c>since</c> of the log queries.</summary>
public sealed class ServerDurationsTests
{
    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private static readonly FixedClock Now = new(new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero));

    [Theory]
    [InlineData("500ms", 500L)]
    [InlineData("15s", 15_000L)]
    [InlineData("10m", 600_000L)]
    [InlineData("2h", 7_200_000L)]
    [InlineData("7d", 604_800_000L)]
    [InlineData("36500d", 36500L * 86_400_000)]
    public void Durations_parse(string text, long milliseconds)
    {
        Assert.True(ServerDurations.TryParse(text, out var value, out var error), error);
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("d")]
    [InlineData("0d")]
    [InlineData("07d")]
    [InlineData("-1d")]
    [InlineData("+1d")]
    [InlineData("1.5d")]
    [InlineData("1D")]
    [InlineData("1 d")]
    [InlineData("1d ")]
    [InlineData("36501d")]
    [InlineData("99999999d")]
    [InlineData("\uff11d")] // a fullwidth digit
    [InlineData("1w")]
    [InlineData("999999999h")]
    [InlineData("1d\u0000")]
    public void Malformed_durations_are_refused_with_a_printable_message(string text)
    {
        Assert.False(ServerDurations.TryParse(text, out _, out var error));
        Assert.Contains("not a duration", error, StringComparison.Ordinal);
        Assert.DoesNotContain(error, char.IsControl);
    }

    [Theory]
    [InlineData("10m", "2025-03-01T11:50:00Z")]
    [InlineData("1d", "2025-02-28T12:00:00Z")]
    [InlineData("2025-01-31T12:00:00Z", "2025-01-31T12:00:00Z")]
    [InlineData("2025-01-31T14:00:00+02:00", "2025-01-31T12:00:00Z")]
    [InlineData("2025-01-31T12:00:00.125Z", "2025-01-31T12:00:00.125Z")]
    public void Since_is_a_time_or_a_duration_back_from_now(string text, string expected) =>
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), InstanceEndpoints.ParseSince(text, Now));

    [Theory]
    [InlineData("200000000h")]
    [InlineData("256204778h")]
    public void Since_further_back_than_year_1_is_every_line(string text) =>
        Assert.Equal(DateTimeOffset.MinValue, InstanceEndpoints.ParseSince(text, Now));

    [Theory]
    [InlineData("2025-01-31T12:00:00")] // no zone: whose clock?
    [InlineData("2025-01-31")]
    [InlineData("2025-02-30T12:00:00Z")]
    [InlineData("2025-01-31T12:00:00+25:00")]
    [InlineData("yesterday")]
    [InlineData("0m")]
    [InlineData("")]
    public void Anything_else_is_a_400_naming_since(string text)
    {
        var e = Assert.Throws<BadRequestException>(() => InstanceEndpoints.ParseSince(text, Now));
        Assert.Equal((400, "invalid_query", "since"), (e.Status, e.Code, e.Field));
    }

    [Fact]
    public void A_huge_since_is_refused_without_echoing_it_whole()
    {
        var e = Assert.Throws<BadRequestException>(() => InstanceEndpoints.ParseSince(new string('9', 100_000) + "\u001b", Now));
        Assert.True(e.Message.Length < 300, e.Message);
        Assert.DoesNotContain(e.Message, char.IsControl);
    }
}
