using Candor.Server.Tests.Harness;

namespace Candor.Server.Tests;

public sealed class ShutdownTests
{
    [Fact]
    public async Task Stopping_the_server_sends_system_shutdown_to_every_stream()
    {
        var server = await ServerFixture.StartAsync();
        try
        {
            await using var session = await server.OnlineUserAsync();
            await using var unauthenticated = await XmppTestClient.ConnectAsync(server.C2sPort);
            await using var direct = await XmppTestClient.ConnectAsync(server.TlsPort, directTls: true);

            var stopping = server.StopAsync();

            await session.ExpectStreamErrorAsync("system-shutdown");
            await unauthenticated.ExpectStreamErrorAsync("system-shutdown");
            await direct.ExpectStreamErrorAsync("system-shutdown");
            await stopping.WaitAsync(TimeSpan.FromSeconds(15));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
