#!/usr/bin/python3
"""Message Carbons (XEP-0280) with slixmpp's own xep_0280 plugin: two resources of one account
enable carbons; a message the first sends shows on the second as a sent carbon, and a message
the first receives shows on the second as a received carbon.

    /usr/bin/python3 carbons.py HOST PORT JID_A PASSWORD_A JID_B PASSWORD_B [--timeout 15]

JID_A is a bare JID (the script logs in as JID_A/phone and JID_A/laptop).
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import bare, Client, run, say, StepFailed, two_accounts_parser  # noqa: E402


def carbons_client(name, jid, password, args):
    client = Client(name, jid, password, args.host, args.port, "SCRAM-SHA-256")
    client.x.register_plugin("xep_0280")
    for event in ("carbon_sent", "carbon_received"):
        client.x.add_event_handler(event, lambda msg, event=event: client._record(event, msg))
    return client


async def main(args):
    t = args.timeout
    a_bare, b_bare = bare(args.jid_a), bare(args.jid_b)
    tag = os.urandom(4).hex()
    phone = carbons_client("phone", a_bare + "/phone", args.password_a, args)
    laptop = carbons_client("laptop", a_bare + "/laptop", args.password_a, args)
    bob = Client("bob", args.jid_b, args.password_b, args.host, args.port, "SCRAM-SHA-256")

    for step, c in (("1 login phone", phone), ("2 login laptop", laptop), ("3 login bob", bob)):
        await c.login(step, t)

    step = "4 enable carbons"
    for c in (phone, laptop):
        try:
            await c.x.plugin["xep_0280"].enable(timeout=t)
        except Exception as e:  # noqa: BLE001 - any failure is this step's failure
            raise StepFailed(f"{step}: {c.name} could not enable carbons: {e!r}") from e
    say(f"{step}: ok")

    step = "5 sent carbon"
    text = f"from the phone {tag}"
    phone.x.send_message(mto=b_bare, mbody=text, mtype="chat")
    await bob.wait_stanza(step, "message", lambda s: s["body"] == text, t, "the phone's message")
    sent = await laptop.wait_stanza(step, "carbon_sent",
                                    lambda s: s["carbon_sent"]["body"] == text, t, "a sent carbon")
    if sent["from"] != a_bare or sent["carbon_sent"]["from"].full != a_bare + "/phone":
        raise StepFailed(f"{step}: unexpected carbon {sent}")
    say(f"{step}: ok — the laptop saw what the phone sent")

    step = "6 received carbon"
    text = f"to the phone {tag}"
    bob.x.send_message(mto=a_bare + "/phone", mbody=text, mtype="chat")
    await phone.wait_stanza(step, "message", lambda s: s["body"] == text, t, "bob's message")
    await laptop.wait_stanza(step, "carbon_received",
                             lambda s: s["carbon_received"]["body"] == text, t, "a received carbon")
    say(f"{step}: ok — the laptop saw what the phone received")

    step = "7 no carbon to the sender itself"
    if phone.take("carbon_sent", lambda s: True) or phone.take("carbon_received", lambda s: True):
        raise StepFailed(f"{step}: the phone got a carbon of its own conversation")
    say(f"{step}: ok")
    for c in (phone, laptop, bob):
        await c.logout("8 logout", t)


if __name__ == "__main__":
    p = two_accounts_parser(__doc__)
    p.add_argument("--timeout", type=float, default=15.0)
    arguments = p.parse_args()
    run(lambda: main(arguments))
