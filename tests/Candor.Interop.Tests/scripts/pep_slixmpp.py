#!/usr/bin/python3
"""PEP (XEP-0163 on XEP-0060) driven by slixmpp's own plugins: xep_0060, xep_0163, xep_0115, xep_0084, xep_0153, xep_0054,
xep_0172, xep_0222, xep_0223 and xep_0048/xep_0049.

    /usr/bin/python3 pep_slixmpp.py HOST PORT JID_A PW_A JID_B PW_B JID_C PW_C [--timeout 15]

A and B become mutual contacts; C is a stranger. A publishes; B (whose caps say +notify) gets the events,
and a second B resource coming online gets the last items; C gets only what the access models allow.
Prints one line per step; exits 0 on success, 1 naming the failed step.
"""

import argparse
import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say  # noqa: E402

from slixmpp.exceptions import IqError  # noqa: E402
from slixmpp.xmlstream import ET, ElementBase  # noqa: E402

PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
EVENT = "http://jabber.org/protocol/pubsub#event"
TEST_NODE = "urn:candor:test:pep"
PLUGINS = ["xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0084", "xep_0172", "xep_0222", "xep_0223",
           "xep_0048", "xep_0049", "xep_0004", "xep_0054"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("host", "port", "jid_a", "password_a", "jid_b", "password_b", "jid_c", "password_c"):
        p.add_argument(name, type=int if name == "port" else str)
    p.add_argument("--timeout", type=float, default=15.0)
    return p.parse_args()


def payload(text):
    e = ET.Element(f"{{{TEST_NODE}}}entry")
    e.text = text
    return e


async def expect_error(step, coro, condition, pubsub_condition=None, code=None):
    try:
        await coro
    except IqError as e:
        got = e.iq["error"]["condition"]
        if got != condition:
            raise StepFailed(f"{step}: expected <{condition}/>, got <{got}/>: {e.iq}") from None
        err = e.iq.xml.find("{jabber:client}error")
        if pubsub_condition and err.find(f"{{{PUBSUB_ERRORS}}}{pubsub_condition}") is None:
            raise StepFailed(f"{step}: <{condition}/> without <{pubsub_condition}/>: {e.iq}") from None
        if code and err.get("code") != code:
            raise StepFailed(f"{step}: <{condition}/> without code='{code}': {e.iq}") from None
        return e.iq
    raise StepFailed(f"{step}: expected <{condition}/>, but the request succeeded")


def event_items(msg, node):
    ev = msg.xml.find(f"{{{EVENT}}}event")
    if ev is None:
        return None
    items = ev.find(f"{{{EVENT}}}items")
    if items is None or items.get("node") != node:
        return None
    return items


class Entry(ElementBase):
    """A stanza object for xep_0222/xep_0223, which publish ElementBase payloads."""
    namespace = TEST_NODE
    name = "entry"
    plugin_attrib = "entry"


def entry(text):
    e = Entry()
    e.xml.text = text
    return e


def form(xmpp, ftype, fields, form_type):
    f = xmpp["xep_0004"].make_form(ftype=ftype)
    f.add_field(var="FORM_TYPE", ftype="hidden", value=form_type)
    for var, value in fields.items():
        f.add_field(var=var, value=value)
    return f


async def main(args):
    t = args.timeout
    a_bare, b_bare = bare(args.jid_a), bare(args.jid_b)
    tag = os.urandom(4).hex()

    def client(name, jid, pw, interests=()):
        c = Client(name, jid, pw, args.host, args.port, "SCRAM-SHA-256")
        for plugin in PLUGINS:
            c.x.register_plugin(plugin)
        for ns in interests:
            c.x.add_event_handler("session_bind", lambda _j, ns=ns: c.x["xep_0163"].add_interest(ns))
        return c

    a = client("A", args.jid_a, args.password_a)
    b = client("B", args.jid_b, args.password_b, [TEST_NODE])
    c = client("C", args.jid_c, args.password_c, [TEST_NODE])
    pubsub = lambda x: x.x["xep_0060"]  # noqa: E731

    step = "1 log in A, B and C"
    await a.login(step, t)
    await b.login(step, t)
    await c.login(step, t)

    step = "2 A and B subscribe to each other"
    for x, y, y_bare, x_bare in ((a, b, b_bare, a_bare), (b, a, a_bare, b_bare)):
        x.send_presence(y_bare, "subscribe")
        await y.wait_stanza(step, "presence", lambda s, f=x_bare: s["from"].bare == f and s["type"] == "subscribe", t)
        y.send_presence(x_bare, "subscribed")
        await x.wait_stanza(step, "presence", lambda s, f=y_bare: s["from"].bare == f and s["type"] == "subscribed", t)
    say(f"{step}: ok")

    step = "3 disco#info on A's account advertises PEP"
    info = await a.x["xep_0030"].get_info(jid=a_bare, cached=False, timeout=t)
    features = set(info["disco_info"]["features"])
    wanted = ["auto-create", "publish-options", "config-node-max", "multi-items", "item-ids", "retract-items",
              "access-presence", "access-open", "access-whitelist", "persistent-items", "filtered-notifications",
              "last-published"]
    missing = [f for f in wanted if f"http://jabber.org/protocol/pubsub#{f}" not in features]
    if missing or ("pubsub", "pep", None, None) not in info["disco_info"]["identities"]:
        raise StepFailed(f"{step}: missing {missing} or no pubsub/pep identity in {info}")
    say(f"{step}: ok — {len(features)} features")

    step = "4 A publishes a nick (xep_0172); B's caps say +notify, so B hears it"
    nick = f"Alice {tag}"
    await a.x["xep_0172"].publish_nick(nick, timeout=t)
    m = await b.wait_stanza(step, "message", lambda s: event_items(s, "http://jabber.org/protocol/nick") is not None, t)
    if nick not in str(m):
        raise StepFailed(f"{step}: the event does not carry the nick: {m}")
    say(f"{step}: ok")

    step = "5 A publishes an avatar (xep_0084): data, then metadata; B hears the metadata and fetches the data"
    avatar = os.urandom(300)
    avatar_id = a.x["xep_0084"].generate_id(avatar)
    await a.x["xep_0084"].publish_avatar(avatar, timeout=t)
    await a.x["xep_0084"].publish_avatar_metadata({"id": avatar_id, "type": "image/png", "bytes": len(avatar)}, timeout=t)
    m = await b.wait_stanza(step, "message", lambda s: event_items(s, "urn:xmpp:avatar:metadata") is not None, t)
    if avatar_id not in str(m):
        raise StepFailed(f"{step}: the metadata event lacks id {avatar_id}: {m}")
    got = await b.x["xep_0084"].retrieve_avatar(a_bare, avatar_id, timeout=t)
    if got["pubsub"]["items"]["item"]["avatar_data"]["value"] != avatar:
        raise StepFailed(f"{step}: B fetched different avatar bytes: {got}")
    say(f"{step}: ok")

    step = "5b XEP-0398: the PEP avatar is A's vCard PHOTO; a vCard PHOTO set by A is published on PEP"
    vcard = await b.x["xep_0054"].get_vcard(a_bare, cached=False, local=False, timeout=t)
    if vcard["vcard_temp"]["PHOTO"]["BINVAL"] != avatar:
        raise StepFailed(f"{step}: A's vCard is {vcard}")
    other = os.urandom(200)
    card = a.x["xep_0054"].make_vcard()
    card["FN"] = "Alice"
    card["PHOTO"]["TYPE"] = "image/jpeg"
    card["PHOTO"]["BINVAL"] = other
    await a.x["xep_0054"].publish_vcard(card, timeout=t)
    other_id = a.x["xep_0084"].generate_id(other)
    m = await b.wait_stanza(step, "message", lambda s: (it := event_items(s, "urn:xmpp:avatar:metadata")) is not None
                            and other_id in str(s), t, f"avatar metadata with id {other_id}")
    got = await b.x["xep_0084"].retrieve_avatar(a_bare, other_id, timeout=t)
    if got["pubsub"]["items"]["item"]["avatar_data"]["value"] != other:
        raise StepFailed(f"{step}: B fetched different bytes for the vCard avatar: {got}")
    vcard = await b.x["xep_0054"].get_vcard(a_bare, cached=False, local=False, timeout=t)
    if vcard["vcard_temp"]["FN"] != "Alice" or vcard["vcard_temp"]["PHOTO"]["BINVAL"] != other:
        raise StepFailed(f"{step}: A's vCard became {vcard}")
    say(f"{step}: ok")

    step = "5c XEP-0292: A publishes a vCard4 on PEP; B reads it"
    card4 = ET.Element("{urn:ietf:params:xml:ns:vcard-4.0}vcard")
    ET.SubElement(ET.SubElement(card4, "{urn:ietf:params:xml:ns:vcard-4.0}fn"), "{urn:ietf:params:xml:ns:vcard-4.0}text").text = f"Alice {tag}"
    await pubsub(a).publish(None, "urn:xmpp:vcard4", id="current", payload=card4, timeout=t)
    got = await pubsub(b).get_items(a_bare, "urn:xmpp:vcard4", timeout=t)
    if got.xml.find(".//{urn:ietf:params:xml:ns:vcard-4.0}text").text != f"Alice {tag}":
        raise StepFailed(f"{step}: B read {got}")
    say(f"{step}: ok")

    step = "5d XEP-0153 (XEP-0398 §4): A's next presence carries its avatar's hash"
    a.x.send_presence(pstatus=f"with avatar {tag}")
    p = await b.wait_stanza(step, "presence", lambda s: s["from"].bare == a_bare and s["status"] == f"with avatar {tag}", t)
    photo = p.xml.find("{vcard-temp:x:update}x/{vcard-temp:x:update}photo")
    if photo is None or photo.text != other_id:
        raise StepFailed(f"{step}: presence without photo hash {other_id}: {p}")
    say(f"{step}: ok")

    step = "6 C is no contact: heard nothing, and reading A's presence-model node is refused"
    heard = c.take("message", lambda s: s.xml.find(f"{{{EVENT}}}event") is not None)
    if heard is not None:
        raise StepFailed(f"{step}: C got an event: {heard}")
    await expect_error(step, pubsub(c).get_items(a_bare, "http://jabber.org/protocol/nick", timeout=t),
                       "not-authorized", "presence-subscription-required")
    say(f"{step}: ok")

    step = "7 A publishes to a multi-item node with publish-options max_items=max and its own ids"
    opts = form(a.x, "submit", {"pubsub#max_items": "max", "pubsub#access_model": "presence"},
                "http://jabber.org/protocol/pubsub#publish-options")
    for item_id in ("one", "two", "three"):
        await pubsub(a).publish(None, TEST_NODE, id=item_id, payload=payload(f"{item_id} {tag}"), options=opts, timeout=t)
        await b.wait_stanza(step, "message", lambda s, i=item_id: (it := event_items(s, TEST_NODE)) is not None
                            and it.find(f"{{{EVENT}}}item").get("id") == i, t, f"the event for item {item_id}")
    result = await pubsub(a).publish(None, TEST_NODE, payload=payload(f"generated {tag}"), timeout=t)
    generated = result["pubsub"]["publish"]["item"]["id"]
    if not generated:
        raise StepFailed(f"{step}: no generated id in {result}")
    say(f"{step}: ok — generated id {generated}")

    step = "8 items: all, by id, max_items"
    items = await pubsub(b).get_items(a_bare, TEST_NODE, timeout=t)
    ids = [i["id"] for i in items["pubsub"]["items"]]
    if ids != ["one", "two", "three", generated]:
        raise StepFailed(f"{step}: all items are {ids}")
    items = await pubsub(b).get_items(a_bare, TEST_NODE, item_ids=["two"], timeout=t)
    if [i["id"] for i in items["pubsub"]["items"]] != ["two"] or f"two {tag}" not in str(items):
        raise StepFailed(f"{step}: by id: {items}")
    items = await pubsub(b).get_items(a_bare, TEST_NODE, max_items=2, timeout=t)
    if [i["id"] for i in items["pubsub"]["items"]] != ["three", generated]:
        raise StepFailed(f"{step}: max_items=2: {items}")
    say(f"{step}: ok")

    step = "9 publish-options that do not match the node: precondition-not-met"
    opts = form(a.x, "submit", {"pubsub#access_model": "open"}, "http://jabber.org/protocol/pubsub#publish-options")
    await expect_error(step, pubsub(a).publish(None, TEST_NODE, id="x", payload=payload("x"), options=opts, timeout=t),
                       "conflict", "precondition-not-met")
    say(f"{step}: ok")

    step = "10 node configuration: get, then set access_model=open; C may read"
    config = await pubsub(a).get_node_config(None, TEST_NODE, timeout=t)
    fields = config["pubsub_owner"]["configure"]["form"].get_fields()
    if fields["pubsub#max_items"]["value"] != "max" or fields["pubsub#access_model"]["value"] != "presence":
        raise StepFailed(f"{step}: configuration is {config}")
    await pubsub(a).set_node_config(None, TEST_NODE, form(a.x, "submit", {"pubsub#access_model": "open"},
                                                          "http://jabber.org/protocol/pubsub#node_config"), timeout=t)
    items = await pubsub(c).get_items(a_bare, TEST_NODE, item_ids=["one"], timeout=t)
    if f"one {tag}" not in str(items):
        raise StepFailed(f"{step}: C read {items}")
    say(f"{step}: ok")

    step = "11 retract with notify: B hears the retraction"
    await pubsub(a).retract(None, TEST_NODE, "two", notify=True, timeout=t)
    await b.wait_stanza(step, "message", lambda s: (it := event_items(s, TEST_NODE)) is not None
                        and it.find(f"{{{EVENT}}}retract") is not None and it.find(f"{{{EVENT}}}retract").get("id") == "two", t)
    await expect_error(step, pubsub(b).get_items(a_bare, TEST_NODE, item_ids=["two"], timeout=t), "item-not-found", code="404")
    say(f"{step}: ok")

    step = "12 a second B resource comes online: the last items arrive (nick, avatar metadata)"
    b2 = client("B2", args.jid_b + "/second", args.password_b)
    await b2.login(step, t)
    for node in ("http://jabber.org/protocol/nick", "urn:xmpp:avatar:metadata"):
        m = await b2.wait_stanza(step, "message", lambda s, n=node: event_items(s, n) is not None, t, f"the last item of {node}")
        if m.xml.find("{urn:xmpp:delay}delay") is None:
            raise StepFailed(f"{step}: the last item of {node} has no delay: {m}")
    say(f"{step}: ok")

    step = "13 purge and delete: B hears both"
    await pubsub(a).purge(None, TEST_NODE, timeout=t)
    await b.wait_stanza(step, "message", lambda s: s.xml.find(f"{{{EVENT}}}event/{{{EVENT}}}purge") is not None, t)
    items = await pubsub(a).get_items(None, TEST_NODE, timeout=t)
    if len(items["pubsub"]["items"]) != 0:
        raise StepFailed(f"{step}: items left after purge: {items}")
    await pubsub(a).delete_node(None, TEST_NODE, timeout=t)
    await b.wait_stanza(step, "message", lambda s: s.xml.find(f"{{{EVENT}}}event/{{{EVENT}}}delete") is not None, t)
    await expect_error(step, pubsub(a).get_items(None, TEST_NODE, timeout=t), "item-not-found", code="404")
    say(f"{step}: ok")

    step = "14 xep_0222 public storage and xep_0223 private storage"
    await a.x["xep_0222"].store(entry(f"public {tag}"), node="urn:candor:test:public", id="current", timeout=t)
    await a.x["xep_0223"].store(entry(f"private {tag}"), node="urn:candor:test:private", id="current", timeout=t)
    got = await a.x["xep_0223"].retrieve("urn:candor:test:private", timeout=t)
    if f"private {tag}" not in str(got):
        raise StepFailed(f"{step}: A read back {got}")
    await expect_error(step, pubsub(b).get_items(a_bare, "urn:candor:test:private", timeout=t), "not-allowed", "closed-node")
    got = await pubsub(b).get_items(a_bare, "urn:candor:test:public", timeout=t)
    if f"public {tag}" not in str(got):
        raise StepFailed(f"{step}: B read {got}")
    say(f"{step}: ok")

    step = "14b B sets a vCard avatar with slixmpp's xep_0153: A hears it as a XEP-0084 avatar (XEP-0398)"
    b.x.register_plugin("xep_0153")
    picture = os.urandom(256)
    picture_id = a.x["xep_0084"].generate_id(picture)
    await b.x["xep_0153"].set_avatar(avatar=picture, mtype="image/png", timeout=t)
    await a.wait_stanza(step, "message", lambda s: event_items(s, "urn:xmpp:avatar:metadata") is not None
                        and s["from"].bare == b_bare and picture_id in str(s), t, f"B's avatar metadata with id {picture_id}")
    got = await a.x["xep_0084"].retrieve_avatar(b_bare, picture_id, timeout=t)
    if got["pubsub"]["items"]["item"]["avatar_data"]["value"] != picture:
        raise StepFailed(f"{step}: A fetched other bytes: {got}")
    say(f"{step}: ok")

    step = "15 disco#items lists the nodes each may see"
    mine = await a.x["xep_0030"].get_items(jid=a_bare, timeout=t)
    theirs = await c.x["xep_0030"].get_items(jid=a_bare, timeout=t)
    mine_nodes = {i[1] for i in mine["disco_items"]["items"]}
    their_nodes = {i[1] for i in theirs["disco_items"]["items"]}
    if "urn:candor:test:private" not in mine_nodes or "urn:candor:test:private" in their_nodes:
        raise StepFailed(f"{step}: A sees {mine_nodes}, C sees {their_nodes}")
    say(f"{step}: ok")

    step = "16 bookmarks #compat (XEP-0402): set in private XML (xep_0048), read on PEP, and back"
    from slixmpp.plugins.xep_0048.stanza import Bookmarks
    marks = Bookmarks()
    marks.add_conference(f"room-{tag}@conference.localhost", "alice", name="Old room", autojoin=True)
    await a.x["xep_0048"].set_bookmarks(marks, method="xep_0049", timeout=t)
    items = await pubsub(a).get_items(None, "urn:xmpp:bookmarks:1", timeout=t)
    conf = items.xml.find(".//{urn:xmpp:bookmarks:1}conference")
    item = items.xml.find(".//{http://jabber.org/protocol/pubsub}item")
    if conf is None or item.get("id") != f"room-{tag}@conference.localhost" or conf.get("autojoin") != "true" \
            or conf.findtext("{urn:xmpp:bookmarks:1}nick") != "alice":
        raise StepFailed(f"{step}: PEP bookmarks are {items}")
    new = ET.Element("{urn:xmpp:bookmarks:1}conference", {"name": "New room", "autojoin": "false"})
    ET.SubElement(new, "{urn:xmpp:bookmarks:1}nick").text = "al"
    opts = form(a.x, "submit", {"pubsub#persist_items": "true", "pubsub#max_items": "max",
                                "pubsub#send_last_published_item": "never", "pubsub#access_model": "whitelist"},
                "http://jabber.org/protocol/pubsub#publish-options")
    await pubsub(a).publish(None, "urn:xmpp:bookmarks:1", id=f"new-{tag}@conference.localhost", payload=new, options=opts, timeout=t)
    got = await a.x["xep_0048"].get_bookmarks(method="xep_0049", timeout=t)
    rooms = {str(c["jid"]): c for c in got["private"]["bookmarks"]["conferences"]}
    if set(rooms) != {f"room-{tag}@conference.localhost", f"new-{tag}@conference.localhost"} \
            or rooms[f"new-{tag}@conference.localhost"]["nick"] != "al":
        raise StepFailed(f"{step}: private XML bookmarks are {got}")
    say(f"{step}: ok")

    step = "17 log out"
    for x in (a, b, b2, c):
        await x.logout(step, t)
    say(f"{step}: ok")


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
