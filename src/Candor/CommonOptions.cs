using System.CommandLine;
using Candor.Server.Hosting;
using Microsoft.Extensions.Configuration;

namespace Candor.Cli;

/// <summary>The options every command that touches the server's data shares, and how they become <see cref="ServerOptions"/>.</summary>
internal sealed class CommonOptions
{
    public Option<string?> Config { get; } = new("--config") { Description = "JSON configuration file (section \"Candor\"; see docs/CONFIGURATION.md)" };
    public Option<string?> Data { get; } = new("--data") { Description = "Data directory (default ./candor-data)" };
    public Option<string?> Domain { get; } = new("--domain") { Description = "The XMPP domain served (default localhost)" };
    public Option<string?> Postgres { get; } = new("--postgres")
    {
        Description = "Store data in this PostgreSQL database instead of SQLite in --data: \"Host=...;Port=...;Username=...;Password=...;Database=...\"",
    };

    public void AddTo(Command command)
    {
        command.Add(Config);
        command.Add(Data);
        command.Add(Domain);
        command.Add(Postgres);
    }

    /// <summary>Configuration file, then CANDOR__* environment variables, then the command line.</summary>
    public ServerOptions Load(ParseResult parse, Action<ServerOptions>? fromCommandLine = null)
    {
        var builder = new ConfigurationBuilder();
        var file = parse.GetValue(Config);
        if (file is not null)
        {
            if (!File.Exists(file)) throw new OptionsException($"configuration file {file} does not exist");
            builder.AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false);
        }
        builder.AddEnvironmentVariables();
        var options = ServerOptions.FromConfiguration(builder);
        if (parse.GetValue(Data) is { } data) options.DataDirectory = data;
        if (parse.GetValue(Domain) is { } domain) options.Domain = domain;
        if (parse.GetValue(Postgres) is { } postgres) options.Postgres = postgres;
        fromCommandLine?.Invoke(options);
        options.Validate();
        return options;
    }
}

internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    public const int Exists = 3;
    public const int NotFound = 4;
    public const int InvalidJid = 5;
}
