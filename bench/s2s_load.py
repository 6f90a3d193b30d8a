#!/usr/bin/python3
"""Load over federation: senders on server A send chat messages to receivers on server B.

    /usr/bin/python3 bench/s2s_load.py A_PORT A_DOMAIN B_PORT B_DOMAIN PID_A PID_B [--users 4] [--messages 5000]
        [--rate 1000] [--password pw] [--host-a 127.0.0.1] [--host-b 127.0.0.1]

Users u1..uN exist on both servers (password --password). Each connection is a minimal client: STARTTLS (any
certificate), SASL PLAIN, bind, initial presence. Sender uI@A sends --messages chat messages to uI@B, all senders
together at --rate messages/s; the receivers count them. The servers' CPU time (utime+stime of PID_A and PID_B
from /proc) is read before the first message and after the last one arrived (or 60 s after sending ended), and
the CPU time per delivered message is printed for each server and both: on a shared machine this, not the rate,
is the figure to compare. Prints one line "RESULT key=value ...".
"""

import argparse
import asyncio
import base64
import os
import re
import ssl
import sys
import time

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Conn:
    def __init__(self, host, port, domain, user, password):
        self.host, self.port, self.domain, self.user, self.password = host, port, domain, user, password
        self.buffer = b""

    async def until(self, pattern, timeout=30):
        while True:
            m = re.search(pattern, self.buffer, re.S)
            if m:
                self.buffer = self.buffer[m.end():]
                return m
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise RuntimeError(f"{self.user}@{self.domain}: connection closed while waiting for {pattern!r}")
            self.buffer += data

    def send(self, text):
        self.writer.write(text.encode())

    def header(self):
        self.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                  f"to='{self.domain}' version='1.0'>")

    async def login(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.header()
        await self.until(rb"</stream:features>")
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await self.until(rb"<proceed[^>]*>")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        await self.writer.start_tls(context, server_hostname=self.domain)
        self.buffer = b""
        self.header()
        await self.until(rb"</stream:features>")
        token = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
        m = await self.until(rb"<(success|failure)[^>]*>")
        if m.group(1) != b"success":
            raise RuntimeError(f"{self.user}@{self.domain}: authentication failed")
        self.buffer = b""
        self.header()
        await self.until(rb"</stream:features>")
        self.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>load</resource></bind></iq>")
        await self.until(rb"id=['\"]b1['\"]")
        self.send("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq><presence/>")
        await self.writer.drain()


MARK = b"s2sload "


async def receive(conn, expected, counts, index, done):
    """Counts the load's message bodies (MARK) arriving on the connection, across read boundaries."""
    tail = b""
    while counts[index] < expected:
        data = conn.buffer or await conn.reader.read(65536)
        conn.buffer = b""
        if not data:
            break
        chunk = tail + data
        counts[index] += chunk.count(MARK)
        tail = chunk[-(len(MARK) - 1):]
    done.set()


async def main(a):
    users = [f"u{i}" for i in range(1, a.users + 1)]
    senders = [Conn(a.host_a, a.a_port, a.a_domain, u, a.password) for u in users]
    receivers = [Conn(a.host_b, a.b_port, a.b_domain, u, a.password) for u in users]
    for c in senders + receivers:
        await c.login()
    # Warm the s2s route: one message per pair, waited for, before measuring (Prosody's DNS lookups in the
    # benchmark's setup fail by timeout before it connects to the address from its hosts file).
    for s, u in zip(senders, users):
        s.send(f"<message to='{u}@{a.b_domain}' type='chat'><body>warm</body></message>")
    for r in receivers:
        await r.until(rb"warm</body>.*?</message>", 180)
    await asyncio.sleep(1)
    for r in receivers:
        r.buffer = b""
    counts = [0] * len(receivers)
    events = [asyncio.Event() for _ in receivers]
    tasks = [asyncio.create_task(receive(r, a.messages, counts, i, events[i])) for i, r in enumerate(receivers)]
    cpu_a0, cpu_b0, t0 = cpu_seconds(a.pid_a), cpu_seconds(a.pid_b), time.monotonic()
    total = a.messages * len(senders)
    interval = len(senders) / a.rate
    for n in range(a.messages):
        for s, u in zip(senders, users):
            s.send(f"<message to='{u}@{a.b_domain}' type='chat' id='m{n}'><body>s2sload {n}</body></message>")
        await asyncio.gather(*(s.writer.drain() for s in senders))
        target = t0 + (n + 1) * interval
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    sent_at = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
    except asyncio.TimeoutError:
        pass
    t1 = time.monotonic()
    cpu_a, cpu_b = cpu_seconds(a.pid_a) - cpu_a0, cpu_seconds(a.pid_b) - cpu_b0
    delivered = sum(counts)
    for t in tasks:
        t.cancel()
    per = lambda cpu: cpu * 1e6 / max(delivered, 1)  # noqa: E731
    print(f"RESULT sent={total} delivered={delivered} seconds={t1 - t0:.1f} send_seconds={sent_at - t0:.1f} "
          f"rate={delivered / (t1 - t0):.0f} cpu_a_us_per_msg={per(cpu_a):.1f} cpu_b_us_per_msg={per(cpu_b):.1f} "
          f"cpu_both_us_per_msg={per(cpu_a + cpu_b):.1f}", flush=True)
    return 0 if delivered == total else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a_port", type=int)
    p.add_argument("a_domain")
    p.add_argument("b_port", type=int)
    p.add_argument("b_domain")
    p.add_argument("pid_a", type=int)
    p.add_argument("pid_b", type=int)
    p.add_argument("--users", type=int, default=4)
    p.add_argument("--messages", type=int, default=5000, help="per sender")
    p.add_argument("--rate", type=float, default=1000.0, help="messages/s, all senders together")
    p.add_argument("--password", default="pw")
    p.add_argument("--host-a", default="127.0.0.1")
    p.add_argument("--host-b", default="127.0.0.1")
    sys.exit(asyncio.run(main(p.parse_args())))
