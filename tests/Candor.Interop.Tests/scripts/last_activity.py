#!/usr/bin/python3
"""XEP-0012 Last Activity of an account, asked by slixmpp clients (issue 23.3).

    /usr/bin/python3 last_activity.py HOST PORT JID PASSWORD CONTACT_JID CONTACT_PASSWORD STRANGER_JID STRANGER_PASSWORD [--timeout 15]

Steps: JID approves CONTACT's subscription; CONTACT asks JID's last activity while JID is online (0 seconds);
JID logs out; after 2 seconds CONTACT asks again (at least 1 second since the logout); STRANGER, with no
subscription, asks and gets <forbidden/>. Exits 0 on success, 1 naming the failed step.
"""

import argparse
import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say  # noqa: E402
from slixmpp.exceptions import IqError  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("host", "port", "jid", "password", "contact_jid", "contact_password", "stranger_jid", "stranger_password"):
        p.add_argument(name, type=int if name == "port" else str)
    p.add_argument("--timeout", type=float, default=15.0)
    return p.parse_args()


async def main(args):
    t = args.timeout
    user, contact_bare = bare(args.jid), bare(args.contact_jid)

    def client(name, jid, password):
        c = Client(name, jid, password, args.host, args.port, "SCRAM-SHA-256")
        c.x.register_plugin("xep_0012")
        return c

    async def last(c, step):
        try:
            result = await c.x["xep_0012"].get_last_activity(user, timeout=t)
        except IqError as e:
            return e.iq["error"]["condition"]
        except Exception as e:  # noqa: BLE001
            raise StepFailed(f"{step}: {e!r}") from e
        return int(result["last_activity"]["seconds"])

    step = "1 the user approves the contact's subscription"
    u = client("user", args.jid, args.password)
    c = client("contact", args.contact_jid, args.contact_password)
    await u.login(step, t)
    await c.login(step, t)
    c.send_presence(user, "subscribe")
    await u.wait_stanza(step, "presence", lambda s: bare(str(s["from"])) == contact_bare and s["type"] == "subscribe", t, "the request")
    u.send_presence(contact_bare, "subscribed")
    await c.wait_stanza(step, "presence", lambda s: bare(str(s["from"])) == user and s["type"] == "subscribed", t, "the approval")
    say(f"{step}: ok")

    step = "2 the contact asks while the user is online: 0 seconds"
    seconds = await last(c, step)
    if seconds != 0:
        raise StepFailed(f"{step}: got {seconds!r}")
    say(f"{step}: ok")

    step = "3 the user logs out; 2 seconds later the contact learns how long ago"
    await u.logout(step, t)
    await asyncio.sleep(2.0)
    seconds = await last(c, step)
    if not isinstance(seconds, int) or not 1 <= seconds <= 60:
        raise StepFailed(f"{step}: got {seconds!r}")
    say(f"{step}: ok — {seconds} s")

    step = "4 a stranger is forbidden"
    s = client("stranger", args.stranger_jid, args.stranger_password)
    await s.login(step, t)
    answer = await last(s, step)
    if answer != "forbidden":
        raise StepFailed(f"{step}: got {answer!r}")
    say(f"{step}: ok")
    await c.logout("5 logout", t)
    await s.logout("5 logout", t)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
