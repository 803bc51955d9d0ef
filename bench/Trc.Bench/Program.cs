using Trc.Bench;

return args switch
{
    ["eventstore"] => await EventStoreBench.RunAsync(),
    ["edge"] => await EdgeBench.RunAsync(),
    ["oci"] => OperatingSystem.IsLinux() ? await OciBench.RunAsync() : Usage(),
    ["boot"] => OperatingSystem.IsLinux() ? await BootBench.RunAsync("qemu") : Usage(),
    ["scheduler"] => SchedulerBench.Run(),
    ["boot", "--driver", var driver] when driver is "qemu" or "firecracker" => OperatingSystem.IsLinux() ? await BootBench.RunAsync(driver) : Usage(),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Trc.Bench eventstore|edge|oci|scheduler|boot [--driver qemu|firecracker]   (run it through bench/run, which prepares what it needs)");
    return 2;
}
