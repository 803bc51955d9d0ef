using System.Text;
using Trc.Agent.Guest;

namespace Trc.Agent.Tests.Guest;

public sealed class GuestCommandTests
{
    [Fact]
    public void A_stop_is_RS_T_and_the_grace_period_in_milliseconds()
    {
        Assert.Equal("\u001eT 5000\n"u8.ToArray(), new GuestCommand.Stop(TimeSpan.FromSeconds(5)).Encode());
        Assert.Equal("\u001eT 0\n"u8.ToArray(), new GuestCommand.Stop(TimeSpan.Zero).Encode());
    }

    [Fact]
    public void A_grace_period_with_a_fraction_of_a_millisecond_is_rounded_up()
    {
        Assert.Equal("\u001eT 2\n"u8.ToArray(), new GuestCommand.Stop(TimeSpan.FromTicks(10_001)).Encode());
    }

    [Fact]
    public void The_longest_grace_period_fits_init_s_limit()
    {
        Assert.Equal(Encoding.ASCII.GetBytes($"\u001eT {int.MaxValue}\n"), new GuestCommand.Stop(GuestCommand.MaxGrace).Encode());
    }

    [Fact]
    public void A_signal_is_RS_S_and_its_number()
    {
        Assert.Equal("\u001eS 15\n"u8.ToArray(), new GuestCommand.Signal(15).Encode());
        Assert.Equal("\u001eS 64\n"u8.ToArray(), new GuestCommand.Signal(64).Encode());
    }

    [Fact]
    public void Out_of_range_commands_cannot_be_made()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new GuestCommand.Stop(TimeSpan.FromMilliseconds(-1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GuestCommand.Stop(GuestCommand.MaxGrace + TimeSpan.FromMilliseconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GuestCommand.Signal(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GuestCommand.Signal(65));
    }
}
