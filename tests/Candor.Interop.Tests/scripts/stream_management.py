#!/usr/bin/python3
"""Stream Management (XEP-0198) with slixmpp's own xep_0198 plugin: A enables stream management
with resumption, its TCP connection is cut without closing the stream, B sends messages meanwhile,
A reconnects and the plugin resumes the session: every message arrives exactly once, in order,
and B never sees A go offline.

    /usr/bin/python3 stream_management.py HOST PORT JID_A PASSWORD_A JID_B PASSWORD_B [--timeout 15]
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import bare, Client, run, say, StepFailed, two_accounts_parser  # noqa: E402


async def main(args):
    t = args.timeout
    a_bare, b_bare = bare(args.jid_a), bare(args.jid_b)
    tag = os.urandom(4).hex()
    a = Client("A", a_bare + "/phone", args.password_a, args.host, args.port, "SCRAM-SHA-256")
    a.x.register_plugin("xep_0198")
    for event in ("sm_enabled", "session_resumed", "sm_failed"):
        a.x.add_event_handler(event, a._marker_handler(event))
    b = Client("B", args.jid_b, args.password_b, args.host, args.port, "SCRAM-SHA-256")

    step = "1 login A with stream management"
    await a.login(step, t)
    await a._wait(step, t, lambda: True if any(e == "sm_enabled" for e, _ in a.markers) else None)
    sm = a.x.plugin["xep_0198"]
    if not sm.sm_id:
        raise StepFailed(f"{step}: <enabled/> without a resumption id")
    say(f"{step}: ok — resumable, id {sm.sm_id[:8]}...")
    await b.login("2 login B", t)

    step = "3 live message"
    b.x.send_message(mto=a_bare + "/phone", mbody=f"live {tag}", mtype="chat")
    await a.wait_stanza(step, "message", lambda s: s["body"] == f"live {tag}", t, "the live message")
    say(f"{step}: ok")

    step = "4 connection cut"
    a.markers = [(e, d) for e, d in a.markers if e not in ("disconnected", "session_start")]
    a.x.transport.abort()
    await a._wait(step, t, lambda: True if any(e == "disconnected" for e, _ in a.markers) else None)
    sent = [f"while away {i} {tag}" for i in range(5)]
    for body in sent:
        b.x.send_message(mto=a_bare + "/phone", mbody=body, mtype="chat")
    await asyncio.sleep(1)
    errors = [s for k, s in b.inbox if k == "message" and s["type"] == "error"]
    if errors:
        raise StepFailed(f"{step}: B got errors while A was away: {errors}")
    say(f"{step}: ok — B sent {len(sent)} messages while A was away")

    step = "5 resume"
    a.x.connect((a.host, a.port), force_starttls=True)
    await a._wait(step, t, lambda: True if any(e in ("session_resumed", "sm_failed") for e, _ in a.markers) else None)
    if any(e == "sm_failed" for e, _ in a.markers):
        raise StepFailed(f"{step}: the server refused to resume")
    say(f"{step}: ok — resumed")

    step = "6 every message once, in order"
    await a._wait(step, t, lambda: True if sum(1 for k, s in a.inbox if k == "message" and s["body"] in sent) >= len(sent) else None)
    await asyncio.sleep(1)
    got = [s["body"] for k, s in a.inbox if k == "message" and s["body"] in sent]
    if got != sent:
        raise StepFailed(f"{step}: expected {sent}, got {got}")
    if any(k == "presence" and s["from"].full == a_bare + "/phone" and s["type"] == "unavailable" for k, s in b.inbox):
        raise StepFailed(f"{step}: B saw A go offline")
    say(f"{step}: ok — {len(got)} messages, none twice, none missing")

    step = "7 the resumed session works"
    a.x.send_message(mto=b_bare, mbody=f"back {tag}", mtype="chat")
    await b.wait_stanza(step, "message", lambda s: s["body"] == f"back {tag}", t, "A's message")
    say(f"{step}: ok")
    for c in (a, b):
        await c.logout("8 logout", t)


if __name__ == "__main__":
    p = two_accounts_parser(__doc__)
    p.add_argument("--timeout", type=float, default=15.0)
    arguments = p.parse_args()
    run(lambda: main(arguments))
