using System.Text;

namespace Trc.E2E.Tests;

/// <summary>One shell block of the README's tour, in order.</summary>
/// <param name="Index">Its position in the tour (from 0).</param>
/// <param name="Line">Its first line's number in README.md (for messages).</param>
/// <param name="Script">The block's text, as written.</param>
public sealed record TourBlock(int Index, int Line, string Script);

/// <summary>
/// The README's tour: every <c>```sh</c> block between the heading <c>## Tour</c> and the next
/// <c>## </c> heading, in order. The tour test runs exactly these, so the README cannot say
/// something that does not work.
/// </summary>
public static class ReadmeTour
{
    /// <summary>Reads the tour's blocks from <paramref name="readme"/>; throws when there is no tour.</summary>
    public static IReadOnlyList<TourBlock> Read(string readme)
    {
        var lines = File.ReadAllLines(readme);
        var start = Array.FindIndex(lines, l => l.StartsWith("## Tour", StringComparison.Ordinal));
        if (start < 0)
        {
            throw new InvalidOperationException($"{readme} has no '## Tour' section");
        }
        var blocks = new List<TourBlock>();
        StringBuilder? current = null;
        var currentLine = 0;
        for (var i = start + 1; i < lines.Length; i++)
        {
            var line = lines[i];
            if (current is null && line.StartsWith("## ", StringComparison.Ordinal))
            {
                break;
            }
            if (current is null && line.TrimEnd() == "```sh")
            {
                current = new StringBuilder();
                currentLine = i + 2;
            }
            else if (current is not null && line.TrimEnd() == "```")
            {
                blocks.Add(new TourBlock(blocks.Count, currentLine, current.ToString()));
                current = null;
            }
            else
            {
                current?.Append(line).Append('\n');
            }
        }
        if (current is not null)
        {
            throw new InvalidOperationException($"{readme}:{currentLine}: a tour block is not closed");
        }
        return blocks;
    }

    /// <summary>The one block containing <paramref name="command"/>; fails naming it when none or several do.</summary>
    public static TourBlock Find(IReadOnlyList<TourBlock> blocks, string command)
    {
        var found = blocks.Where(b => b.Script.Contains(command, StringComparison.Ordinal)).ToList();
        return found.Count switch
        {
            1 => found[0],
            0 => throw new InvalidOperationException($"the README tour has no block with `{command}`: the test checks that step, so say it there (or change the test with the tour)"),
            _ => throw new InvalidOperationException($"the README tour has {found.Count} blocks with `{command}` (lines {string.Join(", ", found.Select(b => b.Line))}); the test expects one"),
        };
    }
}
