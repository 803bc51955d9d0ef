using System.Text;
using Trc.Client.Events;

namespace Trc.Client.Tests.Events;

public sealed class ServerSentEventParserTests
{
    /// <summary>Feeds the whole sample, then every two-piece split of it, then one byte at a time; all must agree.</summary>
    private static List<ServerSentEvent> ParseEveryWay(byte[] sample)
    {
        var whole = Parse([sample]);
        for (var split = 1; split < sample.Length; split++)
        {
            Assert.Equal(whole, Parse([sample[..split], sample[split..]]));
        }
        Assert.Equal(whole, Parse(sample.Select(b => new[] { b }).ToArray()));
        return whole;
    }

    private static List<ServerSentEvent> Parse(byte[][] pieces)
    {
        var parser = new ServerSentEventParser();
        var events = new List<ServerSentEvent>();
        foreach (var piece in pieces)
        {
            Assert.Equal(ServerSentEventStatus.Ok, parser.Feed(piece, events));
        }
        return events;
    }

    [Fact]
    public void The_servers_own_framing_gives_id_type_and_data()
    {
        var events = ParseEveryWay(Encoding.UTF8.GetBytes(
            "id: 41\nevent: app.created\ndata: {\"id\":41}\n\n" +
            ": keep-alive\n\n" +
            "id: 42\nevent: env.created\ndata: {\"id\":42}\n\n"));
        Assert.Equal(
            [new ServerSentEvent("app.created", "{\"id\":41}", "41"), new ServerSentEvent("env.created", "{\"id\":42}", "42")],
            events);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\r")]
    public void Lines_may_end_with_LF_CRLF_or_CR(string eol)
    {
        var events = ParseEveryWay(Encoding.UTF8.GetBytes($"event: a{eol}data: one{eol}data: two{eol}{eol}data: three{eol}{eol}"));
        Assert.Equal([new ServerSentEvent("a", "one\ntwo", null), new ServerSentEvent("message", "three", null)], events);
    }

    [Fact]
    public void Comments_are_ignored_and_only_one_space_after_the_colon_is_dropped()
    {
        var events = ParseEveryWay(Encoding.UTF8.GetBytes(":comment\n: another: with colon\ndata:no space\ndata:  two spaces\ndata\n\n"));
        Assert.Equal([new ServerSentEvent("message", "no space\n two spaces\n", null)], events);
    }

    [Fact]
    public void An_event_without_data_is_not_dispatched_and_its_type_does_not_leak()
    {
        var events = ParseEveryWay(Encoding.UTF8.GetBytes("event: lonely\n\ndata: x\n\n"));
        Assert.Equal([new ServerSentEvent("message", "x", null)], events);
    }

    [Fact]
    public void The_last_id_persists_and_an_id_with_NUL_is_ignored()
    {
        var events = ParseEveryWay(Encoding.UTF8.GetBytes("id: 7\ndata: a\n\ndata: b\n\nid: 8\u0000\ndata: c\n\nid\ndata: d\n\n"));
        Assert.Equal(["7", "7", "7", ""], events.Select(e => e.Id));
    }

    [Fact]
    public void An_unfinished_event_at_the_end_is_not_dispatched()
    {
        var events = ParseEveryWay(Encoding.UTF8.GetBytes("data: complete\n\ndata: cut off\n"));
        Assert.Equal([new ServerSentEvent("message", "complete", null)], events);
    }

    [Fact]
    public void A_leading_byte_order_mark_is_skipped()
    {
        var events = ParseEveryWay([0xEF, 0xBB, 0xBF, .. "data: x\n\n"u8]);
        Assert.Equal([new ServerSentEvent("message", "x", null)], events);
    }

    [Fact]
    public void Unknown_fields_are_ignored_and_retry_is_read_when_it_is_digits()
    {
        var parser = new ServerSentEventParser();
        var events = new List<ServerSentEvent>();
        parser.Feed("foo: bar\nretry: 2500\nretry: soon\ndata: x\n\n"u8, events);
        Assert.Equal(TimeSpan.FromMilliseconds(2500), parser.Retry);
        Assert.Single(events);
    }

    [Fact]
    public void Non_UTF8_data_is_decoded_with_replacement_characters()
    {
        var events = ParseEveryWay([.. "data: a"u8, 0xFF, .. "b\n\n"u8]);
        Assert.Equal("a\uFFFDb", events.Single().Data);
    }

    [Fact]
    public void A_line_longer_than_the_cap_stops_the_parser()
    {
        var parser = new ServerSentEventParser(maxEventBytes: 64);
        var events = new List<ServerSentEvent>();
        Assert.Equal(ServerSentEventStatus.Ok, parser.Feed(Encoding.ASCII.GetBytes("data: " + new string('x', 40)), events));
        Assert.Equal(ServerSentEventStatus.TooLarge, parser.Feed(Encoding.ASCII.GetBytes(new string('x', 40)), events));
        Assert.Equal(ServerSentEventStatus.TooLarge, parser.Feed("\n\n"u8, events));
        Assert.Empty(events);
    }

    [Fact]
    public void Data_spread_over_many_short_lines_is_capped_too()
    {
        var parser = new ServerSentEventParser(maxEventBytes: 64);
        var events = new List<ServerSentEvent>();
        var status = ServerSentEventStatus.Ok;
        for (var i = 0; i < 20 && status == ServerSentEventStatus.Ok; i++)
        {
            status = parser.Feed("data: 0123456789\n"u8, events);
        }
        Assert.Equal(ServerSentEventStatus.TooLarge, status);
    }
}
