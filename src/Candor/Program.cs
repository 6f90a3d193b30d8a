using System.CommandLine;
using Candor.Cli;

var root = new RootCommand("Candor: an XMPP server whose treatment of your messages is published, announced and checkable.");
root.Add(ServeCommand.Create());
root.Add(UserCommand.Create());
return await root.Parse(args).InvokeAsync();
