#!/usr/bin/python3
"""Publish an empty urn:xmpp:omemo:2 device list for the account, leaving its legacy list as it is.

    /usr/bin/python3 omemo_hide_v2.py HOST PORT JID PASSWORD

A client that knows a device from both lists encrypts to it in omemo:2 only (Converse does); with the omemo:2 list
empty, the account's devices are known from eu.siacs.conversations.axolotl alone, so a peer has to use legacy OMEMO.
"""

import os
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, run_with_account, say  # noqa: E402


async def main(args):
    c = Client("owner", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    await c.login("1 login", 15)
    step = "2 publish an empty omemo:2 device list"
    iq = c.x.make_iq_set()
    pubsub = ET.SubElement(iq.xml, "{http://jabber.org/protocol/pubsub}pubsub")
    item = ET.SubElement(ET.SubElement(pubsub, "publish", node="urn:xmpp:omemo:2:devices"), "item", id="current")
    ET.SubElement(item, "{urn:xmpp:omemo:2}devices")
    try:
        await iq.send(timeout=15)
    except Exception as e:  # noqa: BLE001 - an error reply or a timeout fails the step
        raise StepFailed(f"{step}: {e!r}") from e
    say(f"{step}: ok")
    await c.logout("3 log out", 15)


if __name__ == "__main__":
    run_with_account(main, __doc__)
