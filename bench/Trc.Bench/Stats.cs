namespace Trc.Bench;

/// <summary>Order statistics shared by the benchmarks (nearest-rank percentiles).</summary>
internal static class Stats
{
    /// <summary>The median; NaN when there are no values.</summary>
    public static double Median(IEnumerable<double> values) => Percentile(values.ToList(), 50);

    /// <summary>The nearest-rank <paramref name="p"/>th percentile; NaN when there are no values.</summary>
    public static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }
        var sorted = values.Order().ToList();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Count) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Count - 1)];
    }
}
