#!/usr/bin/python3
"""Log in once (STARTTLS, SCRAM-SHA-256), send initial presence, stay two seconds, log out.

    /usr/bin/python3 login_once.py HOST PORT FULL_JID PASSWORD
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, run_with_account  # noqa: E402


async def main(args):
    client = Client("login", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    await client.login("1 login", 15)
    await asyncio.sleep(2)
    await client.logout("2 logout", 15)


if __name__ == "__main__":
    run_with_account(main, __doc__)
