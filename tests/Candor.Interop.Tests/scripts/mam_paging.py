#!/usr/bin/python3
"""slixmpp's XEP-0313 plugin against the archive: page through it both ways and filter it.

    /usr/bin/python3 mam_paging.py HOST PORT DOMAIN PASSWORD_PREFIX [--count 60] [--page 25] [--timeout 20]

Accounts alice, bob and carol @DOMAIN (password PASSWORD_PREFIX + name) must exist. alice sends COUNT
messages to bob and carol sends 5; then bob, with xep_0313's iterate(), pages forward (RSM after) and
backward (RSM before) through his whole archive with pages of PAGE, filters by 'with' (bare and full JID) and by start/end time,
and checks every result against what was sent, in order.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, run, say  # noqa: E402

from slixmpp import JID  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("domain")
    p.add_argument("password_prefix")
    p.add_argument("--count", type=int, default=60)
    p.add_argument("--page", type=int, default=25)
    p.add_argument("--timeout", type=float, default=20.0)
    return p.parse_args()


def forwarded(result):
    fwd = result["mam_result"]["forwarded"]
    return fwd["stanza"], fwd["delay"]["stamp"]


async def collect(client, step, **query):
    items = []
    try:
        async for message in client.x["xep_0313"].iterate(**query):
            stanza, stamp = forwarded(message)
            items.append((message["mam_result"]["id"], str(stanza["body"]), stamp, stanza["from"].bare))
    except Exception as e:  # noqa: BLE001 - report any failure as the step's failure
        raise StepFailed(f"{step}: query failed: {e!r}") from e
    say(f"{step}: {len(items)} results")
    return items


def expect(step, got, wanted):
    if got != wanted:
        raise StepFailed(f"{step}: got {len(got)} bodies {got[:3]}...{got[-3:]}, "
                         f"wanted {len(wanted)} {wanted[:3]}...{wanted[-3:]}")
    say(f"{step}: ok")


async def main(args):
    clients = {}
    for name in ("alice", "bob", "carol"):
        c = Client(name, f"{name}@{args.domain}", args.password_prefix + name, args.host, args.port, "SCRAM-SHA-256")
        c.x.register_plugin("xep_0313")
        await c.login(f"1 login {name}", args.timeout)
        clients[name] = c
    alice, bob, carol = clients["alice"], clients["bob"], clients["carol"]

    sent = [f"mam {i:03d}" for i in range(1, args.count + 1)]
    from_carol = [f"carol {i}" for i in range(1, 6)]
    # One sender after the other, so that the archive's order is the order they were sent in.
    for sender, bodies in ((alice, sent), (carol, from_carol)):
        for body in bodies:
            sender.send_message(bob.x.boundjid.bare, body)
        for body in bodies:
            await bob.wait_stanza("2 bob receives", "message", lambda s, b=body: s["body"] == b, args.timeout, body)
    say(f"2 bob received {len(sent) + len(from_carol)} messages")
    everything = sent + from_carol

    forward = await collect(bob, "3 forward", rsm={"max": args.page})
    expect("3 forward", [i[1] for i in forward], everything)
    if len({i[0] for i in forward}) != len(forward):
        raise StepFailed("3 forward: archive ids are not unique")

    backward = await collect(bob, "4 backward", reverse=True, rsm={"max": args.page})
    expect("4 backward", [i[1] for i in backward], list(reversed(everything)))

    with_carol = await collect(bob, "5 with carol", with_jid=JID(carol.x.boundjid.bare), rsm={"max": 2})
    expect("5 with carol", [i[1] for i in with_carol], from_carol)
    if any(i[3] != carol.x.boundjid.bare for i in with_carol):
        raise StepFailed("5 with carol: a result is not from carol")

    # XEP-0313 §4.1.1: a full JID matches only the messages exchanged with that resource.
    carol_full = carol.x.boundjid.full
    with_resource = await collect(bob, "5b with carol's full JID", with_jid=JID(carol_full), rsm={"max": 2})
    expect("5b with carol's full JID", [i[1] for i in with_resource], from_carol)
    other_resource = await collect(bob, "5c with another resource of carol", with_jid=JID(carol.x.boundjid.bare + "/elsewhere"))
    expect("5c with another resource of carol", [i[1] for i in other_resource], [])

    middle = forward[len(forward) // 2][2]
    late = await collect(bob, "6 start", start=middle, rsm={"max": args.page})
    expect("6 start", [i[1] for i in late], [i[1] for i in forward if i[2] >= middle])
    early = await collect(bob, "7 end", end=middle, rsm={"max": args.page})
    expect("7 end", [i[1] for i in early], [i[1] for i in forward if i[2] <= middle])

    alices = await collect(alice, "8 alice's own archive", with_jid=JID(bob.x.boundjid.bare), rsm={"max": 50})
    expect("8 alice's own archive", [i[1] for i in alices], sent)

    for c in (alice, bob, carol):
        await c.logout(f"9 logout {c.name}", args.timeout)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
