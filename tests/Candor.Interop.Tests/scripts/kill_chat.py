#!/usr/bin/python3
"""The kill test of issue 14: a steady two-way chat with slixmpp's xep_0198 plugin (an ack asked for after every
stanza) while the test kills the server with SIGKILL and starts it again; then both log in again and every message
the server acknowledged with <a/> must be with its recipient: received live before the kill, delivered from offline
storage at the new login, or in the recipient's archive (XEP-0313, the server archives every message). Messages the
server never acknowledged may be missing; how many were is reported.

    /usr/bin/python3 kill_chat.py HOST PORT JID_A PASSWORD_A JID_B PASSWORD_B --port-file FILE [--timeout 20]

Prints TRAFFIC once both have had messages acknowledged; the test then kills the server, starts it again and writes
its new c2s port to FILE.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say, two_accounts_parser  # noqa: E402

INTERVAL = 0.01
ACKED_BEFORE_KILL = 100


class Chatter:
    def __init__(self, name, jid, password, host, port):
        self.name, self.jid, self.password = name, jid, password
        self.client = Client(name, jid, password, host, port, "SCRAM-SHA-256")
        self.client.x.register_plugin("xep_0198", {"window": 1})
        self.client.x.add_event_handler("sm_enabled", self.client._marker_handler("sm_enabled"))
        self.sent = []
        self.acked = set()
        self.client.x.add_event_handler("stanza_acked", self._acked)

    def _acked(self, stanza):
        if stanza.name == "message" and stanza["body"]:
            self.acked.add(str(stanza["body"]))

    def received(self, client, prefix):
        return [str(s["body"]) for k, s in client.inbox if k == "message" and str(s["body"]).startswith(prefix)]


async def chat(sender, to, tag, stop):
    i = 0
    while not stop.is_set():
        body = f"{sender.name}>{i} {tag}"
        sender.client.send_message(to, body)
        sender.sent.append(body)
        i += 1
        await asyncio.sleep(INTERVAL)


async def archive_bodies(client, step, prefix):
    bodies = []
    try:
        async for message in client.x["xep_0313"].iterate(rsm={"max": 250}):
            body = str(message["mam_result"]["forwarded"]["stanza"]["body"])
            if body.startswith(prefix):
                bodies.append(body)
    except Exception as e:  # noqa: BLE001 - report any failure as the step's failure
        raise StepFailed(f"{step}: archive query failed: {e!r}") from e
    return bodies


async def main(args):
    t = args.timeout
    tag = os.urandom(4).hex()
    a = Chatter("A", args.jid_a, args.password_a, args.host, args.port)
    b = Chatter("B", args.jid_b, args.password_b, args.host, args.port)
    for c in (a, b):
        step = f"1 login {c.name} with stream management"
        await c.client.login(step, t)
        await c.client._wait(step, t, lambda c=c: True if any(e == "sm_enabled" for e, _ in c.client.markers) else None)

    step = "2 steady chat both ways"
    stop = asyncio.Event()
    for c in (a, b):
        c.client.markers = [(e, d) for e, d in c.client.markers if e != "disconnected"]
    tasks = [asyncio.ensure_future(chat(a, bare(args.jid_b), tag, stop)), asyncio.ensure_future(chat(b, bare(args.jid_a), tag, stop))]
    await a.client._wait(step, t, lambda: True if min(len(a.acked), len(b.acked)) >= ACKED_BEFORE_KILL else None)
    say(f"{step}: ok — {len(a.acked)} and {len(b.acked)} acknowledged so far")
    say("TRAFFIC")

    step = "3 the server is killed"
    await a.client._wait(step, 60, lambda: True if all(any(e == "disconnected" for e, _ in c.client.markers) for c in (a, b)) else None)
    stop.set()
    await asyncio.gather(*tasks)
    say(f"{step}: ok — A sent {len(a.sent)} ({len(a.acked)} acknowledged), B sent {len(b.sent)} ({len(b.acked)} acknowledged)")

    step = "4 the server is back"
    port = None
    for _ in range(int(60 / 0.2)):
        if os.path.exists(args.port_file) and open(args.port_file).read().strip():
            port = int(open(args.port_file).read().strip())
            break
        await asyncio.sleep(0.2)
    if port is None:
        raise StepFailed(f"{step}: no port in {args.port_file} within 60 s")
    say(f"{step}: ok — port {port}")

    lost_unacked = 0
    for sender, recipient in ((a, b), (b, a)):
        step = f"5 {recipient.name} logs in again and finds what {sender.name} sent"
        prefix = f"{sender.name}>"
        again = Client(recipient.name + "'", recipient.jid, recipient.password, args.host, port, "SCRAM-SHA-256")
        again.x.register_plugin("xep_0313")
        await again.login(step, t)
        await asyncio.sleep(1)
        live = recipient.received(recipient.client, prefix)
        offline = recipient.received(again, prefix)
        archived = await archive_bodies(again, step, prefix)
        have = set(live) | set(offline) | set(archived)
        missing_acked = sorted(recipient_body for recipient_body in sender.acked if recipient_body not in have)
        if missing_acked:
            raise StepFailed(f"{step}: {len(missing_acked)} messages the server acknowledged are lost: {missing_acked[:5]}")
        doubled = [body for body in set(live) & set(offline)]
        if doubled:
            raise StepFailed(f"{step}: delivered live and again from offline storage: {doubled[:5]}")
        unacked = [body for body in sender.sent if body not in sender.acked]
        missing = [body for body in unacked if body not in have]
        lost_unacked += len(missing)
        say(f"{step}: ok — of {len(sender.sent)} sent, {len(sender.acked)} acknowledged, all there "
            f"({len(live)} live, {len(offline)} offline, {len(archived)} in the archive); "
            f"{len(unacked)} not acknowledged, {len(missing)} of them missing (allowed)")
        await again.logout(f"{step} (logout)", t)
    say(f"REPORT lost only unacknowledged messages: {lost_unacked}")


if __name__ == "__main__":
    p = two_accounts_parser(__doc__)
    p.add_argument("--port-file", required=True)
    p.add_argument("--timeout", type=float, default=20.0)
    arguments = p.parse_args()
    run(lambda: main(arguments))
