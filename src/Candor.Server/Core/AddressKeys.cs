using System.Net;
using System.Net.Sockets;

namespace Candor.Server.Core;

/// <summary>
/// The key per-address limits count under. An IPv6 host usually holds a whole /64 (RFC 4291 §2.5.4: interface
/// identifiers are 64 bits), so counting addresses one by one would give an attacker 2^64 allowances: IPv6
/// addresses count by their /64 prefix. IPv4 addresses (and IPv4-mapped ones) and loopback count as they are.
/// </summary>
public static class AddressKeys
{
    public static IPAddress Of(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) return address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6 || IPAddress.IsLoopback(address)) return address;
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes);
    }
}
