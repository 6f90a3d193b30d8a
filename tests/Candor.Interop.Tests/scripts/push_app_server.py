#!/usr/bin/python3
"""XEP-0357 push notifications with a slixmpp "app server" (issue 21.4).

    /usr/bin/python3 push_app_server.py HOST PORT JID_A PASSWORD_A JID_B PASSWORD_B APP_JID APP_PASSWORD [--timeout 15]

Steps: the app server (a slixmpp client at APP_JID, full JID) logs in and answers every pubsub publish it gets;
A's phone enables push with the app server's JID and a node, then logs out; B sends A a message; the app server
receives the notification from A's bare JID: a publish to the node with a urn:xmpp:push:summary form counting one
message and naming neither B nor the text. Exits 0 on success, 1 naming the failed step.
"""

import asyncio
import os
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say, two_accounts_parser  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

PUSH = "urn:xmpp:push:0"
PUBSUB = "http://jabber.org/protocol/pubsub"
DATA = "jabber:x:data"
SECRET = "meet me at the harbour at nine"


def parse_args():
    p = two_accounts_parser(__doc__)
    p.add_argument("app_jid")
    p.add_argument("app_password")
    p.add_argument("--timeout", type=float, default=15.0)
    return p.parse_args()


async def main(args):
    t = args.timeout
    user = bare(args.jid_a)

    step = "1 the app server logs in and answers publishes"
    app = Client("app", args.app_jid, args.app_password, args.host, args.port, "SCRAM-SHA-256")
    published = []

    def on_publish(iq):
        published.append(ET.fromstring(str(iq)))
        iq.reply(clear=True).send()
        app.changed.set()

    app.x.register_handler(Callback("push publish", MatchXPath(f"{{jabber:client}}iq/{{{PUBSUB}}}pubsub"), on_publish))
    await app.login(step, t)
    say(f"{step}: ok")

    step = "2 the phone enables push with the app server and goes away"
    phone = Client("phone", args.jid_a, args.password_a, args.host, args.port, "SCRAM-SHA-256")
    await phone.login(step, t)
    iq = phone.x.make_iq_set()
    iq.append(ET.fromstring(f"<enable xmlns='{PUSH}' jid='{app.x.boundjid.full}' node='phone-node'/>"))
    try:
        await iq.send(timeout=t)
    except Exception as e:  # noqa: BLE001
        raise StepFailed(f"{step}: enable was refused: {e!r}") from e
    await phone.logout(step, t)
    say(f"{step}: ok")

    step = "3 a message for the absent phone brings a summary without sender or text"
    sender = Client("sender", args.jid_b, args.password_b, args.host, args.port, "SCRAM-SHA-256")
    await sender.login(step, t)
    sender.send_message(user, SECRET)
    await app._wait(step, t, lambda: published[0] if published else None)
    notification = published[0]
    text = ET.tostring(notification, encoding="unicode")
    if notification.get("from") != user:
        raise StepFailed(f"{step}: from {notification.get('from')!r}, expected {user}: {text}")
    publish = notification.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish")
    if publish is None or publish.get("node") != "phone-node":
        raise StepFailed(f"{step}: no publish to phone-node: {text}")
    fields = {f.get("var"): f.findtext(f"{{{DATA}}}value")
              for f in publish.iter(f"{{{DATA}}}field")}
    if fields.get("FORM_TYPE") != "urn:xmpp:push:summary" or fields.get("message-count") != "1":
        raise StepFailed(f"{step}: unexpected summary {fields}: {text}")
    if SECRET in text or bare(args.jid_b) in text:
        raise StepFailed(f"{step}: the notification names the sender or carries the text: {text}")
    say(f"{step}: ok — {fields}")
    await sender.logout("4 logout", t)
    await app.logout("4 logout", t)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
