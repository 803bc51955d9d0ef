using Trc.Bench;

return args switch
{
    ["eventstore"] => await EventStoreBench.RunAsync(),
    ["edge"] => await EdgeBench.RunAsync(),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Trc.Bench eventstore|edge   (run it through bench/run, which prepares what it needs)");
    return 2;
}
