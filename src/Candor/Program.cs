using System.CommandLine;
using Candor.Cli;

var root = new RootCommand("Candor: an XMPP server whose treatment of your messages is published, announced and checkable.");
root.Add(ServeCommand.Create());
root.Add(UserCommand.Create());
root.Add(ChatCommand.Create());
root.Add(SendCommand.Create());
root.Add(ListenCommand.Create());
root.Add(PolicyCommand.Create());
try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e)
{
    // One line, never a stack trace: the operator needs the reason, not our internals.
    Console.Error.WriteLine($"candor: {e.GetBaseException().Message}");
    return ExitCodes.Failure;
}
