#!/usr/bin/python3
"""Three slixmpp users drive a chat room with slixmpp's own xep_0045 plugin: create and configure
it, join (with history, told the room is logged: 170), the room archive (xep_0313), nickname conflict, subject,
groupchat, moderation (xep_0425), kick, ban, leave, destroy.

    /usr/bin/python3 muc_rooms.py HOST PORT ROOM JID_A PW_A JID_B PW_B JID_C PW_C [--timeout 15]

Prints one line per step; exits 0 on success, 1 naming the failed step.
"""

import argparse
import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say  # noqa: E402
from slixmpp import JID as slixmpp_jid  # noqa: E402
from slixmpp.exceptions import IqError, PresenceError  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("room")
    for who in ("a", "b", "c"):
        p.add_argument(f"jid_{who}")
        p.add_argument(f"password_{who}")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds allowed for each step")
    return p.parse_args()


async def main(args):
    t = args.timeout
    room = args.room

    def client(name, jid, pw):
        c = Client(name, jid, pw, args.host, args.port, "SCRAM-SHA-256")
        c.x.register_plugin("xep_0045")
        c.x.register_plugin("xep_0359")
        c.x.register_plugin("xep_0425")
        c.x.register_plugin("xep_0313")
        return c

    a = client("A", args.jid_a, args.password_a)
    b = client("B", args.jid_b, args.password_b)
    c = client("C", args.jid_c, args.password_c)
    for step, cl in (("1 login A", a), ("2 login B", b), ("3 login C", c)):
        await cl.login(step, t)
    muc_a, muc_b, muc_c = a.x.plugin["xep_0045"], b.x.plugin["xep_0045"], c.x.plugin["xep_0045"]

    step = "4 A creates the room"
    pres, _subject, _occupants, _history = await muc_a.join_muc_wait(room, "alice", timeout=t)
    codes = pres["muc"]["status_codes"]
    if 201 not in codes or pres["muc"]["affiliation"] != "owner":
        raise StepFailed(f"{step}: expected 201 and owner, got {pres}")
    say(f"{step}: ok — status codes {sorted(codes)}, owner")

    step = "5 A configures the room with the form"
    form = await muc_a.get_room_config(room, timeout=t)
    fields = form.get_fields()
    if "muc#roomconfig_roomname" not in fields:
        raise StepFailed(f"{step}: the form has no muc#roomconfig_roomname: {list(fields)}")
    form.set_values({"muc#roomconfig_roomname": "Slixmpp room", "muc#roomconfig_whois": "anyone"})
    await muc_a.set_room_config(room, form, timeout=t)
    info = await a.x.plugin["xep_0030"].get_info(jid=room, timeout=t)
    if "muc_nonanonymous" not in info["disco_info"]["features"]:
        raise StepFailed(f"{step}: the room's disco#info does not show the configuration: {info}")
    say(f"{step}: ok — named and non-anonymous")

    step = "6 A says something, B joins and gets it as history"
    a.x.send_message(mto=room, mbody="before you came", mtype="groupchat")
    await a.wait_stanza(step, "message", lambda s: s["body"] == "before you came", t, "the room's echo")
    pres, _subject, occupants, history = await muc_b.join_muc_wait(room, "bob", maxstanzas=5, timeout=t)
    if not any(h["body"] == "before you came" for h in history):
        raise StepFailed(f"{step}: B's history was {[h['body'] for h in history]}")
    if not any(o["from"].resource == "alice" for o in occupants):
        raise StepFailed(f"{step}: B did not see alice in the room")
    await a.wait_stanza(step, "presence", lambda s: s["from"].resource == "bob", t, "bob's presence")
    say(f"{step}: ok — {len(history)} history message(s) with delay")

    step = "6b B was told the room is logged and pages its archive with xep_0313"
    if 170 not in pres["muc"]["status_codes"]:
        raise StepFailed(f"{step}: no status 170 on entering an archived room: {sorted(pres['muc']['status_codes'])}")
    a.x.send_message(mto=room, mbody="archived too", mtype="groupchat")
    await b.wait_stanza(step, "message", lambda s: s["body"] == "archived too", t, "the second message")
    archived = []
    async for result in b.x.plugin["xep_0313"].iterate(jid=slixmpp_jid(room), rsm={"max": 1}):
        forwarded = result["mam_result"]["forwarded"]["stanza"]
        archived.append((str(forwarded["body"]), forwarded["from"].resource))
    if archived != [("before you came", "alice"), ("archived too", "alice")]:
        raise StepFailed(f"{step}: the room's archive, one message a page, was {archived}")
    say(f"{step}: ok — {len(archived)} messages, one a page")

    step = "7 C asks for nick bob and gets a conflict"
    try:
        await muc_c.join_muc_wait(room, "bob", timeout=t)
        raise StepFailed(f"{step}: joined with a nick in use")
    except PresenceError as e:
        if e.condition != "conflict":
            raise StepFailed(f"{step}: expected conflict, got {e.condition}") from None
    await muc_c.join_muc_wait(room, "carol", timeout=t)
    say(f"{step}: ok — conflict, then joined as carol")

    step = "8 A changes the subject"
    muc_a.set_subject(room, "slixmpp was here")
    await b.wait_stanza(step, "message", lambda s: s["subject"] == "slixmpp was here", t, "the subject")
    say(f"{step}: ok")

    step = "9 B speaks to the room"
    b.x.send_message(mto=room, mbody="hello room", mtype="groupchat")
    for cl in (a, c):
        m = await cl.wait_stanza(step, "message", lambda s: s["body"] == "hello room", t, "bob's message")
        if m["from"].resource != "bob" or m["type"] != "groupchat":
            raise StepFailed(f"{step}: unexpected message {m}")
    say(f"{step}: ok — alice and carol got it from room/bob")

    step = "9b A retracts bob's message with xep_0425"
    stanza_id = m["stanza_id"]["id"]
    if not stanza_id or m["stanza_id"]["by"] != room:
        raise StepFailed(f"{step}: the room gave the message no stanza-id: {m}")
    await a.x.plugin["xep_0425"].moderate(slixmpp_jid(room), stanza_id, reason="off topic", timeout=t)
    moderated = await b.wait_stanza(step, "message", lambda s: s["apply_to"]["id"] == stanza_id, t, "the retraction")
    if moderated["apply_to"]["moderated"]["reason"] != "off topic":
        raise StepFailed(f"{step}: unexpected retraction {moderated}")
    say(f"{step}: ok — stanza-id {stanza_id} retracted, reason given")

    step = "10 A kicks carol"
    await muc_a.set_role(room, "carol", "none", reason="testing kicks", timeout=t)
    kicked = await c.wait_stanza(step, "presence", lambda s: s["type"] == "unavailable" and 307 in s["muc"]["status_codes"], t, "307")
    if kicked["muc"]["item"]["reason"] != "testing kicks":
        raise StepFailed(f"{step}: reason not given: {kicked}")
    say(f"{step}: ok — 307 with the reason")

    step = "11 A bans carol, who cannot come back"
    await muc_a.set_affiliation(room, "outcast", jid=bare(args.jid_c), reason="and stay out", timeout=t)
    outcasts = await muc_a.get_affiliation_list(room, "outcast", timeout=t)
    if bare(args.jid_c) not in [str(j) for j in outcasts]:
        raise StepFailed(f"{step}: outcast list is {outcasts}")
    try:
        await muc_c.join_muc_wait(room, "carol", timeout=t)
        raise StepFailed(f"{step}: a banned user entered")
    except PresenceError as e:
        if e.condition != "forbidden":
            raise StepFailed(f"{step}: expected forbidden, got {e.condition}") from None
    say(f"{step}: ok — listed as outcast, forbidden to enter")

    step = "12 B leaves"
    muc_b.leave_muc(room, "bob")
    await a.wait_stanza(step, "presence", lambda s: s["from"].resource == "bob" and s["type"] == "unavailable", t, "bob leaving")
    say(f"{step}: ok")

    step = "13 A destroys the room"
    await muc_a.destroy(room, reason="done", timeout=t)
    await a.wait_stanza(step, "presence", lambda s: s["type"] == "unavailable" and s["from"].resource == "alice", t, "own unavailable")
    try:
        await a.x.plugin["xep_0030"].get_info(jid=room, timeout=t)
        raise StepFailed(f"{step}: the room still answers")
    except IqError as e:
        if e.condition != "item-not-found":
            raise StepFailed(f"{step}: expected item-not-found, got {e.condition}") from None
    say(f"{step}: ok")

    for cl in (a, b, c):
        await cl.logout("14 logout", t)


if __name__ == "__main__":
    run(lambda: main(parse_args()))
