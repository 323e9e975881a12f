using System.Net;
using System.Net.Sockets;

namespace Deepline.Node;

/// <summary>A port this node needs is held by another process: one line for the operator, naming the setting that moves it.</summary>
public sealed class PortInUseException(string message) : Exception(message)
{
    /// <summary>The node's exit code for it (2: configuration, 3: store, 4: another cluster's store).</summary>
    public const int ExitCode = 5;
}

/// <summary>
/// Both ports are tried before anything starts: Kestrel's own failure is an unhandled exception with stack traces, and
/// Akka.Remote's DotNetty transport reported none at all (two nodes then shared one address). The probe sets
/// SO_REUSEADDR as both servers do, so a port left in TIME_WAIT by a node that just stopped is free, and only a socket
/// still listening there is a clash.
/// </summary>
public static class PortCheck
{
    public static void EnsureFree(string host, int port, string what, string setting, string variable)
    {
        if (port == 0 || Address(host) is not { } address) return;
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(1);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new PortInUseException($"{what} port {port} on {host} is in use by another process; free it or move this node with {setting} ({variable})");
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AccessDenied or SocketError.AddressNotAvailable)
        {
            throw new PortInUseException($"{what} port {port} on {host} cannot be bound ({e.Message}); set {setting} ({variable}) to a port and address this node may use");
        }
    }

    /// <summary>The address a server given <paramref name="host"/> binds; null for a name only the server resolves (then it is not probed).</summary>
    private static IPAddress? Address(string host) =>
        IPAddress.TryParse(host, out var ip) ? ip : host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback : null;
}
