#!/usr/bin/python3
"""Blocking Command (XEP-0191) with slixmpp's own xep_0191 plugin: A blocks B, B's message is
answered with service-unavailable and never reaches A, A's message to B is refused with
not-acceptable and <blocked/>, A's other resource gets the block push; then A unblocks B and
B's message arrives.

    /usr/bin/python3 blocking.py HOST PORT JID_A PASSWORD_A JID_B PASSWORD_B [--timeout 15]
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import bare, Client, run, say, StepFailed, two_accounts_parser  # noqa: E402


def blocking_client(name, jid, password, args):
    client = Client(name, jid, password, args.host, args.port, "SCRAM-SHA-256")
    client.x.register_plugin("xep_0191")
    for event in ("blocked", "unblocked"):
        client.x.add_event_handler(event, lambda iq, event=event: client._record(event, iq))
    return client


async def main(args):
    t = args.timeout
    a_bare, b_bare = bare(args.jid_a), bare(args.jid_b)
    tag = os.urandom(4).hex()
    a = blocking_client("A", a_bare + "/phone", args.password_a, args)
    a2 = blocking_client("A2", a_bare + "/laptop", args.password_a, args)
    b = Client("B", args.jid_b, args.password_b, args.host, args.port, "SCRAM-SHA-256")
    for step, c in (("1 login A", a), ("2 login A2", a2), ("3 login B", b)):
        await c.login(step, t)

    step = "4 blocklist is empty"
    for c in (a, a2):
        result = await c.x.plugin["xep_0191"].get_blocked(timeout=t)
        if result["blocklist"]["items"]:
            raise StepFailed(f"{step}: {c.name} got {result}")
    say(f"{step}: ok")

    step = "5 A blocks B"
    await a.x.plugin["xep_0191"].block([b_bare], timeout=t)
    push = await a2.wait_stanza(step, "blocked", lambda iq: True, t, "the block push")
    if b_bare not in {str(j) for j in push["block"]["items"]}:
        raise StepFailed(f"{step}: push without B: {push}")
    result = await a.x.plugin["xep_0191"].get_blocked(timeout=t)
    if {str(j) for j in result["blocklist"]["items"]} != {b_bare}:
        raise StepFailed(f"{step}: blocklist is {result}")
    say(f"{step}: ok — pushed to A2 and listed")

    step = "6 B writes to A"
    text = f"blocked {tag}"
    b.x.send_message(mto=a_bare, mbody=text, mtype="chat")
    err = await b.wait_stanza(step, "message", lambda s: s["type"] == "error", t, "an error")
    if err["error"]["condition"] != "service-unavailable":
        raise StepFailed(f"{step}: expected service-unavailable, got {err}")
    await asyncio.sleep(0.5)
    for c in (a, a2):
        if c.take("message", lambda s: s["body"] == text):
            raise StepFailed(f"{step}: {c.name} received a message from a blocked contact")
    say(f"{step}: ok — service-unavailable, nothing delivered")

    step = "7 A writes to B"
    a.x.send_message(mto=b_bare, mbody=f"to the blocked {tag}", mtype="chat")
    err = await a.wait_stanza(step, "message", lambda s: s["type"] == "error", t, "an error")
    if err["error"]["condition"] != "not-acceptable" or err.xml.find(".//{urn:xmpp:blocking:errors}blocked") is None:
        raise StepFailed(f"{step}: expected not-acceptable with <blocked/>, got {err}")
    say(f"{step}: ok — not-acceptable with <blocked/>")

    step = "8 A unblocks B"
    await a.x.plugin["xep_0191"].unblock([b_bare], timeout=t)
    await a2.wait_stanza(step, "unblocked", lambda iq: True, t, "the unblock push")
    text = f"unblocked {tag}"
    b.x.send_message(mto=a_bare + "/phone", mbody=text, mtype="chat")
    await a.wait_stanza(step, "message", lambda s: s["body"] == text, t, "B's message")
    say(f"{step}: ok — B's message arrives again")
    for c in (a, a2, b):
        await c.logout("9 logout", t)


if __name__ == "__main__":
    p = two_accounts_parser(__doc__)
    p.add_argument("--timeout", type=float, default=15.0)
    arguments = p.parse_args()
    run(lambda: main(arguments))
