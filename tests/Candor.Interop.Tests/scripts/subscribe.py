#!/usr/bin/python3
"""Asks PEER to let JID see its presence and waits until PEER approves (so JID may read PEER's PEP nodes whose
access model is 'presence', as profanity's OMEMO nodes are).

    /usr/bin/python3 subscribe.py HOST PORT JID PASSWORD PEER [--timeout 60]

Prints "REQUESTED" once the request is sent, "APPROVED" when PEER answers 'subscribed'; exits 0 then.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, account_arguments, bare, run, say  # noqa: E402


async def main(args):
    c = Client("subscriber", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    await c.login("1 log in", 15)
    peer = bare(args.peer)
    c.send_presence(peer, "subscribe")
    say("REQUESTED")
    await c.wait_stanza("2 approval", "presence", lambda s: s["type"] == "subscribed" and s["from"].bare == peer,
                        args.timeout, f"'subscribed' from {peer}")
    say("APPROVED")
    await c.logout("3 log out", 15)


def parse_args():
    p = account_arguments(__doc__)
    p.add_argument("peer")
    p.add_argument("--timeout", type=float, default=60.0)
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
