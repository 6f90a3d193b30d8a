#!/usr/bin/python3
"""A python-omemo peer for Candor's own client, over slixmpp (see omemo_clients.py): twomemo (urn:xmpp:omemo:2), or
with --namespace legacy only oldmemo (eu.siacs.conversations.axolotl, the only namespace it then publishes).

    /usr/bin/python3 omemo_peer.py HOST PORT JID PASSWORD receive-then-reply --peer CANDOR_JID --expect TEXT --reply TEXT --go FILE
        Publishes its device, prints READY, decrypts the next message with content from CANDOR_JID (it must be TEXT:
        Candor started the session), then once FILE exists encrypts TEXT back.

    /usr/bin/python3 omemo_peer.py HOST PORT JID PASSWORD send-first --peer CANDOR_JID --expect TEXT --reply TEXT --go FILE
        Publishes its device, prints READY, once FILE exists encrypts --reply to CANDOR_JID (python-omemo starts the
        session from Candor's bundle), then decrypts the next message with content from CANDOR_JID (it must be TEXT).

    ... --room ROOM
        The same in a members-only, non-anonymous room (XEP-0384 §6.1): it joins ROOM as the local part of JID before
        READY; messages are groupchat messages in the room, the sender known by the real JID in its occupant presence;
        instead of waiting for FILE it waits for CANDOR_JID to be an occupant.

    ... --mechanism SCRAM-SHA-1
        Logs in with that SASL mechanism instead of SCRAM-SHA-256 (for Prosody 0.12).

Prints one line per step; exits 0 on success, 1 naming the failed step.
"""

import argparse
import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import StepFailed, bare, run, say  # noqa: E402
from omemo_clients import OLD, SCE, TWO, OmemoClient, oldmemo, twomemo  # noqa: E402
from slixmpp.xmlstream import ET  # noqa: E402


async def receive(step, client, sender, namespace, timeout, room=None):
    """The next message with a payload from sender (in room: from its occupant) in the namespace, decrypted to its (SCE) body."""
    def from_sender(s):
        if room:
            return s["type"] == "groupchat" and s["from"].bare == room and occupants(client, room).get(s["from"].resource) == sender
        return s["from"].bare == sender
    while True:
        m = await client.wait_stanza(step, "message", lambda s: from_sender(s)
                                     and s.xml.find(f"{{{namespace}}}encrypted") is not None, timeout,
                                     f"a {namespace} message from {sender}")
        element = m.xml.find(f"{{{namespace}}}encrypted")
        if namespace == OLD:
            message = await oldmemo.etree.parse_message(element, sender, client.x.boundjid.bare, client.manager)
        else:
            message = twomemo.etree.parse_message(element, sender)
        plaintext, device, _ = await client.manager.decrypt(message)
        if plaintext is not None and namespace == OLD:
            return plaintext.decode(), device.device_id
        if plaintext is not None:
            envelope = ET.fromstring(plaintext)
            claimed = envelope.find(f"{{{SCE}}}from")
            if claimed is None or bare(claimed.get("jid")) != sender:
                raise StepFailed(f"{step}: the envelope's from is {None if claimed is None else claimed.get('jid')}")
            return envelope.find(f"{{{SCE}}}content/{{jabber:client}}body").text, device.device_id


async def wait_for_file(step, path, timeout):
    for _ in range(int(timeout * 10)):
        if os.path.exists(path):
            return
        await asyncio.sleep(0.1)
    raise StepFailed(f"{step}: {path} did not appear")


def occupants(client, room):
    """The room's occupants' real bare JIDs by nick, from the presences the client has received so far."""
    found = {}
    for kind, presence in client.inbox:
        item = presence.xml.find("{http://jabber.org/protocol/muc#user}x/{http://jabber.org/protocol/muc#user}item")
        if kind != "presence" or presence["from"].bare != room or item is None or not item.get("jid"):
            continue
        if presence["type"] == "unavailable":
            found.pop(presence["from"].resource, None)
        else:
            found[presence["from"].resource] = bare(item.get("jid"))
    return found


async def wait_for_turn(step, client, args, peer, timeout):
    """Waits for the go file, or in a room for the Candor peer to be an occupant."""
    if not args.room:
        await wait_for_file(step, args.go, timeout)
        return
    await client._wait(step, timeout, lambda: True if peer in occupants(client, args.room).values() else None)


async def main(args):
    t = args.timeout
    b = OmemoClient("python-omemo", args.jid, args.password, args.host, args.port, mechanism=args.mechanism)
    if args.room:
        b.x.register_plugin("xep_0045")
    await b.login("1 log in", t)
    namespace = OLD if args.namespace == "legacy" else TWO
    device = await asyncio.wait_for(b.start_omemo((namespace,)), t)
    if args.room:
        await b.x.plugin["xep_0045"].join_muc_wait(args.room, b.x.boundjid.user, maxstanzas=0, timeout=int(t))
    say(f"READY device {device}")
    peer = bare(args.peer)
    if args.mode == "receive-then-reply":
        got, sender_device = await receive("2 decrypt the message Candor encrypted", b, peer, namespace, t, args.room)
        if got != args.expect:
            raise StepFailed(f"2: decrypted {got!r}, expected {args.expect!r}")
        say(f"GOT {got!r} from device {sender_device}")
        await wait_for_turn("3 wait for Candor to listen", b, args, peer, t)
        await asyncio.wait_for(b.encrypt_to(peer, args.reply, namespace, args.room), t)
        say("SENT reply")
    else:
        await wait_for_turn("2 wait for Candor to listen", b, args, peer, t)
        await asyncio.wait_for(b.encrypt_to(peer, args.reply, namespace, args.room), t)
        say("SENT first")
        got, sender_device = await receive("3 decrypt Candor's answer", b, peer, namespace, t, args.room)
        if got != args.expect:
            raise StepFailed(f"3: decrypted {got!r}, expected {args.expect!r}")
        say(f"GOT {got!r} from device {sender_device}")
    await asyncio.sleep(1)
    await b.logout("4 log out", t)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("jid")
    p.add_argument("password")
    p.add_argument("mode", choices=["receive-then-reply", "send-first"])
    p.add_argument("--peer", required=True)
    p.add_argument("--expect", required=True)
    p.add_argument("--reply", required=True)
    p.add_argument("--go")
    p.add_argument("--room")
    p.add_argument("--mechanism", default="SCRAM-SHA-256", help="SASL mechanism (Prosody 0.12 has no SCRAM-SHA-256)")
    p.add_argument("--namespace", choices=["2", "legacy"], default="2")
    p.add_argument("--timeout", type=float, default=30.0)
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
