#!/usr/bin/python3
"""Log in, send one chat message, wait a moment for an error reply, and log out.

    /usr/bin/python3 send_one.py HOST PORT JID PASSWORD TO BODY
        [--mechanism SCRAM-SHA-256] [--login-timeout 15] [--error-wait 2]

Prints "SENT <json>" once the message is written; exits 1 if the server answers it with an error
(promise 1: nothing is dropped silently, so a refusal would show here).
"""

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, describe, run, say  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("jid")
    p.add_argument("password")
    p.add_argument("to")
    p.add_argument("body")
    p.add_argument("--mechanism", default="SCRAM-SHA-256")
    p.add_argument("--login-timeout", type=float, default=15.0)
    p.add_argument("--error-wait", type=float, default=2.0, help="seconds to wait for an error reply")
    return p.parse_args()


async def main(args):
    c = Client("sender", args.jid, args.password, args.host, args.port, args.mechanism)
    await c.login("1 login", args.login_timeout)
    c.send_message(args.to, args.body)
    print("SENT " + json.dumps({"to": args.to, "body": args.body}, ensure_ascii=False), flush=True)
    step = "2 no error reply"
    try:
        error = await c.wait_stanza(step, "message", lambda s: s["type"] == "error", args.error_wait)
    except StepFailed:
        error = None  # the wait timed out: no error, as it should be
    if error is not None:
        raise StepFailed(f"{step}: the server refused the message: {describe(error)}")
    say(f"{step}: ok")
    await c.logout("3 log out", args.login_timeout)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
