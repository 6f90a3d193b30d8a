#!/usr/bin/python3
"""Log in, send initial presence and wait for it to come back to this very resource (RFC 6121 §4.2.2), as
slixmpp's XEP-0153 vCard-avatar plugin does; then change the presence and wait for that too (§4.4.2).

    /usr/bin/python3 own_presence.py HOST PORT FULL_JID PASSWORD
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, run_with_account, say  # noqa: E402


async def main(args):
    client = Client("self", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    await client.login("1 login and initial presence", 20)
    me = client.x.boundjid.full

    def own(show):
        # slixmpp reports an available presence's <show/> as its type: compare the show, exclude the other types.
        return lambda p: str(p["from"]) == me and p["show"] == show and p["type"] not in (
            "unavailable", "error", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe")
    await client.wait_stanza("2 own initial presence", "presence", own(""), 10, f"presence from {me}")
    say(f"2 ok — initial presence came back to {me}")
    client.x.send_presence(pshow="away", pstatus="coffee")
    await client.wait_stanza("3 own presence update", "presence", own("away"), 10, f"away presence from {me}")
    say("3 ok — the update came back too")
    await client.logout("4 logout", 15)


if __name__ == "__main__":
    run_with_account(main, __doc__)
