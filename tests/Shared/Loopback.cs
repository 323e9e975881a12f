using System.Net;
using System.Net.Sockets;

namespace Deepline.Tests.Shared;

/// <summary>Test servers and nodes listen on loopback only.</summary>
public static class Loopback
{
    /// <summary>A port free on 127.0.0.1 now (the OS picks it; the caller binds it next).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
