#!/usr/bin/python3
"""The server's JID as a conversation partner, seen by slixmpp clients (issue 23).

    /usr/bin/python3 server_partner.py HOST PORT JID PASSWORD [--timeout 15]

JID must have no session online. Steps: A online (SCRAM-SHA-256); B logs in choosing its SASL mechanism itself
(slixmpp's own order, which tries SCRAM-*-PLUS with a binding type the server may not offer) and answers XEP-0092
as "Gajim 1.7.3 on Linux"; A's login notice names B that way. A sends the server a chat state, a marker and a
receipt (no answer, no error), a reply with a receipt request (an explanation and a receipt), then the commands
"sessions", "policy" and "help"; runs the ad-hoc command "List my sessions" (the list is in its note); asks the
server's uptime (XEP-0012). B sends "end others": A's stream ends. Prints B's SASL failures ("B SASL failures: …")
for the caller to compare with the server's log. Exits 0 on success, 1 naming the failed step.
"""

import argparse
import asyncio
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, bare, run, say  # noqa: E402

NOTICE_NS = "urn:xmpp:candor:login:0"
GAJIM = "Gajim 1.7.3 on Linux"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("jid")
    p.add_argument("password")
    p.add_argument("--timeout", type=float, default=15.0)
    return p.parse_args()


async def main(args):
    t = args.timeout
    domain = bare(args.jid).split("@")[1]
    tag = os.urandom(3).hex()

    def from_server(s):
        return str(s["from"]) == domain

    step = "1 A online"
    a = Client("A", f"{bare(args.jid)}/phone-{tag}", args.password, args.host, args.port, "SCRAM-SHA-256")
    for plugin in ("xep_0030", "xep_0004", "xep_0050", "xep_0012", "xep_0085", "xep_0184", "xep_0333"):
        a.x.register_plugin(plugin)
    # Receipts are sent by hand below, as a client answering the notice would.
    a.x["xep_0184"].auto_ack = False
    a.x["xep_0184"].auto_request = False
    await a.login(step, t)

    step = "2 B logs in with the mechanism it picks, answers its version as Gajim, A's notice names it"
    b = Client("B", f"{bare(args.jid)}/laptop-{tag}", args.password, args.host, args.port, None)
    b.x.register_plugin("xep_0092", {"software_name": "Gajim", "version": "1.7.3", "os": "Linux"})
    await b.login(step, t)
    failures = [str(d["condition"]) for e, d in b.markers if e == "failed_auth"]
    say(f"B SASL failures: {failures}")
    say(f"B SASL mechanism: {b.used_mechanism}")
    notice = await a.wait_stanza(step, "message", lambda s: from_server(s) and s.xml.find(f"{{{NOTICE_NS}}}login") is not None,
                                 t, "the login notice of B")
    if GAJIM not in notice["body"] or f"laptop-{tag}" not in notice["body"]:
        raise StepFailed(f"{step}: the notice does not name B as {GAJIM!r}: {notice['body']!r}")
    say(f"{step}: ok — {notice['body']}")

    step = "3 A's chat state, marker and receipt to the server: no answer, no error"
    msg = a.x.make_message(mto=domain, mtype="chat")
    msg["chat_state"] = "active"
    msg.send()
    marker = a.x.make_message(mto=domain, mtype="chat")
    marker["displayed"]["id"] = notice["id"]
    marker.send()
    receipt = a.x.make_message(mto=domain)
    receipt["receipt"] = notice["id"]
    receipt.send()
    await asyncio.sleep(1.0)
    answered = a.take("message", from_server)
    if answered is not None:
        raise StepFailed(f"{step}: the server answered: {answered}")
    say(f"{step}: ok")

    async def ask(step, text, expect, request_receipt=False):
        m = a.x.make_message(mto=domain, mbody=text, mtype="chat")
        if request_receipt:
            m["request_receipt"] = True
        m.send()
        answer = await a.wait_stanza(step, "message", lambda s: from_server(s) and s["body"] != "" and s["type"] == "chat",
                                     t, f"the server's answer to {text!r}")
        if expect not in answer["body"]:
            raise StepFailed(f"{step}: the answer to {text!r} lacks {expect!r}: {answer['body']!r}")
        return m, answer["body"]

    step = "4 A answers the notice and is told what the server is, with a receipt"
    sent, body = await ask(step, "that was me", "not a person", request_receipt=True)
    await a.wait_stanza(step, "message", lambda s: from_server(s) and s["receipt"] == sent["id"], t, "a receipt")
    if a.take("message", lambda s: s["type"] == "error"):
        raise StepFailed(f"{step}: an error came back")
    say(f"{step}: ok — {body!r}")

    step = "5 'sessions' lists both clients, one per line"
    _, body = await ask(step, "sessions", "2 session(s) online.")
    lines = body.split("\n")
    if not any(f"laptop-{tag}" in l and GAJIM in l for l in lines) or not any(f"phone-{tag}" in l for l in lines):
        raise StepFailed(f"{step}: the list lacks a client: {body!r}")
    say(f"{step}: ok — {body!r}")

    step = "6 'policy' names the policy and its digest"
    _, body = await ask(step, "policy", "SHA-256")
    if not re.search(r"SHA-256 [0-9a-f]{64}", body):
        raise StepFailed(f"{step}: no digest in {body!r}")
    say(f"{step}: ok — {body!r}")

    step = "7 'help' lists the commands"
    _, body = await ask(step, "help", "end others")
    say(f"{step}: ok")

    step = "8 ad-hoc 'List my sessions': the list is in the note too"
    try:
        result = await a.x["xep_0050"].send_command(domain, "list-sessions", timeout=t)
    except Exception as e:  # noqa: BLE001
        raise StepFailed(f"{step}: the command failed: {e!r}") from e
    note = result["command"]["notes"]
    text = "\n".join(n[1] for n in note)
    if f"laptop-{tag}" not in text or f"phone-{tag}" not in text or result["command"]["form"]["type"] != "result":
        raise StepFailed(f"{step}: note or form missing: {result}")
    say(f"{step}: ok — note {text!r}")

    step = "9 the server's uptime (XEP-0012)"
    try:
        last = await a.x["xep_0012"].get_last_activity(domain, timeout=t)
    except Exception as e:  # noqa: BLE001
        raise StepFailed(f"{step}: {e!r}") from e
    seconds = int(last["last_activity"]["seconds"])
    if seconds < 0:
        raise StepFailed(f"{step}: negative uptime {last}")
    say(f"{step}: ok — up {seconds} s")

    step = "10 B sends 'end others': A's stream ends"
    b.x.send_message(mto=domain, mbody="end others", mtype="chat")
    await b.wait_stanza(step, "message", lambda s: from_server(s) and "Ended 1 other session(s)." in s["body"], t, "the answer")
    await a._wait(step, t, lambda: True if any(e == "disconnected" for e, _ in a.markers) else None)
    say(f"{step}: ok")
    await b.logout("11 B logs out", t)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
