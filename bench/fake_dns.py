#!/usr/bin/python3
"""A DNS server on loopback UDP for the federation benchmark: SRV answers from the command line, NXDOMAIN otherwise.

    /usr/bin/python3 bench/fake_dns.py PORT NAME=TARGET:PORT [NAME=TARGET:PORT ...]

e.g. _xmpp-server._tcp.eb.bench=127.0.0.3:5269 (a target that is an address needs no further lookup).
"""

import socket
import struct
import sys


def encode(name):
    return b"".join(bytes([len(label)]) + label.encode() for label in name.strip(".").split(".")) + b"\0"


def main():
    port = int(sys.argv[1])
    records = {}
    for spec in sys.argv[2:]:
        name, target = spec.split("=", 1)
        host, srv_port = target.rsplit(":", 1)
        records.setdefault(name.lower(), []).append((host, int(srv_port)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    while True:
        query, peer = sock.recvfrom(512)
        pos, labels = 12, []
        while query[pos]:
            labels.append(query[pos + 1:pos + 1 + query[pos]].decode(errors="replace"))
            pos += query[pos] + 1
        qtype = struct.unpack(">H", query[pos + 1:pos + 3])[0]
        end = pos + 5
        answers = records.get(".".join(labels).lower(), []) if qtype == 33 else []
        flags = 0x8180 if answers else 0x8183
        response = query[:2] + struct.pack(">HHHHH", flags, 1, len(answers), 0, 0) + query[12:end]
        for host, srv_port in answers:
            data = struct.pack(">HHH", 0, 0, srv_port) + encode(host)
            response += b"\xc0\x0c" + struct.pack(">HHIH", 33, 1, 60, len(data)) + data
        sock.sendto(response, peer)


if __name__ == "__main__":
    main()
