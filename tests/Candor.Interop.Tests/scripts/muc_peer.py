#!/usr/bin/python3
"""A slixmpp occupant for tests with other clients: creates ROOM (and, with --club, a members-only room),
prints READY, waits until NICK_FROM is in ROOM, says --say there and waits for --expect from NICK_FROM.

    /usr/bin/python3 muc_peer.py HOST PORT JID PASSWORD ROOM NICK --say TEXT --expect TEXT --from NICK_FROM
        [--club ROOM2] [--timeout 60]

Prints one line per step and RECEIVED when the expected message came; exits 0 on success, 1 naming the failed step.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, run, say  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("host", "port", "jid", "password", "room", "nick"):
        p.add_argument(name, type=int if name == "port" else str)
    p.add_argument("--say", required=True)
    p.add_argument("--expect", required=True)
    p.add_argument("--from", dest="from_nick", required=True)
    p.add_argument("--club", help="also create this room, members-only and persistent")
    p.add_argument("--timeout", type=float, default=60.0)
    return p.parse_args()


async def create(c, muc, room, nick, timeout, members_only):
    pres, _s, _o, _h = await muc.join_muc_wait(room, nick, timeout=timeout)
    if 201 not in pres["muc"]["status_codes"]:
        raise StepFailed(f"{room} already existed")
    form = await muc.get_room_config(room, timeout=timeout)
    # The members-only room is persistent: it stays after this peer has gone.
    flag = "1" if members_only else "0"
    form.set_values({"muc#roomconfig_membersonly": flag, "muc#roomconfig_persistentroom": flag})
    await muc.set_room_config(room, form, timeout=timeout)


async def main(args):
    t = args.timeout
    c = Client("peer", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    c.x.register_plugin("xep_0045")
    await c.login("1 login", 30)
    muc = c.x.plugin["xep_0045"]
    await create(c, muc, args.room, args.nick, 30, False)
    if args.club:
        await create(c, muc, args.club, args.nick, 30, True)
    say("READY")

    step = f"2 wait for {args.from_nick} in {args.room}"
    await c.wait_stanza(step, "presence", lambda s: s["from"].bare == args.room and s["from"].resource == args.from_nick
                        and s["type"] != "unavailable", t, f"{args.from_nick}'s presence")
    say(f"{step}: ok")
    c.x.send_message(mto=args.room, mbody=args.say, mtype="groupchat")

    step = f"3 wait for '{args.expect}' from {args.from_nick}"
    await c.wait_stanza(step, "message", lambda s: s["type"] == "groupchat" and s["from"].resource == args.from_nick
                        and s["body"] == args.expect, t, "the expected message")
    say("RECEIVED")


if __name__ == "__main__":
    run(lambda: main(parse_args()))
