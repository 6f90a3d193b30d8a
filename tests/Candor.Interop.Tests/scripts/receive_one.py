#!/usr/bin/python3
"""Log in, announce readiness, and wait for one chat message with a body.

    /usr/bin/python3 receive_one.py HOST PORT JID PASSWORD [--expect TEXT] [--from JID]
        [--mechanism SCRAM-SHA-256] [--login-timeout 15] [--timeout 60]

Prints "READY <full jid>" once logged in with initial presence sent, then
"RECEIVED <json>" with the message's from and body. With --expect, exits 1 unless the body
is exactly TEXT; with --from, messages from other bare JIDs are ignored. Messages without a
body (chat states, receipts) are ignored.
"""

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("jid")
    p.add_argument("password")
    p.add_argument("--expect", help="exact body the message must have")
    p.add_argument("--from", dest="sender", help="only consider messages from this bare JID")
    p.add_argument("--mechanism", default="SCRAM-SHA-256")
    p.add_argument("--login-timeout", type=float, default=15.0)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the message")
    return p.parse_args()


async def main(args):
    c = Client("receiver", args.jid, args.password, args.host, args.port, args.mechanism)
    await c.login("1 login", args.login_timeout)
    print(f"READY {c.x.boundjid.full}", flush=True)

    sender = bare(args.sender) if args.sender else None

    def wanted(s):
        if s["type"] == "error":
            return False
        if sender is not None and s["from"].bare != sender:
            return False
        return bool(s["body"])

    step = "2 receive one message"
    m = await c.wait_stanza(step, "message", wanted, args.timeout,
                            f"a message with a body from {sender or 'anyone'}")
    print("RECEIVED " + json.dumps({"from": str(m["from"]), "type": m["type"], "body": m["body"]},
                                   ensure_ascii=False), flush=True)
    if args.expect is not None and m["body"] != args.expect:
        raise StepFailed(f"{step}: body {m['body']!r} is not the expected {args.expect!r}")
    say(f"{step}: ok — {m['body']!r} from {m['from']}")
    await c.logout("3 log out", args.login_timeout)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
