#!/usr/bin/python3
"""An account imported from a XEP-0227 file logs in with its old password by the given SASL mechanism and finds its
contact in its roster, with the same name and group.

    /usr/bin/python3 imported_account.py HOST PORT JID PASSWORD --mechanism M --contact JID --name NAME --group GROUP
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, run, say  # noqa: E402


async def main(args):
    client = Client("imported", args.jid, args.password, args.host, args.port, args.mechanism)
    await client.login("1 login", 20)
    roster = client.x.client_roster
    if args.contact not in roster:
        raise StepFailed(f"2 roster: {args.contact} is not in the roster {list(roster.keys())}")
    item = roster[args.contact]
    if item["name"] != args.name or list(item["groups"]) != [args.group] or item["subscription"] != "both":
        raise StepFailed(f"2 roster: {args.contact} is {item['name']!r} in {list(item['groups'])}, "
                         f"subscription {item['subscription']}")
    say(f"2 ok — {args.contact} ({item['name']}, group {args.group}, subscription both) is in the roster")
    await client.logout("3 logout", 15)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("jid")
    p.add_argument("password")
    p.add_argument("--mechanism", required=True)
    p.add_argument("--contact", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--group", required=True)
    arguments = p.parse_args()
    run(lambda: main(arguments))
