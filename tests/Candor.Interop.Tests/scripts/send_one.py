#!/usr/bin/python3
"""Log in, send one chat message, log out.

    /usr/bin/python3 send_one.py HOST PORT JID PASSWORD TO TEXT [--mechanism SCRAM-SHA-256]
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, run, say  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("host", "port", "jid", "password", "to", "text"):
        p.add_argument(name)
    p.add_argument("--mechanism", default="SCRAM-SHA-256")
    return p.parse_args()


async def main(args):
    c = Client("sender", args.jid, args.password, args.host, int(args.port), args.mechanism)
    c.x.register_plugin("xep_0199")
    await c.login("1 login", 15)
    c.send_message(args.to, args.text)
    # A ping round trip: the server has handled the message once it answers.
    await c.x.plugin["xep_0199"].ping(jid=c.x.boundjid.domain, timeout=15)
    say(f"2 sent {args.text!r} to {args.to}")
    await c.logout("3 log out", 15)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
