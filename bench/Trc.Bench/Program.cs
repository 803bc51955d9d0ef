using Trc.Bench;

return args switch
{
    ["eventstore"] => await EventStoreBench.RunAsync(),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Trc.Bench eventstore   (run it through bench/run, which prepares what it needs)");
    return 2;
}
