#!/usr/bin/python3
"""Log in once (STARTTLS, SCRAM-SHA-256), send initial presence, stay two seconds, log out.

    /usr/bin/python3 login_once.py HOST PORT FULL_JID PASSWORD
"""

import argparse
import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, run  # noqa: E402


async def main(args):
    client = Client("login", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    await client.login("1 login", 15)
    await asyncio.sleep(2)
    await client.logout("2 logout", 15)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("jid")
    p.add_argument("password")
    arguments = p.parse_args()
    run(lambda: main(arguments))
