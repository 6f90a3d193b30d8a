#!/usr/bin/python3
"""Hats (XEP-0317) with slixmpp's own plugins: A creates a room (xep_0045), B enters; A finds the room's hat commands
and runs "don" with xep_0050 (execute: the form; complete: the filled form), B's presence in the room then carries the
hat for both; A runs "doff" and the hat is gone. slixmpp has no hats plugin: the <hats/> element is read as XML.

    /usr/bin/python3 muc_hats.py HOST PORT JID_A PW_A JID_B PW_B --room ROOM [--timeout 15]

Prints one line per step; exits 0 on success, 1 naming the failed step.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say, two_accounts_parser  # noqa: E402

HATS = "urn:xmpp:hats:0"
DON = "urn:xmpp:hats:commands:don"
DOFF = "urn:xmpp:hats:commands:doff"
HAT_URI = "http://tech.example.edu/hats#TeacherAssistant"


def hats_of(presence):
    element = presence.xml.find("{%s}hats" % HATS)
    return [] if element is None else [(h.get("uri"), h.get("title")) for h in element.findall("{%s}hat" % HATS)]


async def main(args):
    t = args.timeout
    room = args.room

    def client(name, jid, pw):
        c = Client(name, jid, pw, args.host, args.port, "SCRAM-SHA-256")
        c.x.register_plugin("xep_0045")
        c.x.register_plugin("xep_0050")
        return c

    a = client("A", args.jid_a, args.password_a)
    b = client("B", args.jid_b, args.password_b)
    for step, cl in (("1 login A", a), ("2 login B", b)):
        await cl.login(step, t)
    muc_a, muc_b, adhoc = a.x.plugin["xep_0045"], b.x.plugin["xep_0045"], a.x.plugin["xep_0050"]

    step = "3 A creates the room, B enters"
    await muc_a.join_muc_wait(room, "alice", timeout=t)
    await muc_a.set_room_config(room, await muc_a.get_room_config(room, timeout=t), timeout=t)
    await muc_b.join_muc_wait(room, "bob", timeout=t)
    await a.wait_stanza(step, "presence", lambda s: s["from"].resource == "bob", t, "bob's presence")
    say(f"{step}: ok")

    step = "4 A lists the room's commands (xep_0050)"
    items = await adhoc.get_commands(room, timeout=t)
    nodes = [node for _jid, node, _name in items["disco_items"]["items"]]
    if DON not in nodes or DOFF not in nodes:
        raise StepFailed(f"{step}: expected the don and doff commands, got {nodes}")
    say(f"{step}: ok — {nodes}")

    step = "5 A runs don: execute gets the form, complete sends it filled"
    first = await adhoc.send_command(room, DON, timeout=t)
    command = first["command"]
    form = command["form"]
    if command["status"] != "executing" or "accountjid" not in form.get_fields():
        raise StepFailed(f"{step}: expected an executing command with a form, got {first}")
    answer = a.x["xep_0004"].make_form(ftype="submit")
    answer.add_field(var="FORM_TYPE", ftype="hidden", value="urn:xmpp:hats:commands")
    answer.add_field(var="accountjid", value=bare(args.jid_b))
    answer.add_field(var="hat", value=HAT_URI)
    answer.add_field(var="title", value="Teacher's Assistant")
    done = await adhoc.send_command(room, DON, action="complete", payload=answer, sessionid=command["sessionid"], timeout=t)
    if done["command"]["status"] != "completed":
        raise StepFailed(f"{step}: expected completed, got {done}")
    say(f"{step}: ok")

    step = "6 bob's presence carries the hat, for A and for bob"
    wearing = [(HAT_URI, "Teacher's Assistant")]
    await a.wait_stanza(step, "presence", lambda s: s["from"].resource == "bob" and hats_of(s) == wearing, t, "bob with the hat")
    await b.wait_stanza(step, "presence", lambda s: s["from"].resource == "bob" and hats_of(s) == wearing, t, "own presence with the hat")
    say(f"{step}: ok")

    step = "7 A runs doff with the form at once; the hat is gone"
    off = a.x["xep_0004"].make_form(ftype="submit")
    off.add_field(var="accountjid", value=bare(args.jid_b))
    off.add_field(var="hat", value=HAT_URI)
    done = await adhoc.send_command(room, DOFF, payload=off, timeout=t)
    if done["command"]["status"] != "completed":
        raise StepFailed(f"{step}: expected completed, got {done}")
    await a.wait_stanza(step, "presence", lambda s: s["from"].resource == "bob" and hats_of(s) == [], t, "bob without the hat")
    say(f"{step}: ok")

    for cl in (a, b):
        await cl.logout("8 logout", t)


if __name__ == "__main__":
    parser = two_accounts_parser(__doc__)
    parser.add_argument("--room", required=True)
    parser.add_argument("--timeout", type=float, default=15.0)
    run(lambda: main(parser.parse_args()))
