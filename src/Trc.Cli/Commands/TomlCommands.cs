using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Trc.Core.Toml;

namespace Trc.Cli.Commands;

/// <summary><c>trc toml decode</c>: the toml-test decoder contract.</summary>
internal static class TomlCommands
{
    public static Command Create(CliConsole console)
    {
        var decode = new Command("decode", """
            Read TOML on stdin and print toml-test's tagged JSON on stdout (exit 0),
            or an error on stderr (exit 1): the decoder contract of toml-lang/toml-test.

            Example:
              echo 'a = 1' | trc toml decode
            """);
        decode.SetAction(_ => Decode(console));

        var toml = new Command("toml", "TOML tools (the reader behind trc.toml).");
        toml.Subcommands.Add(decode);
        return toml;
    }

    private static int Decode(CliConsole console)
    {
        var result = Toml.Parse(console.ReadAllInput());
        if (!result.IsSuccess)
        {
            console.Err.WriteLine($"stdin:{result.Error}");
            return ExitCodes.Invalid;
        }
        using var writer = new Utf8JsonWriter(console.OutStream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, MaxDepth = TomlTaggedJson.MaxJsonDepth });
        TomlTaggedJson.Write(writer, result.Document!.Root);
        writer.Flush();
        console.OutStream.Write("\n"u8);
        return ExitCodes.Ok;
    }
}
