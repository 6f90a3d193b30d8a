#!/usr/bin/python3
"""Creates ROOM as an OMEMO group chat needs it (XEP-0384 §6.1): members-only, non-anonymous (whois anyone),
persistent, with the given JIDs as members; then leaves it (the room stays).

    /usr/bin/python3 omemo_room.py HOST PORT OWNER_JID PASSWORD ROOM MEMBER_JID... [--timeout 30]

Prints READY once the room is configured; exits 0 on success, 1 naming the failed step.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, account_arguments, StepFailed, run, say  # noqa: E402


async def main(args):
    t = args.timeout
    c = Client("owner", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    c.x.register_plugin("xep_0045")
    await c.login("1 log in", t)
    muc = c.x.plugin["xep_0045"]
    pres, _s, _o, _h = await muc.join_muc_wait(args.room, "owner", timeout=t)
    if 201 not in pres["muc"]["status_codes"]:
        raise StepFailed(f"2 create: {args.room} already existed")
    form = await muc.get_room_config(args.room, timeout=t)
    form.set_values({"muc#roomconfig_membersonly": "1", "muc#roomconfig_whois": "anyone", "muc#roomconfig_persistentroom": "1"})
    await muc.set_room_config(args.room, form, timeout=t)
    for member in args.members:
        await muc.set_affiliation(args.room, "member", jid=member, timeout=t)
    muc.leave_muc(args.room, "owner")
    say("READY")
    await c.logout("3 log out", t)


def parse_args():
    p = account_arguments(__doc__)
    p.add_argument("room")
    p.add_argument("members", nargs="+")
    p.add_argument("--timeout", type=float, default=30.0)
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
