using Trc.Bench;

return args switch
{
    ["eventstore"] => await EventStoreBench.RunAsync(),
    ["edge"] => await EdgeBench.RunAsync(),
    ["oci"] => OperatingSystem.IsLinux() ? await OciBench.RunAsync() : Usage(),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Trc.Bench eventstore|edge|oci   (run it through bench/run, which prepares what it needs)");
    return 2;
}
