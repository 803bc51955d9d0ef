using System.CommandLine;
using System.Text;
using Trc.Core.Manifest;

namespace Trc.Cli.Commands;

/// <summary>Offline manifest tools: <c>trc validate</c>, <c>trc fmt</c>, <c>trc manifest json|schema</c>.</summary>
internal static class ManifestCommands
{
    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return Validate(console);
        yield return Fmt(console);
        yield return Manifest(console);
    }

    private static Command Validate(CliConsole console)
    {
        var files = new Argument<string[]>("FILE") { Description = "Manifests to check (trc.toml).", Arity = ArgumentArity.OneOrMore };
        var command = new Command("validate", """
            Check manifests against every rule and print all problems at once, each as
            FILE:LINE:COL: PATH: MESSAGE. Exits 0 when every file is valid, 1 otherwise.

            Example:
              trc validate trc.toml
            """);
        command.Arguments.Add(files);
        command.SetAction(parse =>
        {
            var exit = ExitCodes.Ok;
            foreach (var file in parse.GetValue(files)!)
            {
                if (!TryLoad(console, file, out var loaded, out var code))
                {
                    exit = Math.Max(exit, code);
                    continue;
                }
                if (loaded.IsValid)
                {
                    console.Out.WriteLine($"{file}: ok");
                    continue;
                }
                Report(console, file, loaded);
                exit = Math.Max(exit, ExitCodes.Invalid);
            }
            return exit;
        });
        return command;
    }

    private static Command Fmt(CliConsole console)
    {
        var files = new Argument<string[]>("FILE") { Description = "Manifests to format in place; '-' reads stdin and writes stdout.", Arity = ArgumentArity.OneOrMore };
        var check = new Option<bool>("--check") { Description = "Change nothing; list files that are not formatted and exit 1 if any." };
        var command = new Command("fmt", """
            Rewrite manifests in canonical order and layout, keeping every comment.
            A file that is not valid TOML, or has unknown keys or wrongly typed values,
            is left untouched and its problems are printed (exit 1).

            Examples:
              trc fmt trc.toml
              trc fmt --check trc.toml      # in CI: exit 1 if trc fmt would change it
              cat trc.toml | trc fmt -
            """);
        command.Arguments.Add(files);
        command.Options.Add(check);
        command.SetAction(parse =>
        {
            var exit = ExitCodes.Ok;
            foreach (var file in parse.GetValue(files)!)
            {
                exit = Math.Max(exit, FormatOne(console, file, parse.GetValue(check)));
            }
            return exit;
        });
        return command;
    }

    private static int FormatOne(CliConsole console, string file, bool check)
    {
        byte[] bytes;
        var fromStdin = file == "-";
        if (fromStdin)
        {
            bytes = console.ReadAllInput();
        }
        else if (!TryRead(console, file, out bytes!, out var code))
        {
            return code;
        }
        var loaded = ManifestLoader.Load(bytes);
        if (!loaded.HasValidShape)
        {
            Report(console, fromStdin ? "stdin" : file, loaded);
            console.Err.WriteLine($"{(fromStdin ? "stdin" : file)}: not formatted: fix the problems above first");
            return ExitCodes.Invalid;
        }
        var formatted = Encoding.UTF8.GetBytes(ManifestFormatter.Format(loaded));
        if (fromStdin)
        {
            if (check)
            {
                return formatted.AsSpan().SequenceEqual(bytes) ? ExitCodes.Ok : Changed(console, "stdin");
            }
            console.OutStream.Write(formatted);
            return ExitCodes.Ok;
        }
        if (formatted.AsSpan().SequenceEqual(bytes))
        {
            return ExitCodes.Ok;
        }
        if (check)
        {
            return Changed(console, file);
        }
        try
        {
            // Write a sibling and rename it over the file, so a crash never leaves half a manifest.
            var temp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, $".{Path.GetFileName(file)}.trc-fmt-{Environment.ProcessId}");
            File.WriteAllBytes(temp, formatted);
            File.Move(temp, file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            console.Err.WriteLine($"{file}: cannot write: {e.Message}");
            return ExitCodes.IoError;
        }
        console.Out.WriteLine($"{file}: formatted");
        return ExitCodes.Ok;
    }

    private static int Changed(CliConsole console, string file)
    {
        console.Out.WriteLine($"{file}: not formatted (run trc fmt {file})");
        return ExitCodes.Invalid;
    }

    private static Command Manifest(CliConsole console)
    {
        var file = new Argument<string>("FILE") { Description = "The manifest (trc.toml)." };
        var json = new Command("json", """
            Print a manifest's normalized JSON: every default filled, sizes in bytes,
            durations in milliseconds, keys in a fixed order. Exits 1 (with the problems
            on stderr) when the manifest is invalid.

            Example:
              trc manifest json trc.toml | jq .processes.web.memory_bytes
            """);
        json.Arguments.Add(file);
        json.SetAction(parse =>
        {
            var path = parse.GetValue(file)!;
            if (!TryLoad(console, path, out var loaded, out var code))
            {
                return code;
            }
            if (!loaded.IsValid)
            {
                Report(console, path, loaded);
                return ExitCodes.Invalid;
            }
            console.Out.Write(ManifestJson.Serialize(loaded.Manifest!));
            return ExitCodes.Ok;
        });

        var schema = new Command("schema", """
            Print the JSON Schema of trc.toml (the same as docs/manifest.schema.json), for
            editors that validate TOML against JSON Schema. Rules between fields (a route's
            process must exist, ...) are checked by trc validate only.

            Example:
              trc manifest schema > manifest.schema.json
            """);
        schema.SetAction(_ =>
        {
            console.Out.Write(ManifestSchema.ToJsonSchema());
            return ExitCodes.Ok;
        });

        var manifest = new Command("manifest", "Manifest tools: normalized JSON and the JSON Schema.");
        manifest.Subcommands.Add(json);
        manifest.Subcommands.Add(schema);
        return manifest;
    }

    private static bool TryLoad(CliConsole console, string file, out ManifestLoadResult loaded, out int code)
    {
        loaded = null!;
        if (!TryRead(console, file, out var bytes, out code))
        {
            return false;
        }
        loaded = ManifestLoader.Load(bytes);
        return true;
    }

    private static bool TryRead(CliConsole console, string file, out byte[] bytes, out int code)
    {
        bytes = [];
        code = ExitCodes.Ok;
        try
        {
            var info = new FileInfo(file);
            if (info.Exists && info.Length > ManifestLoader.MaxFileBytes)
            {
                console.Err.WriteLine($"{file}: the file is {info.Length} bytes; a manifest may be at most {ManifestLoader.MaxFileBytes}");
                code = ExitCodes.Invalid;
                return false;
            }
            bytes = File.ReadAllBytes(file);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            console.Err.WriteLine($"{file}: cannot read: {(e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message)}");
            code = ExitCodes.IoError;
            return false;
        }
    }

    private static void Report(CliConsole console, string file, ManifestLoadResult loaded)
    {
        foreach (var diagnostic in loaded.Diagnostics)
        {
            console.Err.WriteLine(diagnostic.Format(file));
        }
        var count = loaded.Diagnostics.Count;
        console.Err.WriteLine($"{file}: {count} problem{(count == 1 ? "" : "s")}");
    }
}
