using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Trc.Cli.Remote;
using Trc.Core.Secrets;

namespace Trc.Cli.Commands;

/// <summary>
/// <c>trc secrets</c>: an env's secrets on the server (<c>set</c>, <c>unset</c>, <c>list</c>,
/// <c>render --env</c>) and offline tools for the secrets file (<c>render --from-json</c>,
/// <c>decode</c>; ADR 0010). No message printed here ever contains a secret value.
/// </summary>
internal static class SecretsCommands
{
    /// <summary>A JSON source can be larger than the file it renders (escapes, base64), but not unboundedly.</summary>
    private const int MaxJsonBytes = 32 * 1024 * 1024;

    public static Command Create(CliConsole console)
    {
        var secrets = new Command("secrets", """
            Secrets of an env, and tools for the secrets file (the TRC_SECRETS_V1 format).
            Values are stored encrypted; the server never shows them, except to an owner
            through trc secrets render --env.

            Examples:
              trc secrets set DATABASE_URL=postgres://db/shop --env prod
              trc secrets list --env prod
              trc secrets render --env prod > platform.env
            """);
        secrets.Subcommands.Add(CreateSet(console));
        secrets.Subcommands.Add(CreateUnset(console));
        secrets.Subcommands.Add(CreateList(console));
        secrets.Subcommands.Add(CreateRender(console));
        secrets.Subcommands.Add(CreateDecode(console));
        return secrets;
    }

    private static Command CreateSet(CliConsole console)
    {
        var pairs = new Argument<string[]>("KEY=VALUE") { Description = "Secrets to set; the value is everything after the first '='.", Arity = ArgumentArity.ZeroOrMore };
        var fromFile = new Option<string[]>("--from-file")
        {
            Description = "KEY=PATH: set KEY to the exact bytes of the file (repeatable); for keys, certificates and anything with newlines.",
            HelpName = "KEY=PATH",
        };
        var detach = RolloutCommands.DetachOption();
        var command = new Command("set", """
            Set secrets of an env, making a new secrets version. When the env runs a release,
            a new release with the new secrets rolls out (blue/green: every instance restarts
            once), and the command follows it like trc deploy (exit 6 if it fails) unless
            --detach. Other secrets keep their values. A value on the
            command line lands in your shell history: prefer --from-file for real secrets.

            Examples:
              trc secrets set LOG_LEVEL=debug --env prod
              trc secrets set --from-file TLS_KEY=./tls.key --from-file TLS_CERT=./tls.crt --env prod
            """);
        command.Arguments.Add(pairs);
        command.Options.Add(fromFile);
        command.Options.Add(detach);
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var values = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var pair in context.Value(pairs) ?? [])
            {
                var (key, value) = SplitPair(pair, "KEY=VALUE");
                Add(values, key, Encoding.UTF8.GetBytes(value));
            }
            foreach (var pair in context.Value(fromFile) ?? [])
            {
                var (key, path) = SplitPair(pair, "--from-file KEY=PATH");
                if (!SecretsFile.IsValidKey(key, out var problem))
                {
                    throw new CliFailure(ExitCodes.Invalid, problem);
                }
                if (!TryReadFile(console, context.FullPath(path), SecretsFile.MaxFileBytes, out var bytes))
                {
                    return ExitCodes.IoError;
                }
                if (bytes.Length > SecretsFile.MaxFileBytes)
                {
                    throw new CliFailure(ExitCodes.Invalid, $"{path}: the value of {key} is larger than 4 MiB, the limit for a whole secrets file");
                }
                Add(values, key, bytes);
            }
            if (values.Count == 0)
            {
                throw new CliFailure(ExitCodes.Usage, "nothing to set: give KEY=VALUE arguments or --from-file KEY=PATH");
            }
            var result = await context.Client.SetSecretsAsync(context.Org, context.App, context.Env, values, ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(result);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine($"Set {string.Join(", ", values.Keys.Order(StringComparer.Ordinal))}: secrets of {context.Org}/{context.App}/{context.Env} are now version {result.Version}.");
            return await FollowRolloutAsync(context, result, context.Value(detach), ct).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>After a secrets change: when it started a rollout (the answer names it), says so and follows it unless detached.</summary>
    private static async Task<int> FollowRolloutAsync(RemoteContext context, Trc.Core.Api.SecretsView result, bool detach, CancellationToken ct)
    {
        if (result.Deployment is not { } number)
        {
            context.Console.Out.WriteLine("The env runs no release: the next deploy starts with these secrets.");
            return ExitCodes.Ok;
        }
        var deployment = await context.Client.GetDeploymentAsync(context.Org, context.App, context.Env, number, ct).ConfigureAwait(false);
        context.Console.Out.WriteLine(TextTable.Clean($"Deployment {deployment.Number}: release {deployment.Release} rolls the new secrets out (every instance restarts once)."));
        return detach ? ExitCodes.Ok : await RolloutCommands.FollowAsync(context, context.App, deployment.Number, ct).ConfigureAwait(false);
    }

    private static Command CreateUnset(CliConsole console)
    {
        var keys = new Argument<string[]>("KEY") { Description = "Secrets to remove.", Arity = ArgumentArity.OneOrMore };
        var detach = RolloutCommands.DetachOption();
        var command = new Command("unset", """
            Remove secrets of an env, making a new secrets version; rolled out and followed as
            by trc secrets set (unless --detach).

            Example:
              trc secrets unset LOG_LEVEL OLD_API_KEY --env prod
            """);
        command.Arguments.Add(keys);
        command.Options.Add(detach);
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var names = context.Value(keys)!;
            var result = await context.Client.UnsetSecretsAsync(context.Org, context.App, context.Env, names, ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(result);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine($"Unset {string.Join(", ", names)}: secrets of {context.Org}/{context.App}/{context.Env} are now version {result.Version}.");
            return await FollowRolloutAsync(context, result, context.Value(detach), ct).ConfigureAwait(false);
        });
        return command;
    }

    private static Command CreateList(CliConsole console)
    {
        var command = new Command("list", """
            List the names of an env's secrets and the current version (never values).

            Example:
              trc secrets list --env prod
            """);
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var result = await context.Client.ListSecretsAsync(context.Org, context.App, context.Env, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(result);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine($"Version {result.Version}, {result.Names.Count} secret{(result.Names.Count == 1 ? "" : "s")}:");
            foreach (var name in result.Names)
            {
                console.Out.WriteLine($"  {TextTable.Clean(name)}");
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    private static (string Key, string Value) SplitPair(string pair, string form)
    {
        var eq = pair.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0)
        {
            // Print the key part only: whatever follows could be a value.
            throw new CliFailure(ExitCodes.Usage, $"expected {form}, got an argument without '=' (or without a key) of {pair.Length} characters");
        }
        return (pair[..eq], pair[(eq + 1)..]);
    }

    private static void Add(Dictionary<string, byte[]> values, string key, byte[] value)
    {
        if (!SecretsFile.IsValidKey(key, out var problem))
        {
            throw new CliFailure(ExitCodes.Invalid, problem);
        }
        if (!values.TryAdd(key, value))
        {
            throw new CliFailure(ExitCodes.Usage, $"{key} is given twice");
        }
    }

    private static Command CreateRender(CliConsole console)
    {
        var fromJson = new Option<string>("--from-json")
        {
            Description = """
                A JSON object of KEY: value, where value is a string (its UTF-8 bytes) or
                {"base64": "..."} (arbitrary bytes, standard base64 with padding).
                """,
            HelpName = "FILE",
        };
        var render = new Command("render", """
            Write a secrets file to stdout, byte for byte: the header, then KEY=VALUE lines sorted
            by key, values raw, or as base64: when they hold CR, LF, NUL or non-UTF-8 bytes or
            start with "base64:".
            Exactly one source is required: --env renders the env's current secrets from the
            server (owners only), --from-json renders a local JSON file, offline.

            Examples:
              trc secrets render --env prod > platform.env
              echo '{"DB_PASSWORD": "hunter2", "TLS_KEY": {"base64": "AAEC"}}' > s.json
              trc secrets render --from-json s.json > app.secrets
            """);
        render.Options.Add(fromJson);
        var target = Target.Add(render, org: true, app: true, env: true);
        var env = target.Env!;
        env.Description = "Render this env's secrets from the server (owners only).";

        render.Validators.Add(result =>
        {
            var json = result.GetResult(fromJson) is not null;
            var server = result.GetResult(env) is not null;
            if (json == server)
            {
                result.AddError(json
                    ? "Give either --env (render from the server) or --from-json (render a local file), not both."
                    : "Option '--env' or '--from-json' is required: trc secrets render needs exactly one source, e.g. 'trc secrets render --env prod' or 'trc secrets render --from-json secrets.json'.");
            }
        });
        RemoteCommand.SetAction(render, console, target, async (context, ct) =>
        {
            if (context.Value(fromJson) is { } path)
            {
                return RenderFromJson(console, Path.IsPathRooted(path) ? path : context.FullPath(path));
            }
            // Only --env, never TRC_ENV or the saved env: this prints secret values.
            var envName = context.Given(env) ?? throw new CliFailure(ExitCodes.Usage, "trc secrets render needs --env ENV; it never falls back to a default env");
            var file = await context.Client.RenderSecretsAsync(context.Org, context.App, envName, ct).ConfigureAwait(false);
            await console.OutStream.WriteAsync(file, ct).ConfigureAwait(false);
            await console.OutStream.FlushAsync(ct).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return render;
    }

    private static Command CreateDecode(CliConsole console)
    {
        var file = new Argument<string>("FILE") { Description = "The secrets file to read." };
        var decode = new Command("decode", """
            Parse a secrets file strictly and print {"KEY": "<base64 of the exact value bytes>"}
            in file order on stdout (exit 0), or FILE:LINE:COL: message on stderr (exit 1).
            Messages name keys and positions, never values.

            Example:
              trc secrets decode app.secrets
            """);
        decode.Arguments.Add(file);
        decode.SetAction(parse => Decode(console, parse.GetRequiredValue(file)));
        return decode;
    }

    private static int RenderFromJson(CliConsole console, string path)
    {
        if (!TryReadFile(console, path, MaxJsonBytes, out var json))
        {
            return ExitCodes.IoError;
        }
        if (json.Length > MaxJsonBytes)
        {
            console.Err.WriteLine($"{path}: the JSON file is larger than {MaxJsonBytes / (1024 * 1024)} MiB; a secrets file is at most 4 MiB");
            return ExitCodes.Invalid;
        }
        var secrets = ReadJsonSecrets(json, out var error);
        if (secrets is null)
        {
            console.Err.WriteLine($"{path}: {error}");
            return ExitCodes.Invalid;
        }
        byte[] file;
        try
        {
            file = SecretsFile.Encode(secrets);
        }
        catch (ArgumentException e)
        {
            // The encoder's messages name keys and limits, never values.
            console.Err.WriteLine($"{path}: {e.Message}");
            return ExitCodes.Invalid;
        }
        console.OutStream.Write(file);
        console.OutStream.Flush();
        return ExitCodes.Ok;
    }

    /// <summary>Reads the JSON source; on failure <paramref name="error"/> names the key or position, never a value.</summary>
    private static List<KeyValuePair<string, byte[]>>? ReadJsonSecrets(byte[] json, out string? error)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            // JsonException's own message can quote the offending text, which may be part of a secret.
            error = $"not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1} of that line";
            return null;
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = $"the JSON must be an object of KEY: value, not {Kind(document.RootElement.ValueKind)}";
                return null;
            }
            var secrets = new List<KeyValuePair<string, byte[]>>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var index = 0;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                index++;
                if (!TryGetName(property, out var key))
                {
                    error = $"the name of property {index} is not valid Unicode (a lone surrogate or invalid UTF-8)";
                    return null;
                }
                if (!SecretsFile.IsValidKey(key, out var keyProblem))
                {
                    error = keyProblem;
                    return null;
                }
                if (!seen.Add(key))
                {
                    error = $"duplicate key {key} in the JSON object";
                    return null;
                }
                var value = ReadValue(key, property.Value, out error);
                if (value is null)
                {
                    return null;
                }
                secrets.Add(new(key, value));
            }
            error = null;
            return secrets;
        }
    }

    private static byte[]? ReadValue(string key, JsonElement value, out string? error)
    {
        const string expected = "a string or {\"base64\": \"...\"}";
        error = null;
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                if (!TryGetString(value, out var text))
                {
                    error = $"the value of {key} is not valid Unicode (a lone surrogate or invalid UTF-8); use {{\"base64\": \"...\"}} for arbitrary bytes";
                    return null;
                }
                return Encoding.UTF8.GetBytes(text);

            case JsonValueKind.Object:
                byte[]? decoded = null;
                var fields = 0;
                foreach (var field in value.EnumerateObject())
                {
                    fields++;
                    if (!TryGetName(field, out var name) || name != "base64")
                    {
                        error = $"the value of {key} is an object with a field other than \"base64\"; it must be {expected}";
                        return null;
                    }
                    if (fields > 1)
                    {
                        error = $"the value of {key} has the field \"base64\" twice";
                        return null;
                    }
                    if (field.Value.ValueKind != JsonValueKind.String || !TryGetString(field.Value, out var base64))
                    {
                        error = $"the field \"base64\" of {key} must be a string of standard base64, not {Kind(field.Value.ValueKind)}";
                        return null;
                    }
                    if (!SecretsFile.TryDecodeBase64(Encoding.UTF8.GetBytes(base64), out decoded, out var at, out var problem))
                    {
                        error = $"the field \"base64\" of {key} is not canonical standard base64: {problem} (at character {at + 1})";
                        return null;
                    }
                }
                if (decoded is null)
                {
                    error = $"the value of {key} is an empty object; it must be {expected}";
                }
                return decoded;

            default:
                error = $"the value of {key} is {Kind(value.ValueKind)}; it must be {expected}";
                return null;
        }
    }

    private static int Decode(CliConsole console, string path)
    {
        if (!TryReadFile(console, path, SecretsFile.MaxFileBytes, out var bytes))
        {
            return ExitCodes.IoError;
        }
        var result = SecretsFile.Parse(bytes);
        if (!result.IsSuccess)
        {
            // LINE:COL: message (byte offset N); the message never contains a value.
            console.Err.WriteLine($"{path}:{result.Error}");
            return ExitCodes.Invalid;
        }
        using var writer = new Utf8JsonWriter(console.OutStream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        writer.WriteStartObject();
        foreach (var (key, value) in result.Secrets!)
        {
            writer.WriteString(key, Convert.ToBase64String(value));
        }
        writer.WriteEndObject();
        writer.Flush();
        console.OutStream.Write("\n"u8);
        return ExitCodes.Ok;
    }

    /// <summary>
    /// Reads at most <paramref name="limit"/> + 1 bytes, so that an oversized file is reported by
    /// its reader without being loaded whole.
    /// </summary>
    private static bool TryReadFile(CliConsole console, string path, int limit, out byte[] bytes)
    {
        bytes = [];
        try
        {
            using var stream = File.OpenRead(path);
            using var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int read;
            while (buffer.Length <= limit && (read = stream.Read(chunk, 0, chunk.Length)) > 0)
            {
                buffer.Write(chunk, 0, read);
            }
            bytes = buffer.Length > limit + 1L ? buffer.GetBuffer().AsSpan(0, limit + 1).ToArray() : buffer.ToArray();
            return true;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            console.Err.WriteLine($"{path}: no such file");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            console.Err.WriteLine($"{path}: cannot read the file: {e.Message}");
        }
        return false;
    }

    private static bool TryGetName(JsonProperty property, out string name)
    {
        try
        {
            name = property.Name;
            return true;
        }
        catch (InvalidOperationException)
        {
            name = "";
            return false;
        }
    }

    private static bool TryGetString(JsonElement element, out string text)
    {
        try
        {
            text = element.GetString()!;
            return true;
        }
        catch (InvalidOperationException)
        {
            text = "";
            return false;
        }
    }

    private static string Kind(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Number => "a number",
        JsonValueKind.Array => "an array",
        JsonValueKind.Null => "null",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Object => "an object",
        JsonValueKind.String => "a string",
        _ => "missing",
    };
}
