#!/usr/bin/python3
"""Two slixmpp users on two federated servers: each logs in to its own server, they subscribe to each other, see
each other's presence (available, a status change, unavailable), exchange chat messages both ways, and ask each
other's server for its identity (disco#info) and each other's client for a ping (XEP-0199), so every stanza kind
crosses the s2s link in both directions.

    /usr/bin/python3 federation_pair.py HOST_A PORT_A JID_A PASSWORD_A HOST_B PORT_B JID_B PASSWORD_B [--timeout 30]

Both clients negotiate STARTTLS (any certificate accepted). Prints one line per step; exits 0 on success, 1 naming the
failed step.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import exchange_messages, Client, StepFailed, bare, run, say  # noqa: E402

AVAILABLE = ("available", "chat", "away", "xa", "dnd")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for side in ("a", "b"):
        p.add_argument(f"host_{side}")
        p.add_argument(f"port_{side}", type=int)
        p.add_argument(f"jid_{side}")
        p.add_argument(f"password_{side}")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds allowed for each step (federation connects on demand)")
    return p.parse_args()


async def main(args):
    t = args.timeout
    a_bare, b_bare = bare(args.jid_a), bare(args.jid_b)
    tag = os.urandom(4).hex()
    a = Client("A", args.jid_a, args.password_a, args.host_a, args.port_a, None)
    b = Client("B", args.jid_b, args.password_b, args.host_b, args.port_b, None)
    for c in (a, b):
        c.x.register_plugin("xep_0030")
        c.x.register_plugin("xep_0199")

    def from_(jid_bare, ptype):
        return lambda s: s["from"].bare == jid_bare and s["type"] == ptype

    def available_from(jid_bare, status=None):
        return lambda s: s["from"].bare == jid_bare and s["type"] in AVAILABLE and (status is None or s["status"] == status)

    await a.login("1 login A", t)
    await b.login("2 login B", t)

    async def subscribe(step, asker, asker_bare, owner, owner_bare):
        asker.send_presence(owner_bare, "subscribe")
        await owner.wait_stanza(step, "presence", from_(asker_bare, "subscribe"), t, f"{asker.name}'s subscription request")
        owner.send_presence(asker_bare, "subscribed")
        await asker.wait_stanza(step, "presence", from_(owner_bare, "subscribed"), t, f"{owner.name}'s approval (subscribed)")
        # RFC 6121 4.3.2: once subscribed, the owner's server sends the owner's current presence to the asker.
        p = await asker.wait_stanza(step, "presence", available_from(owner_bare), t, f"available presence from {owner.name}")
        say(f"{step}: ok — {owner.name} approved, {asker.name} sees {p['from']} available")

    await subscribe("3 A subscribes to B", a, a_bare, b, b_bare)
    await subscribe("4 B subscribes to A", b, b_bare, a, a_bare)

    step = "5 B's status change reaches A"
    status = f"away on the peer {tag}"
    b.x.send_presence(pshow="away", pstatus=status)
    p = await a.wait_stanza(step, "presence", available_from(b_bare, status), t, f"presence from B with status {status!r}")
    say(f"{step}: ok — show {p['show']!r}, status {p['status']!r}")

    step = "6 A's status change reaches B"
    status = f"busy at home {tag}"
    a.x.send_presence(pshow="dnd", pstatus=status)
    p = await b.wait_stanza(step, "presence", available_from(a_bare, status), t, f"presence from A with status {status!r}")
    say(f"{step}: ok — show {p['show']!r}, status {p['status']!r}")

    await exchange_messages(a, b, a_bare, b_bare, tag, t)

    async def iq(step, request):
        try:
            return await request
        except Exception as e:  # noqa: BLE001 - an error reply or a timeout is the step's failure
            raise StepFailed(f"{step}: {e!r}") from e

    for step, asker, other in (("9 A asks B's server", a, b), ("10 B asks A's server", b, a)):
        domain = other.x.boundjid.domain
        info = await iq(step, asker.x["xep_0030"].get_info(jid=domain, timeout=t))
        identities = info["disco_info"]["identities"]
        if not any(category == "server" for category, _, _, _ in identities):
            raise StepFailed(f"{step}: disco#info of {domain} names no server identity: {info}")
        await iq(step, asker.x["xep_0199"].ping(jid=other.x.boundjid.full, timeout=t))
        say(f"{step}: ok — {domain} is {sorted(identities)}, {other.name}'s client answered a ping")

    step = "11 B goes offline, A sees it"
    await b.logout(step, t)
    await a.wait_stanza(step, "presence", from_(b_bare, "unavailable"), t, "unavailable presence from B")
    say(f"{step}: ok")

    errors = [s for c in (a, b) for k, s in c.inbox if k in ("message", "presence") and s["type"] == "error"]
    if errors:
        raise StepFailed(f"12 no errors: unexpected error stanza: {errors[0]}")
    await a.logout("12 log out", t)
    say("12 log out: ok")


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
