#!/usr/bin/python3
"""Every login announced (Candor promise 3), checked with slixmpp against a live server.

    /usr/bin/python3 login_notices.py HOST PORT JID PASSWORD OTHER_JID OTHER_PASSWORD [--timeout 15]

JID must have no session online and no known clients. Steps: A online; B (same account, new resource)
logs in and A gets a notice naming B's resource and address; A lists clients (XEP-0494) and revokes B;
B's stream ends; B's next login is announced again; a login while no other session is online is announced
at the next login; a forged 'from' (server JID, another account) ends the forger's stream and nothing
is delivered. Exits 0 on success, 1 naming the failed step.
"""

import argparse
import asyncio
import os
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say  # noqa: E402

NOTICE_NS = "urn:xmpp:candor:login:0"
CAM_NS = "urn:xmpp:cam:0"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("jid")
    p.add_argument("password")
    p.add_argument("other_jid")
    p.add_argument("other_password")
    p.add_argument("--timeout", type=float, default=15.0)
    return p.parse_args()


def notice_of(stanza):
    return stanza.xml.find(f"{{{NOTICE_NS}}}login")


async def iq(client, step, kind, payload, timeout):
    request = client.x.make_iq(ito=None, itype=kind)
    request.append(ET.fromstring(payload))
    try:
        return await request.send(timeout=timeout)
    except Exception as e:  # noqa: BLE001
        raise StepFailed(f"{step}: iq {payload} failed: {e!r}") from e


async def expect_disconnect(client, step, timeout):
    await client._wait(step, timeout, lambda: True if any(e == "disconnected" for e, _ in client.markers) else None)


async def main(args):
    t = args.timeout
    domain = bare(args.jid).split("@")[1]
    tag = os.urandom(3).hex()

    def client(name, resource):
        return Client(name, f"{bare(args.jid)}/{resource}-{tag}", args.password, args.host, args.port, "SCRAM-SHA-256")

    step = "1 A online"
    a = client("A", "phone")
    await a.login(step, t)

    step = "2 B logs in, A is told"
    b = client("B", "laptop")
    await b.login(step, t)
    msg = await a.wait_stanza(step, "message",
                              lambda s: str(s["from"]) == domain and notice_of(s) is not None, t, "a login notice")
    n = notice_of(msg)
    if n.get("resource") != f"laptop-{tag}" or n.get("address") != "127.0.0.1" or n.get("new") != "true":
        raise StepFailed(f"{step}: notice has the wrong facts: {msg}")
    body = msg["body"]
    for fact in (f"laptop-{tag}", "127.0.0.1", "UTC", "SCRAM-SHA-256"):
        if fact not in body:
            raise StepFailed(f"{step}: notice text lacks {fact!r}: {body!r}")
    if msg["type"] != "chat":
        raise StepFailed(f"{step}: notice is not a chat message: {msg}")
    client_id = n.get("client-id")
    say(f"{step}: ok — {body}")

    step = "3 A lists clients (XEP-0494)"
    result = await iq(a, step, "get", f"<list xmlns='{CAM_NS}'/>", t)
    clients = result.xml.find(f"{{{CAM_NS}}}clients")
    ids = {c.get("id"): c.get("connected") for c in clients.findall(f"{{{CAM_NS}}}client")} if clients is not None else {}
    if ids.get(client_id) != "true":
        raise StepFailed(f"{step}: B's client {client_id} not listed as connected: {result}")
    say(f"{step}: ok — {len(ids)} clients")

    step = "4 A revokes B, B's stream ends"
    await iq(a, step, "set", f"<revoke xmlns='{CAM_NS}' id='{client_id}'/>", t)
    await expect_disconnect(b, step, t)
    say(f"{step}: ok")

    step = "5 B's next login is announced again"
    b2 = client("B again", "laptop")
    await b2.login(step, t)
    again = await a.wait_stanza(step, "message",
                                lambda s: str(s["from"]) == domain and notice_of(s) is not None, t, "a second login notice")
    if notice_of(again).get("resource") != f"laptop-{tag}":
        raise StepFailed(f"{step}: wrong notice {again}")
    say(f"{step}: ok")

    step = "6 everyone logs out"
    await b2.logout(step, t)
    await a.logout(step, t)

    step = "7 a login with nobody online is announced at the next login"
    c = client("C", "tablet")
    await c.login(step, t)
    await asyncio.sleep(1.0)
    if c.take("message", lambda s: notice_of(s) is not None):
        raise StepFailed(f"{step}: C was told of its own login")
    await c.logout(step, t)
    d = client("D", "desktop")
    await d.login(step, t)
    late = await d.wait_stanza(step, "message",
                               lambda s: str(s["from"]) == domain and notice_of(s) is not None
                               and notice_of(s).get("resource") == f"tablet-{tag}", t, "the stored notice about C")
    say(f"{step}: ok — {late['body']}")

    step = "8 forged 'from' ends the forger's stream, nothing delivered"
    other = Client("other", f"{bare(args.other_jid)}/watch-{tag}", args.other_password, args.host, args.port, "SCRAM-SHA-256")
    await other.login(step, t)
    d.x.send_raw(f"<message from='{domain}' to='{bare(args.other_jid)}' type='chat'><body>forged {tag}</body></message>")
    await expect_disconnect(d, step, t)
    e = client("E", "forger")
    await e.login(step, t)
    e.x.send_raw(f"<message from='{bare(args.other_jid)}' to='{bare(args.other_jid)}' type='chat'><body>forged {tag}</body></message>")
    await expect_disconnect(e, step, t)
    await asyncio.sleep(1.0)
    if other.take("message", lambda s: f"forged {tag}" in str(s["body"])):
        raise StepFailed(f"{step}: a forged message was delivered")
    say(f"{step}: ok")
    await other.logout("9 log out", t)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
