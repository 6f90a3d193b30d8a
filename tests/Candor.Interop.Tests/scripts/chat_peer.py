#!/usr/bin/python3
"""A slixmpp contact for the `candor chat` test: befriends PEER, says something, waits for the answer.

    /usr/bin/python3 chat_peer.py HOST PORT JID PASSWORD PEER --say TEXT --expect TEXT [--timeout 60]

Prints "READY <full jid>" once logged in. When PEER asks to subscribe, approves and asks back. Once PEER is
seen online, sends TEXT as a chat message and prints "SENT". Then waits for a chat message from PEER whose body
is exactly --expect, prints "RECEIVED <json>", and exits 0.
"""

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("jid")
    p.add_argument("password")
    p.add_argument("peer")
    p.add_argument("--say", required=True)
    p.add_argument("--expect", required=True)
    p.add_argument("--mechanism", default="SCRAM-SHA-256")
    p.add_argument("--timeout", type=float, default=60.0)
    return p.parse_args()


async def main(args):
    c = Client("peer", args.jid, args.password, args.host, args.port, args.mechanism)
    await c.login("1 login", 15)
    print(f"READY {c.x.boundjid.full}", flush=True)
    peer = bare(args.peer)

    await c.wait_stanza("2 subscription request", "presence",
                        lambda s: s["type"] == "subscribe" and s["from"].bare == peer, args.timeout,
                        f"a subscription request from {peer}")
    c.send_presence(peer, "subscribed")
    c.send_presence(peer, "subscribe")
    say(f"2 subscription request: ok — approved {peer} and asked back")

    await c.wait_stanza("3 peer online", "presence",
                        lambda s: s["type"] in ("", "available") and s["from"].bare == peer, args.timeout,
                        f"available presence from {peer}")
    c.send_message(peer, args.say)
    print("SENT", flush=True)

    m = await c.wait_stanza("4 answer", "message",
                            lambda s: s["type"] != "error" and s["from"].bare == peer and bool(s["body"]),
                            args.timeout, f"a message from {peer}")
    print("RECEIVED " + json.dumps({"from": str(m["from"]), "type": m["type"], "body": m["body"],
                                    "receipt": m.xml.find("{urn:xmpp:receipts}request") is not None},
                                   ensure_ascii=False), flush=True)
    if m["body"] != args.expect:
        raise StepFailed(f"4 answer: body {m['body']!r} is not the expected {args.expect!r}")
    await c.logout("5 log out", 15)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
