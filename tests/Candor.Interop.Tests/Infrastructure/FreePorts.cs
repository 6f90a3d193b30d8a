using System.Net;
using System.Net.Sockets;

namespace Candor.Interop.Tests.Infrastructure;

public static class FreePorts
{
    /// <summary>
    /// Distinct loopback ports that were free a moment ago. All listeners are held open until
    /// every port is chosen, so the same port is never returned twice.
    /// </summary>
    public static int[] Take(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
            }
            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Stop();
            }
        }
    }
}
