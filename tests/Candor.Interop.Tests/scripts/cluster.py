#!/usr/bin/python3
"""Three slixmpp sessions on three nodes of one Candor cluster: A's phone on the first node, B on the second,
A's laptop on the third. Subscription and presence across nodes, chat both ways, the laptop's login announced
to the phone, presence of B probed for the laptop, carbons of what the phone sends and receives on the laptop,
and B's logout seen by both of A's sessions.

    /usr/bin/python3 cluster.py HOST PORT1 PORT2 PORT3 JID_A PASSWORD_A JID_B PASSWORD_B [--timeout 15]

Prints one line per step; exits 0 on success, 1 naming the failed step.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say  # noqa: E402

NOTICE_NS = "urn:xmpp:candor:login:0"


def carbons_client(name, jid, password, host, port):
    client = Client(name, jid, password, host, port, "SCRAM-SHA-256")
    client.x.register_plugin("xep_0280")
    for event in ("carbon_sent", "carbon_received"):
        client.x.add_event_handler(event, lambda msg, event=event: client._record(event, msg))
    return client


async def main(args):
    t = args.timeout
    a_bare, b_bare = bare(args.jid_a), bare(args.jid_b)
    tag = os.urandom(4).hex()

    def from_(jid_bare, ptype=None):
        return lambda s: s["from"].bare == jid_bare and (ptype is None or s["type"] == ptype)

    def available_from(jid):
        return lambda s: (s["from"].full == jid or s["from"].bare == jid) and s["type"] in ("available", "chat", "away", "xa", "dnd")

    phone = carbons_client("A's phone (node 1)", a_bare + "/phone", args.password_a, args.host, args.port1)
    b = Client("B (node 2)", b_bare + "/desk", args.password_b, args.host, args.port2, "SCRAM-SHA-256")

    await phone.login("1 login A's phone on node 1", t)
    await b.login("2 login B on node 2", t)

    step = "3 A subscribes to B across nodes"
    phone.send_presence(b_bare, "subscribe")
    await b.wait_stanza(step, "presence", from_(a_bare, "subscribe"), t, "A's subscription request")
    b.send_presence(a_bare, "subscribed")
    await phone.wait_stanza(step, "presence", from_(b_bare, "subscribed"), t, "B's approval")
    say(f"{step}: ok")

    step = "4 B subscribes to A across nodes"
    b.send_presence(a_bare, "subscribe")
    await phone.wait_stanza(step, "presence", from_(b_bare, "subscribe"), t, "B's subscription request")
    phone.send_presence(b_bare, "subscribed")
    await b.wait_stanza(step, "presence", from_(a_bare, "subscribed"), t, "A's approval")
    say(f"{step}: ok")

    step = "5 presence both ways"
    await phone.wait_stanza(step, "presence", available_from(b_bare + "/desk"), t, "B's available presence")
    await b.wait_stanza(step, "presence", available_from(a_bare + "/phone"), t, "A's available presence")
    say(f"{step}: ok")

    step = "6 chat both ways"
    body = f"hello B from node 1 {tag} — ünïcödé <&>"
    phone.send_message(b_bare, body)
    m = await b.wait_stanza(step, "message", lambda s: s["body"] == body, t, "A's message")
    if m["from"].full != a_bare + "/phone":
        raise StepFailed(f"{step}: message from {m['from']}, expected {a_bare}/phone")
    reply = f"hello A from node 2 {tag}"
    b.send_message(m["from"], reply)
    await phone.wait_stanza(step, "message", lambda s: s["body"] == reply, t, "B's reply")
    say(f"{step}: ok")

    step = "7 A's laptop logs in on node 3: announced to the phone, B's presence probed"
    laptop = carbons_client("A's laptop (node 3)", a_bare + "/laptop", args.password_a, args.host, args.port3)
    await laptop.login(step, t)
    notice = await phone.wait_stanza(step, "message", lambda s: s.xml.find(f"{{{NOTICE_NS}}}login") is not None, t, "a login notice")
    login = notice.xml.find(f"{{{NOTICE_NS}}}login")
    if login.get("jid") != a_bare + "/laptop":
        raise StepFailed(f"{step}: the notice names {login.get('jid')}, not the laptop")
    await laptop.wait_stanza(step, "presence", available_from(b_bare + "/desk"), t, "B's presence (probe)")
    await laptop.wait_stanza(step, "presence", available_from(a_bare + "/phone"), t, "the phone's presence")
    await phone.wait_stanza(step, "presence", available_from(a_bare + "/laptop"), t, "the laptop's presence")
    await b.wait_stanza(step, "presence", available_from(a_bare + "/laptop"), t, "the laptop's presence at B")
    say(f"{step}: ok — notice: {notice['body'][:60]}...")

    step = "8 carbons across nodes"
    for c in (phone, laptop):
        try:
            await c.x.plugin["xep_0280"].enable(timeout=t)
        except Exception as e:  # noqa: BLE001 - any failure is this step's failure
            raise StepFailed(f"{step}: {c.name} could not enable carbons: {e!r}") from e
    text = f"from the phone {tag}"
    phone.x.send_message(mto=b_bare, mbody=text, mtype="chat")
    await b.wait_stanza(step, "message", lambda s: s["body"] == text, t, "the phone's message")
    await laptop.wait_stanza(step, "carbon_sent", lambda s: s["carbon_sent"]["body"] == text, t, "a sent carbon")
    text = f"to the phone {tag}"
    b.x.send_message(mto=a_bare + "/phone", mbody=text, mtype="chat")
    await phone.wait_stanza(step, "message", lambda s: s["body"] == text, t, "B's message to the phone")
    await laptop.wait_stanza(step, "carbon_received", lambda s: s["carbon_received"]["body"] == text, t, "a received carbon")
    say(f"{step}: ok")

    step = "9 a message to A's bare JID reaches both nodes' sessions once"
    text = f"to both {tag}"
    b.x.send_message(mto=a_bare, mbody=text, mtype="chat")
    await phone.wait_stanza(step, "message", lambda s: s["body"] == text, t, "the message on the phone")
    await laptop.wait_stanza(step, "message", lambda s: s["body"] == text, t, "the message on the laptop")
    say(f"{step}: ok")

    step = "10 B logs out: both of A's sessions see it"
    await b.logout(step, t)
    await phone.wait_stanza(step, "presence", from_(b_bare, "unavailable"), t, "B unavailable at the phone")
    await laptop.wait_stanza(step, "presence", from_(b_bare, "unavailable"), t, "B unavailable at the laptop")
    say(f"{step}: ok")

    step = "11 nothing twice, no errors"
    for c in (phone, laptop):
        # Each expected message was taken from the inbox when it arrived: one still there came twice.
        # (A carbon also arrives as a message without a body: the wrapper.)
        twice = [str(s) for k, s in c.inbox if (k in ("carbon_sent", "carbon_received") or (k == "message" and s["body"])) and tag in str(s)]
        if twice:
            raise StepFailed(f"{step}: {c.name} got {twice} more than once")
        errors = [s for k, s in c.inbox if k == "message" and s["type"] == "error"]
        if errors:
            raise StepFailed(f"{step}: {c.name} got an error: {errors[0]}")
    say(f"{step}: ok")
    for c in (phone, laptop):
        await c.logout("12 logout", t)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port1", type=int)
    p.add_argument("port2", type=int)
    p.add_argument("port3", type=int)
    p.add_argument("jid_a")
    p.add_argument("password_a")
    p.add_argument("jid_b")
    p.add_argument("password_b")
    p.add_argument("--timeout", type=float, default=15.0)
    arguments = p.parse_args()
    run(lambda: main(arguments))
