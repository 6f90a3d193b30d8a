#!/usr/bin/python3
"""A slixmpp user sends a chat message to an address on another server and expects the stanza error that server
returns over federation (RFC 6120 8.3: a message of type error, from the address written to, naming the condition).

    /usr/bin/python3 federation_bounce.py HOST PORT JID PASSWORD TO CONDITION [--timeout 30]

Prints one line per step; exits 0 on success, 1 naming the failed step.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, account_arguments, run, say  # noqa: E402


async def main(args):
    t = args.timeout
    c = Client("A", args.jid, args.password, args.host, args.port, None)
    await c.login("1 login", t)
    step = f"2 message to {args.to}"
    body = f"is anyone there {os.urandom(4).hex()}"
    c.send_message(args.to, body)
    error = await c.wait_stanza(step, "message", lambda s: s["type"] == "error" and s["from"].bare == args.to, t,
                                f"an error message from {args.to}")
    condition = error["error"]["condition"]
    if condition != args.condition:
        raise StepFailed(f"{step}: the error names {condition!r}, expected {args.condition!r}: {error}")
    say(f"{step}: ok — {error['error']['type']} {condition} {error['error']['text']!r}")
    await c.logout("3 log out", t)


if __name__ == "__main__":
    p = account_arguments(__doc__)
    p.add_argument("to")
    p.add_argument("condition")
    p.add_argument("--timeout", type=float, default=30.0)
    arguments = p.parse_args()
    run(lambda: main(arguments))
