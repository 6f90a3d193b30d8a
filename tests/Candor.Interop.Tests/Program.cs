using Candor.Interop.Tests.Infrastructure;

namespace Candor.Interop.Tests;

/// <summary>
/// The test assembly's entry point (the test SDK's generated one is turned off), so that a test can run part of a
/// load in a process of its own: <c>dotnet Candor.Interop.Tests.dll half-open-flood PORT FIRST-SLOT COUNT XMPP SECONDS</c>
/// (see <see cref="HalfOpenFlood"/>). The test runner does not use it.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args is not ["half-open-flood", var port, var firstSlot, var count, var xmpp, var seconds])
        {
            Console.Error.WriteLine("usage: half-open-flood PORT FIRST-SLOT COUNT XMPP(true|false) SECONDS");
            return 2;
        }
        await ConnectionFlood.Start(int.Parse(port), int.Parse(firstSlot), int.Parse(count), bool.Parse(xmpp), TimeSpan.FromSeconds(int.Parse(seconds))).RunAsync();
        return 0;
    }
}
