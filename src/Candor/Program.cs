using System.CommandLine;
using System.CommandLine.Parsing;
using Candor.Cli;

var root = new RootCommand("Candor: an XMPP server whose treatment of your messages is published, announced and checkable.");
root.Add(ServeCommand.Create());
root.Add(UserCommand.Create());
root.Add(ChatCommand.Create());
root.Add(SendCommand.Create());
root.Add(ListenCommand.Create());
root.Add(PolicyCommand.Create());
root.Add(KeyCommand.Create());
root.Add(CheckCommand.Create());
root.Add(BackupCommand.Backup());
root.Add(BackupCommand.Restore());
var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    // One line and exit 2 like every other usage error, not the parser's help screen and its exit 1, which
    // 'candor policy check' uses for "rejected".
    var name = CommandPath(parse.CommandResult);
    Console.Error.WriteLine($"{name}: {string.Join(" ", parse.Errors.Select(e => e.Message))} (see '{name} --help')");
    return ExitCodes.Usage;
}
try
{
    return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e)
{
    // One line, never a stack trace: the operator needs the reason, not our internals.
    Console.Error.WriteLine($"candor: {e.GetBaseException().Message}");
    return ExitCodes.Failure;
}

static string CommandPath(CommandResult command)
{
    var names = new List<string>();
    for (SymbolResult? symbol = command; symbol is not null; symbol = symbol.Parent)
        if (symbol is CommandResult result) names.Add(result.Command is RootCommand ? "candor" : result.Command.Name);
    names.Reverse();
    return string.Join(" ", names);
}
