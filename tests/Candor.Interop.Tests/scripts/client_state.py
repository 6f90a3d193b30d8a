#!/usr/bin/python3
"""Client State Indication (XEP-0352) with slixmpp's own xep_0352 plugin: A says it is inactive;
B's presence updates to A wait on the server, coalesced, until B's message with a body arrives,
which brings only B's latest presence with it. Then A becomes active and updates flow again.

    /usr/bin/python3 client_state.py HOST PORT JID_A PASSWORD_A JID_B PASSWORD_B [--timeout 15]
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import bare, Client, run, say, StepFailed, two_accounts_parser  # noqa: E402


async def main(args):
    t = args.timeout
    a_bare = bare(args.jid_a)
    tag = os.urandom(4).hex()
    a = Client("A", a_bare + "/phone", args.password_a, args.host, args.port, "SCRAM-SHA-256")
    a.x.register_plugin("xep_0352")
    b = Client("B", args.jid_b, args.password_b, args.host, args.port, "SCRAM-SHA-256")
    await a.login("1 login A", t)
    await b.login("2 login B", t)
    a_full = a.x.boundjid.full

    def from_b(s):
        return s["from"].bare == bare(args.jid_b)

    step = "3 A inactive, B changes presence five times"
    if not a.x.plugin["xep_0352"].enabled:
        raise StepFailed(f"{step}: the server did not offer <csi/>")
    a.x.plugin["xep_0352"].send_inactive()
    await asyncio.sleep(0.5)
    for i in range(5):
        b.x.send_presence(pto=a_full, pstatus=f"status {i} {tag}", pshow="away")
    await asyncio.sleep(1.5)
    if a.take("presence", from_b):
        raise StepFailed(f"{step}: A received B's presence while inactive")
    say(f"{step}: ok — nothing reached A")

    step = "4 a message with a body flushes"
    b.x.send_message(mto=a_full, mbody=f"wake up {tag}", mtype="chat")
    await a.wait_stanza(step, "message", lambda s: s["body"] == f"wake up {tag}", t, "B's message")
    await asyncio.sleep(0.5)
    presences = [s for k, s in a.inbox if k == "presence" and from_b(s)]
    if [p["status"] for p in presences] != [f"status 4 {tag}"]:
        raise StepFailed(f"{step}: expected only B's latest presence, got {[p['status'] for p in presences]}")
    say(f"{step}: ok — the message and B's latest presence only")

    step = "5 active again"
    a.x.plugin["xep_0352"].send_active()
    await asyncio.sleep(0.5)
    b.x.send_presence(pto=a_full, pstatus=f"back {tag}")
    await a.wait_stanza(step, "presence", lambda s: from_b(s) and s["status"] == f"back {tag}", t, "B's presence")
    say(f"{step}: ok")
    for c in (a, b):
        await c.logout("6 logout", t)


if __name__ == "__main__":
    p = two_accounts_parser(__doc__)
    p.add_argument("--timeout", type=float, default=15.0)
    arguments = p.parse_args()
    run(lambda: main(arguments))
