#!/usr/bin/python3
"""OMEMO end to end through the server: clients built on python-omemo (Debian python3-omemo,
python3-oldmemo, python3-twomemo) over slixmpp, with the minimal glue written here (Debian has no
slixmpp-omemo): device lists and bundles on PEP, messages encrypted and decrypted.

    /usr/bin/python3 omemo_clients.py HOST PORT exchange JID_A PW_A JID_B PW_B [--timeout 15]
        A and B (mutual contacts) publish their devices in both namespaces (eu.siacs.conversations.axolotl
        and urn:xmpp:omemo:2), learn each other's from +notify events, and exchange encrypted messages both
        ways in both namespaces.

    /usr/bin/python3 omemo_clients.py HOST PORT publish JID_A PW_A JID_B PW_B --state DIR
        A and B become mutual contacts; A publishes its OMEMO devices (state kept in DIR), a nick
        (access model presence) and a private node (whitelist); the device ids are written to DIR.

    /usr/bin/python3 omemo_clients.py HOST PORT after-restart JID_A PW_A JID_B PW_B --state DIR --stranger JID_C PW_C
        After the server restarted: B reads A's device lists and bundles, the stranger C too (access model
        open), C is refused the nick (presence) and B the private node (whitelist); B encrypts to A from the
        bundles fetched from the server, and A (state reloaded from DIR) decrypts.

Prints one line per step; exits 0 on success, 1 naming the failed step.
"""

import argparse
import asyncio
import base64
import json
import os
import sys
from typing import Dict, Optional

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say  # noqa: E402

try:
    import omemo
    import oldmemo
    import oldmemo.etree
    import twomemo
    import twomemo.etree
    from omemo.storage import Just, Maybe, Nothing, Storage
    from omemo.types import DeviceInformation, TrustLevel
except ImportError as e:
    print(f"FAIL: cannot import python-omemo ({e}); install python3-omemo python3-oldmemo python3-twomemo", flush=True)
    sys.exit(2)

from slixmpp.exceptions import IqError  # noqa: E402
from slixmpp.xmlstream import ET  # noqa: E402

OLD = oldmemo.oldmemo.NAMESPACE
TWO = twomemo.twomemo.NAMESPACE
OLD_DEVICES = f"{OLD}.devicelist"
TWO_DEVICES = f"{TWO}:devices"
TWO_BUNDLES = f"{TWO}:bundles"
SCE = "urn:xmpp:sce:1"
PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"


def old_bundle_node(device_id):
    return f"{OLD}.bundles:{device_id}"


class FileStorage(Storage):
    """python-omemo's key-value storage, kept in a JSON file when a path is given (so a client can restart)."""

    def __init__(self, path=None):
        super().__init__()
        self.path = path
        self.data = {}
        if path and os.path.exists(path):
            with open(path) as f:
                self.data = json.load(f)

    async def _load(self, key: str) -> Maybe:
        return Just(self.data[key]) if key in self.data else Nothing()

    async def _store(self, key: str, value) -> None:
        self.data[key] = value
        self._save()

    async def _delete(self, key: str) -> None:
        self.data.pop(key, None)
        self._save()

    def _save(self):
        if self.path:
            with open(self.path, "w") as f:
                json.dump(self.data, f)


def open_options(xmpp, max_items=None):
    form = xmpp["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
    form.add_field(var="pubsub#access_model", value="open")
    if max_items:
        form.add_field(var="pubsub#max_items", value=max_items)
    return form


def first_payload(result):
    items = result.xml.find("{http://jabber.org/protocol/pubsub}pubsub/{http://jabber.org/protocol/pubsub}items")
    item = None if items is None else items.find("{http://jabber.org/protocol/pubsub}item")
    return None if item is None or len(item) == 0 else item[0]


def manager_class(client):
    """A python-omemo SessionManager whose PEP and message I/O go through this slixmpp client."""
    xmpp = client.x
    pubsub = xmpp["xep_0060"]

    class Manager(omemo.SessionManager):
        @staticmethod
        async def _upload_bundle(bundle):
            if bundle.namespace == TWO:
                await pubsub.publish(None, TWO_BUNDLES, id=str(bundle.device_id), payload=twomemo.etree.serialize_bundle(bundle),
                                     options=open_options(xmpp, "max"))
            else:
                await pubsub.publish(None, old_bundle_node(bundle.device_id), id="current",
                                     payload=oldmemo.etree.serialize_bundle(bundle), options=open_options(xmpp))

        @staticmethod
        async def _download_bundle(namespace, bare_jid, device_id):
            try:
                if namespace == TWO:
                    result = await pubsub.get_items(bare_jid, TWO_BUNDLES, item_ids=[str(device_id)])
                    return twomemo.etree.parse_bundle(first_payload(result), bare_jid, device_id)
                result = await pubsub.get_items(bare_jid, old_bundle_node(device_id), max_items=1)
                return oldmemo.etree.parse_bundle(first_payload(result), bare_jid, device_id)
            except IqError as e:
                if e.iq["error"]["condition"] == "item-not-found":
                    raise omemo.BundleNotFound(f"{bare_jid}/{device_id}") from e
                raise omemo.BundleDownloadFailed(str(e.iq)) from e

        @staticmethod
        async def _delete_bundle(namespace, device_id):
            try:
                if namespace == TWO:
                    await pubsub.retract(None, TWO_BUNDLES, str(device_id), notify=True)
                else:
                    await pubsub.delete_node(None, old_bundle_node(device_id))
            except IqError as e:
                if e.iq["error"]["condition"] != "item-not-found":
                    raise omemo.BundleDeletionFailed(str(e.iq)) from e

        @staticmethod
        async def _upload_device_list(namespace, device_list: Dict[int, Optional[str]]):
            if namespace == TWO:
                await pubsub.publish(None, TWO_DEVICES, id="current", payload=twomemo.etree.serialize_device_list(device_list),
                                     options=open_options(xmpp))
            else:
                await pubsub.publish(None, OLD_DEVICES, id="current", payload=oldmemo.etree.serialize_device_list(device_list),
                                     options=open_options(xmpp))

        @staticmethod
        async def _download_device_list(namespace, bare_jid):
            node = TWO_DEVICES if namespace == TWO else OLD_DEVICES
            try:
                result = await pubsub.get_items(bare_jid, node, max_items=1)
            except IqError as e:
                if e.iq["error"]["condition"] == "item-not-found":
                    return {}
                raise omemo.DeviceListDownloadFailed(str(e.iq)) from e
            element = first_payload(result)
            if element is None:
                return {}
            return (twomemo.etree if namespace == TWO else oldmemo.etree).parse_device_list(element)

        async def _evaluate_custom_trust_level(self, device: DeviceInformation) -> TrustLevel:
            # The test trusts every device it sees (blind trust): trust is not what is under test here.
            return TrustLevel.TRUSTED

        async def _make_trust_decision(self, undecided, identifier):
            for device in undecided:
                await self.set_trust(device.bare_jid, device.identity_key, "blind")

        @staticmethod
        async def _send_message(message, bare_jid):
            client.send_encrypted(message, bare_jid)

    return Manager


class OmemoClient(Client):
    def __init__(self, name, jid, password, host, port, state=None, mechanism="SCRAM-SHA-256"):
        super().__init__(name, jid, password, host, port, mechanism)
        for plugin in ("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163", "xep_0172", "xep_0223"):
            self.x.register_plugin(plugin)
        self.x.add_event_handler("session_bind", lambda _j: self.x["xep_0163"].add_interest([OLD_DEVICES, TWO_DEVICES]))
        self.x.add_event_handler("pubsub_publish", self._on_publish)
        self.state = state
        self.manager = None
        self.device_lists_heard = []

    async def start_omemo(self, namespaces=(TWO, OLD)):
        storage = FileStorage(self.state)
        backends = {TWO: twomemo.Twomemo, OLD: oldmemo.Oldmemo}
        self.manager = await manager_class(self).create(
            [backends[n](storage) for n in namespaces], storage, self.x.boundjid.bare, self.name, "blind")
        await self.manager.after_history_sync()
        own, _ = await self.manager.get_own_device_information()
        return own.device_id

    def _on_publish(self, msg):
        node = msg["pubsub_event"]["items"]["node"]
        if node not in (OLD_DEVICES, TWO_DEVICES):
            return
        payload = msg.xml.find(".//{http://jabber.org/protocol/pubsub#event}item")
        if payload is None or len(payload) == 0:
            return
        namespace = TWO if node == TWO_DEVICES else OLD
        devices = (twomemo.etree if namespace == TWO else oldmemo.etree).parse_device_list(payload[0])
        self.device_lists_heard.append((msg["from"].bare, namespace, frozenset(devices)))
        self.changed.set()
        if self.manager is not None:
            asyncio.ensure_future(self.manager.update_device_list(namespace, msg["from"].bare, devices))

    def send_encrypted(self, message, bare_jid, body_fallback=None, room=None):
        """Sends to bare_jid, or with room as a groupchat message to that room (XEP-0384 §6.1)."""
        stanza = self.x.make_message(mto=room or bare_jid, mtype="groupchat" if room else "chat")
        if message.namespace == TWO:
            stanza.append(twomemo.etree.serialize_message(message))
        else:
            stanza.append(oldmemo.etree.serialize_message(message))
        if body_fallback:
            stanza["body"] = body_fallback
        stanza.append(ET.Element("{urn:xmpp:hints}store"))
        stanza.send()

    async def encrypt_to(self, bare_jid, text, namespace, room=None):
        envelope = ET.Element(f"{{{SCE}}}envelope")
        content = ET.SubElement(envelope, f"{{{SCE}}}content")
        ET.SubElement(content, "{jabber:client}body").text = text
        ET.SubElement(envelope, f"{{{SCE}}}rpad").text = base64.b64encode(os.urandom(8)).decode()
        ET.SubElement(envelope, f"{{{SCE}}}from").set("jid", self.x.boundjid.bare)
        plaintext = {TWO: ET.tostring(envelope), OLD: text.encode()}
        await self.manager.refresh_device_list(namespace, bare_jid)
        messages, errors = await self.manager.encrypt(frozenset([bare_jid]), plaintext, backend_priority_order=[namespace])
        if errors:
            raise StepFailed(f"encryption to {bare_jid} reported {errors}")
        for message in messages:
            if message.namespace == namespace:
                self.send_encrypted(message, bare_jid, "[OMEMO encrypted message]", room)
                return
        raise StepFailed(f"no {namespace} message among {[m.namespace for m in messages]}")

    async def receive_decrypted(self, step, sender_bare, namespace, timeout):
        """The next message with content from the sender, decrypted; empty OMEMO messages (session upkeep) are skipped."""
        while True:
            m = await self.wait_stanza(step, "message", lambda s: s["from"].bare == sender_bare
                                       and s.xml.find(f"{{{namespace}}}encrypted") is not None, timeout,
                                       f"a {namespace} encrypted message from {sender_bare}")
            element = m.xml.find(f"{{{namespace}}}encrypted")
            if namespace == TWO:
                message = twomemo.etree.parse_message(element, sender_bare)
            else:
                message = await oldmemo.etree.parse_message(element, sender_bare, self.x.boundjid.bare, self.manager)
            plaintext, device, _ = await self.manager.decrypt(message)
            if plaintext is not None:
                break
        if "[OMEMO encrypted message]" != m["body"]:
            raise StepFailed(f"{step}: the fallback body is not what was sent: {m['body']!r}")
        if namespace == OLD:
            return plaintext.decode(), device
        envelope = ET.fromstring(plaintext)
        return envelope.find(f"{{{SCE}}}content/{{jabber:client}}body").text, device


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("mode", choices=["exchange", "publish", "after-restart"])
    p.add_argument("jid_a")
    p.add_argument("password_a")
    p.add_argument("jid_b")
    p.add_argument("password_b")
    p.add_argument("--state")
    p.add_argument("--stranger", nargs=2, metavar=("JID", "PASSWORD"))
    p.add_argument("--timeout", type=float, default=15.0)
    return p.parse_args()


async def befriend(step, a, b, t):
    a_bare, b_bare = a.x.boundjid.bare, b.x.boundjid.bare
    for x, y, y_bare, x_bare in ((a, b, b_bare, a_bare), (b, a, a_bare, b_bare)):
        x.send_presence(y_bare, "subscribe")
        await y.wait_stanza(step, "presence", lambda s, f=x_bare: s["from"].bare == f and s["type"] == "subscribe", t)
        y.send_presence(x_bare, "subscribed")
        await x.wait_stanza(step, "presence", lambda s, f=y_bare: s["from"].bare == f and s["type"] == "subscribed", t)


async def exchange(args):
    t = args.timeout
    a = OmemoClient("A", args.jid_a, args.password_a, args.host, args.port)
    b = OmemoClient("B", args.jid_b, args.password_b, args.host, args.port)
    a_bare, b_bare = bare(args.jid_a), bare(args.jid_b)

    step = "1 log in and become mutual contacts"
    await a.login(step, t)
    await b.login(step, t)
    await befriend(step, a, b, t)
    say(f"{step}: ok")

    step = "2 both create their OMEMO devices (bundles and device lists on PEP, both namespaces)"
    a_id = await asyncio.wait_for(a.start_omemo(), t)
    b_id = await asyncio.wait_for(b.start_omemo(), t)
    say(f"{step}: ok — A is device {a_id}, B is device {b_id}")

    step = "3 each hears the other's device lists by +notify, in both namespaces"
    for me, other, other_id in ((a, b_bare, b_id), (b, a_bare, a_id)):
        for namespace in (OLD, TWO):
            try:
                await me._wait(step, t, lambda me=me, ns=namespace, o=other, i=other_id: True if any(
                    j == o and n == ns and i in d for j, n, d in me.device_lists_heard) else None)
            except StepFailed as e:
                raise StepFailed(f"{e}: {me.name} waited for {other}'s {namespace} list with {other_id}; "
                                 f"it heard {me.device_lists_heard}") from None
    say(f"{step}: ok")

    tag = os.urandom(4).hex()
    number = 4
    for namespace in (TWO, OLD):
        for sender, receiver, sender_bare, receiver_bare, sender_id in ((a, b, a_bare, b_bare, a_id), (b, a, b_bare, a_bare, b_id)):
            step = f"{number} {sender.name} -> {receiver.name} encrypted with {namespace}"
            text = f"secret {tag} from {sender.name} in {namespace} — ünïcödé"
            await asyncio.wait_for(sender.encrypt_to(receiver_bare, text, namespace), t)
            got, device = await receiver.receive_decrypted(step, sender_bare, namespace, t)
            if got != text or device.device_id != sender_id:
                raise StepFailed(f"{step}: decrypted {got!r} from device {device.device_id}")
            say(f"{step}: ok — {got!r}")
            number += 1

    step = f"{number} log out"
    await a.logout(step, t)
    await b.logout(step, t)


async def publish(args):
    t = args.timeout
    a = OmemoClient("A", args.jid_a, args.password_a, args.host, args.port, os.path.join(args.state, "a.json"))
    b = OmemoClient("B", args.jid_b, args.password_b, args.host, args.port, os.path.join(args.state, "b.json"))
    step = "1 log in and become mutual contacts"
    await a.login(step, t)
    await b.login(step, t)
    await befriend(step, a, b, t)
    step = "2 A and B publish their OMEMO devices, A a nick and a private node"
    a_id = await asyncio.wait_for(a.start_omemo(), t)
    b_id = await asyncio.wait_for(b.start_omemo(), t)
    await a.x["xep_0172"].publish_nick("Alice before the restart", timeout=t)
    private = ET.Element("{urn:candor:test:private}secret")
    private.text = "only for A"
    options = a.x["xep_0004"].make_form(ftype="submit")
    options.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
    options.add_field(var="pubsub#access_model", value="whitelist")
    options.add_field(var="pubsub#persist_items", value=True)
    await a.x["xep_0060"].publish(None, "urn:candor:test:private", id="current", payload=private, options=options, timeout=t)
    with open(os.path.join(args.state, "devices.json"), "w") as f:
        json.dump({"a": a_id, "b": b_id}, f)
    say(f"{step}: ok — A is device {a_id}")
    await a.logout("3 log out", t)
    await b.logout("3 log out", t)


async def expect_error(step, coro, condition, pubsub_condition=None, code=None):
    try:
        await coro
    except IqError as e:
        error = e.iq.xml.find("{jabber:client}error")
        if e.iq["error"]["condition"] != condition or (pubsub_condition and error.find(f"{{{PUBSUB_ERRORS}}}{pubsub_condition}") is None) \
                or (code and error.get("code") != code):
            raise StepFailed(f"{step}: expected {condition}/{pubsub_condition} code {code}, got {e.iq}") from None
        return
    raise StepFailed(f"{step}: expected <{condition}/>, but the request succeeded")


async def after_restart(args):
    t = args.timeout
    with open(os.path.join(args.state, "devices.json")) as f:
        a_id = json.load(f)["a"]
    a_bare = bare(args.jid_a)
    b = OmemoClient("B", args.jid_b, args.password_b, args.host, args.port, os.path.join(args.state, "b.json"))
    c = OmemoClient("C", args.stranger[0], args.stranger[1], args.host, args.port)
    step = "1 B and the stranger C log in"
    await b.login(step, t)
    await c.login(step, t)

    step = "2 B and C read A's device lists and bundles (access model open) as published before the restart"
    for reader in (b, c):
        pubsub = reader.x["xep_0060"]
        old = oldmemo.etree.parse_device_list(first_payload(await pubsub.get_items(a_bare, OLD_DEVICES, timeout=t)))
        two = twomemo.etree.parse_device_list(first_payload(await pubsub.get_items(a_bare, TWO_DEVICES, timeout=t)))
        if a_id not in old or a_id not in two:
            raise StepFailed(f"{step}: {reader.name} sees device lists {old} and {two}, without {a_id}")
        oldmemo.etree.parse_bundle(first_payload(await pubsub.get_items(a_bare, old_bundle_node(a_id), timeout=t)), a_bare, a_id)
        twomemo.etree.parse_bundle(first_payload(await pubsub.get_items(a_bare, TWO_BUNDLES, item_ids=[str(a_id)], timeout=t)), a_bare, a_id)
    say(f"{step}: ok")

    step = "3 the stranger is refused the nick (presence), B the private node (whitelist), a missing node is item-not-found"
    await expect_error(step, c.x["xep_0060"].get_items(a_bare, "http://jabber.org/protocol/nick", timeout=t),
                       "not-authorized", "presence-subscription-required")
    got = await b.x["xep_0060"].get_items(a_bare, "http://jabber.org/protocol/nick", timeout=t)
    if "Alice before the restart" not in str(got):
        raise StepFailed(f"{step}: B read the nick as {got}")
    await expect_error(step, b.x["xep_0060"].get_items(a_bare, "urn:candor:test:private", timeout=t), "not-allowed", "closed-node")
    await expect_error(step, c.x["xep_0060"].get_items(a_bare, old_bundle_node(a_id + 1), timeout=t), "item-not-found", code="404")
    say(f"{step}: ok")

    step = "4 A logs in again with its kept OMEMO state, B encrypts to it from the server's bundles, A decrypts"
    a = OmemoClient("A", args.jid_a, args.password_a, args.host, args.port, os.path.join(args.state, "a.json"))
    await a.login(step, t)
    got_id = await asyncio.wait_for(a.start_omemo(), t)
    await asyncio.wait_for(b.start_omemo(), t)
    if got_id != a_id:
        raise StepFailed(f"{step}: A came back as device {got_id}, not {a_id}")
    private = await a.x["xep_0060"].get_items(None, "urn:candor:test:private", timeout=t)
    if "only for A" not in str(private):
        raise StepFailed(f"{step}: A reads its private node as {private}")
    for namespace in (TWO, OLD):
        text = f"after the restart in {namespace}"
        await asyncio.wait_for(b.encrypt_to(a_bare, text, namespace), t)
        got, _ = await a.receive_decrypted(step, bare(args.jid_b), namespace, t)
        if got != text:
            raise StepFailed(f"{step}: A decrypted {got!r}")
    say(f"{step}: ok")
    for x in (a, b, c):
        await x.logout("5 log out", t)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: {"exchange": exchange, "publish": publish, "after-restart": after_restart}[arguments.mode](arguments))
