#!/usr/bin/python3
"""Two slixmpp users against a live server: login, mutual subscription, presence, chat both
ways, then an offline message delivered with a XEP-0203 delay on the next login.

    /usr/bin/python3 two_users.py HOST PORT JID_A PASSWORD_A JID_B PASSWORD_B
        [--mechanism SCRAM-SHA-256] [--timeout 15]

Both clients must negotiate STARTTLS (any certificate accepted) and authenticate with exactly
the given SASL mechanism. Prints one line per step; exits 0 on success, 1 naming the failed step.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DELAY_NS, exchange_messages, Client, StepFailed, bare, run, say  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("jid_a")
    p.add_argument("password_a")
    p.add_argument("jid_b")
    p.add_argument("password_b")
    p.add_argument("--mechanism", default="SCRAM-SHA-256",
                   help="the only SASL mechanism the clients may use (default SCRAM-SHA-256)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds allowed for each step")
    return p.parse_args()


async def main(args):
    t = args.timeout
    a_bare, b_bare = bare(args.jid_a), bare(args.jid_b)
    tag = os.urandom(4).hex()

    def client(name, jid, pw):
        return Client(name, jid, pw, args.host, args.port, args.mechanism)

    def from_(jid_bare, ptype=None):
        def pred(s):
            if s["from"].bare != jid_bare:
                return False
            return ptype is None or s["type"] == ptype
        return pred

    def available_from(jid_bare):
        # type 'available' is slixmpp's name for presence without a type attribute
        return lambda s: s["from"].bare == jid_bare and s["type"] in ("available", "chat", "away", "xa", "dnd")

    def chat_from(jid_bare, body):
        return lambda s: s["from"].bare == jid_bare and s["body"] == body

    a = client("A", args.jid_a, args.password_a)
    b = client("B", args.jid_b, args.password_b)

    step = "1 login A"
    await a.login(step, t)
    step = "2 login B"
    await b.login(step, t)

    step = "3 A subscribes to B"
    a.send_presence(b_bare, "subscribe")
    await b.wait_stanza(step, "presence", from_(a_bare, "subscribe"), t, "A's subscription request")
    b.send_presence(a_bare, "subscribed")
    await a.wait_stanza(step, "presence", from_(b_bare, "subscribed"), t, "B's approval (subscribed)")
    say(f"{step}: ok — B got the request and approved it")

    step = "4 B subscribes to A"
    b.send_presence(a_bare, "subscribe")
    await a.wait_stanza(step, "presence", from_(b_bare, "subscribe"), t, "B's subscription request")
    a.send_presence(b_bare, "subscribed")
    await b.wait_stanza(step, "presence", from_(a_bare, "subscribed"), t, "A's approval (subscribed)")
    say(f"{step}: ok — A got the request and approved it")

    step = "5 A sees B available"
    p = await a.wait_stanza(step, "presence", available_from(b_bare), t, "available presence from B")
    say(f"{step}: ok — from {p['from']}")
    step = "6 B sees A available"
    p = await b.wait_stanza(step, "presence", available_from(a_bare), t, "available presence from A")
    say(f"{step}: ok — from {p['from']}")

    await exchange_messages(a, b, a_bare, b_bare, tag, t)

    step = "9 B goes offline"
    await b.logout(step, t)
    await a.wait_stanza(step, "presence", from_(b_bare, "unavailable"), t, "unavailable presence from B")
    say(f"{step}: ok — B disconnected and A saw B unavailable")

    step = "10 A messages offline B"
    offline_body = f"while you were away {tag}"
    a.send_message(b_bare, offline_body)
    # An error bounced to A would mean the server refused to store it.
    err = a.take("message", lambda s: s["type"] == "error")
    if err is not None:
        raise StepFailed(f"{step}: A got an error back: {err}")
    say(f"{step}: sent {offline_body!r}")

    step = "11 B logs in again"
    b2 = client("B (again)", args.jid_b, args.password_b)
    await b2.login(step, t)

    step = "12 B receives the offline message with a delay"
    m = await b2.wait_stanza(step, "message", chat_from(a_bare, offline_body), t,
                            f"the offline message {offline_body!r} from A")
    delay = m.xml.find(f"{{{DELAY_NS}}}delay")
    if delay is None:
        raise StepFailed(f"{step}: message has no <delay xmlns='{DELAY_NS}'/>: {m}")
    stamp = delay.get("stamp")
    if not stamp:
        raise StepFailed(f"{step}: delay element has no stamp: {m}")
    say(f"{step}: ok — {m['body']!r}, delay stamp {stamp}, from {delay.get('from')}")

    errors = [s for c in (a, b2) for k, s in c.inbox if k == "message" and s["type"] == "error"]
    if errors:
        raise StepFailed(f"13 no errors: unexpected error messages: {errors[0]}")

    step = "13 log out"
    await a.logout(step, t)
    await b2.logout(step, t)
    say(f"{step}: ok")


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: main(arguments))
