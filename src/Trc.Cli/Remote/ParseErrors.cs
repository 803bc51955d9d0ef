using System.CommandLine;

namespace Trc.Cli.Remote;

/// <summary>
/// Prints command-line errors without the secrets a mistyped command line may hold. The parser
/// quotes every token it did not understand, so <c>trc secret set DB_PASSWORD=hunter2</c> (a
/// typo for <c>secrets</c>) or <c>trc logn --token trc_...</c> would put the value in a CI log.
/// </summary>
internal static class ParseErrors
{
    private const string Redacted = "[redacted]";

    /// <summary>Prints each error of <paramref name="parse"/> on stderr, redacted, and returns exit 2.</summary>
    public static int Print(CliConsole console, ParseResult parse, IReadOnlyList<string> args)
    {
        var secrets = Secrets(args);
        foreach (var error in parse.Errors)
        {
            // The parser's own layout (a list of allowed values on lines of their own) as one line.
            var message = string.Join(' ', Redact(error.Message, secrets).Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            console.Err.WriteLine($"trc: {TextTable.Clean(message)}");
        }
        console.Err.WriteLine("Run 'trc --help' (or 'trc COMMAND --help') for usage.");
        return ExitCodes.Usage;
    }

    /// <summary>
    /// The arguments to hide and what to show instead: a <c>KEY=VALUE</c> (a secret, or an option
    /// written <c>--opt=value</c>) shows its key part only; the token after <c>--token</c>
    /// (or in <c>--token=...</c>, <c>--token:...</c>) shows nothing of itself.
    /// </summary>
    internal static IReadOnlyList<(string Raw, string Shown)> Secrets(IReadOnlyList<string> args)
    {
        var secrets = new List<(string, string)>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--token" && i + 1 < args.Count)
            {
                secrets.Add((args[++i], Redacted));
            }
            else if (arg.StartsWith("--token:", StringComparison.Ordinal))
            {
                secrets.Add((arg, "--token:" + Redacted));
            }
            else if (arg.IndexOf('=', StringComparison.Ordinal) is var equals and >= 0)
            {
                secrets.Add((arg, arg[..(equals + 1)] + Redacted));
            }
        }
        // Longest first, so that a secret containing another is replaced whole.
        return secrets.Where(s => s.Item1.Length > 0).OrderByDescending(s => s.Item1.Length).ToList();
    }

    /// <summary>Replaces each secret where the message quotes it, and anywhere when it is long enough to be unambiguous.</summary>
    internal static string Redact(string message, IReadOnlyList<(string Raw, string Shown)> secrets)
    {
        foreach (var (raw, shown) in secrets)
        {
            message = message.Replace($"'{raw}'", $"'{shown}'", StringComparison.Ordinal);
            if (raw.Length >= 6)
            {
                message = message.Replace(raw, shown, StringComparison.Ordinal);
            }
        }
        return message;
    }
}
