using System.CommandLine;
using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using Trc.Client;
using Trc.Core.Toml;

namespace Trc.Cli.Remote;

/// <summary>A failure the CLI reports as <c>trc: MESSAGE</c> with an exit code.</summary>
internal sealed class CliFailure(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>The options a user command takes to say where it acts and how it prints.</summary>
internal sealed class Target
{
    public Option<string?>? Org { get; private init; }

    public Option<string?>? App { get; private init; }

    public Option<string?>? Env { get; private init; }

    public Option<bool>? Json { get; private init; }

    /// <summary>Adds fresh instances of the wanted options to <paramref name="command"/>.</summary>
    public static Target Add(Command command, bool org = false, bool app = false, bool env = false, bool json = false)
    {
        var target = new Target
        {
            Org = org ? NotEmpty(new Option<string?>("--org") { Description = "The org. Default: TRC_ORG, else the org saved by trc login.", HelpName = "ORG" }) : null,
            App = app ? NotEmpty(new Option<string?>("--app") { Description = "The app. Default: TRC_APP, else app in ./trc.toml.", HelpName = "APP" }) : null,
            Env = env ? NotEmpty(new Option<string?>("--env") { Description = "The env. Default: TRC_ENV, else the env saved by trc login.", HelpName = "ENV" }) : null,
            Json = json ? new Option<bool>("--json") { Description = "Print the API's JSON instead of a table." } : null,
        };
        foreach (var option in new Option?[] { target.Org, target.App, target.Env, target.Json })
        {
            if (option is not null)
            {
                command.Options.Add(option);
            }
        }
        return target;
    }

    /// <summary>
    /// Refuses an empty value (exit 2). <c>--env "$E"</c> with E unset must not quietly fall back to
    /// the default env: a script would then act on (or print the secrets of) another env.
    /// </summary>
    public static Option<string?> NotEmpty(Option<string?> option)
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && result.Tokens.Any(t => string.IsNullOrWhiteSpace(t.Value)))
            {
                result.AddError($"{option.Name} is empty: give a value (an unset shell variable, perhaps?), or leave the option out to use the default");
            }
        });
        return option;
    }
}

/// <summary>
/// What a user command works with: the client (server URL and token from TRC_URL/TRC_TOKEN or
/// the config file), the org, app and env it targets, and the output format.
/// </summary>
internal sealed class RemoteContext : IDisposable
{
    private static readonly JsonSerializerOptions PrettyJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly ParseResult _parse;
    private readonly Target _target;
    private CliConfig? _config;
    private TrcClient? _client;

    public RemoteContext(CliConsole console, ParseResult parse, Target target)
    {
        Console = console;
        _parse = parse;
        _target = target;
    }

    public CliConsole Console { get; }

    /// <summary>Whether to print JSON.</summary>
    public bool Json => _target.Json is { } json && _parse.GetValue(json);

    /// <summary>The config file's path.</summary>
    public string ConfigPath => CliConfig.PathFor(Console);

    /// <summary>
    /// The settings, read once when first needed: the config file <c>trc login</c> writes; when
    /// it names no server and <c>TRC_URL</c> is unset, the profile of a local <c>trc dev</c>.
    /// </summary>
    public CliConfig Config => _config ??= LoadConfig();

    /// <summary>The dev profile the settings came from, or null.</summary>
    public string? DevProfile { get; private set; }

    private string? _devProfileProblem;

    private CliConfig LoadConfig()
    {
        var config = CliConfig.Load(Console, ConfigPath);
        // A token of the environment or the login is never sent to a URL a profile names; trc dev
        // (and so its profile) is Linux only.
        if (config.Url is not null || config.Token is not null || Variable("TRC_URL") is not null || Variable("TRC_TOKEN") is not null || !OperatingSystem.IsLinux())
        {
            return config;
        }
        foreach (var candidate in Dev.DevPaths.ProfileCandidates(Console.GetEnvironmentVariable))
        {
            if (!File.Exists(candidate))
            {
                continue;
            }
            // Its URL gets whatever the user does next: only a file nobody else could have written.
            if (Dev.FileOwner.Untrusted(candidate) is { } why)
            {
                _devProfileProblem = $"{candidate}: not used: {why}";
                continue;
            }
            try
            {
                var dev = CliConfig.Load(Console, candidate);
                DevProfile = candidate;
                // A default org or env saved by trc login still applies.
                return dev with { Org = config.Org ?? dev.Org, Env = config.Env ?? dev.Env };
            }
            catch (CliFailure e)
            {
                _devProfileProblem = e.Message;
            }
        }
        return config;
    }

    /// <summary>The client, for the server and token of the environment or the config file.</summary>
    public TrcClient Client => _client ??= CreateClient();

    /// <summary>The value of an option, or null when absent or not taken by this command.</summary>
    public T? Value<T>(Option<T>? option) => option is null ? default : _parse.GetValue(option);

    /// <summary>The value of an argument.</summary>
    public T? Value<T>(Argument<T> argument) => _parse.GetValue(argument);

    /// <summary>The parsed command line, for option groups that read their own options.</summary>
    public ParseResult Parse => _parse;

    public string Org => Given(_target.Org) ?? Variable("TRC_ORG") ?? Config.Org
        ?? throw new CliFailure(ExitCodes.Usage, "which org? Pass --org ORG, set TRC_ORG, or save one with trc login --org ORG");

    /// <summary>The org when one is given or saved, else null (the platform admin's whole log).</summary>
    public string? OrgOrNull => Given(_target.Org) ?? Variable("TRC_ORG") ?? Config.Org;

    public string App => Given(_target.App) ?? Variable("TRC_APP") ?? AppOfLocalManifest()
        ?? throw new CliFailure(ExitCodes.Usage, "which app? Pass --app APP, set TRC_APP, or run this where a trc.toml names the app");

    public string Env => Given(_target.Env) ?? Variable("TRC_ENV") ?? Config.Env
        ?? throw new CliFailure(ExitCodes.Usage, "which env? Pass --env ENV (like --env prod), set TRC_ENV, or save one with trc login --env ENV");

    /// <summary>The option's value; null when it is absent. An empty value is a usage error, never "use the default".</summary>
    public string? Given(Option<string?>? option) => Value(option) switch
    {
        null => null,
        { } value when string.IsNullOrWhiteSpace(value) => throw new CliFailure(ExitCodes.Usage, $"{option!.Name} is empty: give a value, or leave the option out to use the default"),
        { } value => value,
    };

    /// <summary>A path given on the command line, resolved against the working directory.</summary>
    public string FullPath(string path) => Path.GetFullPath(path, Console.WorkingDirectory);

    /// <summary>An environment variable, null when unset or empty.</summary>
    public string? Variable(string name) => Console.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    /// <summary>Prints a value as the API's JSON.</summary>
    public void PrintJson<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, PrettyJson));

    /// <summary>Prints one value as one line of JSON (for streams).</summary>
    public void PrintJsonLine<T>(T value) =>
        Console.Out.WriteLine(JsonSerializer.Serialize(value, new JsonSerializerOptions(PrettyJson) { WriteIndented = false }));

    private TrcClient CreateClient()
    {
        var url = Variable("TRC_URL") ?? Config.Url;
        var token = Variable("TRC_TOKEN") ?? Config.Token;
        var source = DevProfile ?? ConfigPath;
        if (url is null || token is null)
        {
            throw new CliFailure(ExitCodes.NotAuthorized,
                $"not logged in: run trc login --url URL (or set TRC_URL and TRC_TOKEN), or start trc dev on this machine; no {(url is null ? "server URL" : "token")} in the environment or in {source}"
                + (_devProfileProblem is { } problem ? $"; the local trc dev's profile is unusable: {problem}" : ""));
        }
        Uri address;
        try
        {
            address = TrcClient.ParseBaseAddress(url);
        }
        catch (ArgumentException)
        {
            throw new CliFailure(ExitCodes.Invalid, $"the server URL \"{Printable(url)}\" ({(Variable("TRC_URL") is null ? source : "TRC_URL")}) is not an http:// or https:// URL");
        }
        WarnIfCleartext(Console, address);
        try
        {
            return new TrcClient(address, token);
        }
        catch (ArgumentException)
        {
            throw new CliFailure(ExitCodes.NotAuthorized,
                $"the token in {(Variable("TRC_TOKEN") is null ? source : "TRC_TOKEN")} is malformed (it must be printable ASCII without spaces); run trc login again");
        }
    }

    private string? AppOfLocalManifest()
    {
        var path = Path.Combine(Console.WorkingDirectory, "trc.toml");
        try
        {
            if (!File.Exists(path) || new FileInfo(path).Length > Trc.Core.Manifest.ManifestLoader.MaxFileBytes)
            {
                return null;
            }
            var parsed = Toml.Parse(File.ReadAllBytes(path));
            return parsed.Document?.Root.TryGetValue("app", out var app) == true && app is TomlString { Value.Length: > 0 } s ? s.Value : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Warns on stderr when the token would cross a network unencrypted: plain http to a host that
    /// is not this machine. A warning, not a refusal: a private network may be trusted.
    /// </summary>
    internal static void WarnIfCleartext(CliConsole console, Uri server)
    {
        if (server.Scheme == Uri.UriSchemeHttp && !server.IsLoopback)
        {
            console.Err.WriteLine($"trc: warning: {server.Scheme}://{server.Authority} is plain http: the token and everything else is sent unencrypted; use https:// unless this network is trusted");
        }
    }

    internal static string Printable(string s) => new(s.Take(100).Select(c => char.IsControl(c) ? '?' : c).ToArray());

    public void Dispose() => _client?.Dispose();
}

/// <summary>Runs user commands: one place turns every failure into a message on stderr and an exit code.</summary>
internal static class RemoteCommand
{
    /// <summary>Sets <paramref name="command"/>'s action to <paramref name="action"/>, with the CLI's error handling.</summary>
    public static void SetAction(Command command, CliConsole console, Target target, Func<RemoteContext, CancellationToken, Task<int>> action)
    {
        command.SetAction(async (parse, ct) =>
        {
            using var context = new RemoteContext(console, parse, target);
            return await RunAsync(console, () => action(context, ct), ct).ConfigureAwait(false);
        });
    }

    /// <summary>Runs <paramref name="action"/>, reporting its failure.</summary>
    public static async Task<int> RunAsync(CliConsole console, Func<Task<int>> action, CancellationToken ct)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (CliFailure f)
        {
            console.Err.WriteLine($"trc: {TextTable.Clean(f.Message)}");
            return f.ExitCode;
        }
        catch (TrcApiException e)
        {
            Report(console, e);
            return ExitCodeFor(e);
        }
        catch (TrcConnectionException e)
        {
            console.Err.WriteLine($"trc: {TextTable.Clean(e.Message)}");
            return ExitCodes.Unavailable;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            console.Err.WriteLine("trc: interrupted");
            return ExitCodes.Interrupted;
        }
    }

    /// <summary>401, and 403 for a role too weak, mean "log in with another token"; quota refusals are plain 4xx.</summary>
    public static int ExitCodeFor(TrcApiException e) => (int)e.StatusCode switch
    {
        401 => ExitCodes.NotAuthorized,
        403 when e.Code != "quota_exceeded" => ExitCodes.NotAuthorized,
        >= 500 => ExitCodes.Unavailable,
        >= 400 => ExitCodes.Invalid,
        // A redirect, or a success that is not the API's: this URL is not a usable trc server.
        _ => ExitCodes.Unavailable,
    };

    /// <summary>
    /// The problem's detail, field, errors and code on stderr, each cleaned of control characters
    /// (they come from the server). Nothing here can hold the token.
    /// </summary>
    public static void Report(CliConsole console, TrcApiException e)
    {
        console.Err.WriteLine($"trc: {TextTable.Clean(e.Message)}");
        if (e.Problem is { } problem)
        {
            if (problem.Field is { Length: > 0 } field)
            {
                console.Err.WriteLine($"  field: {TextTable.Clean(field)}");
            }
            foreach (var error in problem.Errors ?? [])
            {
                console.Err.WriteLine($"  - {TextTable.Clean(error)}");
            }
            console.Err.WriteLine($"  ({(int)e.StatusCode} {TextTable.Clean(problem.Code)})");
        }
        if (e.StatusCode == HttpStatusCode.Unauthorized)
        {
            console.Err.WriteLine("  the server refused the token (revoked, or not a token of this server): run trc login again, or check TRC_TOKEN");
        }
    }
}
