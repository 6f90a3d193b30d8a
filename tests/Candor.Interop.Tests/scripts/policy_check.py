#!/usr/bin/python3
"""The published content policy, seen from slixmpp clients.

    /usr/bin/python3 policy_check.py HOST PORT full    [--timeout 15]
    /usr/bin/python3 policy_check.py HOST PORT reject  --text TEXT --rule RULE
    /usr/bin/python3 policy_check.py HOST PORT deliver --text TEXT

Accounts alice, bob and carol @localhost with passwords alice-secret, bob-secret, carol-secret must
exist; the server runs the policy of PolicyInteropTests (rules spam-1, cold-1, ru-1, cjk-1, sep-1).

full: alice (a stranger to bob) and carol (in bob's roster) write to bob.
  - a message a rule matches: alice gets policy-violation naming the rule, bob receives nothing
  - a clean message is delivered
  - a strangers-only rule refuses alice's message and delivers carol's
  - normalization: full-width, zero-width, Cyrillic, CJK, separated letters all match
  - an OMEMO message (fallback body, encrypted payload) is delivered uninspected
  - disco#info announces the policy digest; the document at the announced URL has that SHA-256,
    and the XEP-0504 data policy form is there
reject / deliver: alice sends TEXT to bob, expecting refusal by RULE or delivery.
Prints one line per step; exits 0 on success, 1 naming the failed step.
"""

import argparse
import asyncio
import hashlib
import os
import sys
import urllib.request
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, run, say  # noqa: E402

DOMAIN = "localhost"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DATA = "jabber:x:data"
ROSTER = "jabber:iq:roster"
OMEMO = "eu.siacs.conversations.axolotl"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("mode", choices=["full", "reject", "deliver"])
    p.add_argument("--text")
    p.add_argument("--rule")
    p.add_argument("--timeout", type=float, default=15.0)
    return p.parse_args()


def user(name, args):
    return Client(name, f"{name}@{DOMAIN}", f"{name}-secret", args.host, args.port, "SCRAM-SHA-256")


def error_of(stanza):
    """(condition, text) of an error stanza."""
    err = stanza.xml.find("{jabber:client}error")
    if err is None:
        return None, None
    condition = next((c.tag.split("}")[1] for c in err if c.tag.startswith("{" + STANZAS) and not c.tag.endswith("}text")), None)
    text = err.find(f"{{{STANZAS}}}text")
    return condition, (text.text if text is not None else None)


async def expect_reject(step, sender, receiver, body, rule, t, extra=None):
    send(sender, receiver, body, extra)
    err = await sender.wait_stanza(step, "message", lambda s: s["type"] == "error" and s["body"] == body, t,
                                   f"a policy-violation error for {body!r}")
    condition, text = error_of(err)
    if condition != "policy-violation":
        raise StepFailed(f"{step}: expected policy-violation, got {condition!r}: {err}")
    if not text or f"rule {rule}:" not in text:
        raise StepFailed(f"{step}: the error text {text!r} does not name rule {rule}")
    # The recipient gets nothing: a marker sent afterwards arrives first and alone.
    marker = f"marker {os.urandom(3).hex()}"
    send(sender, receiver, marker)
    await receiver.wait_stanza(step, "message", lambda s: s["body"] == marker, t, "the marker message")
    leaked = receiver.take("message", lambda s: s["body"] == body)
    if leaked is not None:
        raise StepFailed(f"{step}: the recipient received the refused message: {leaked}")
    say(f"{step}: ok — refused with {text!r}; recipient got nothing")


async def expect_deliver(step, sender, receiver, body, t, extra=None):
    send(sender, receiver, body, extra)
    await receiver.wait_stanza(step, "message", lambda s: s["body"] == body and s["type"] != "error", t, f"the message {body!r}")
    err = sender.take("message", lambda s: s["type"] == "error")
    if err is not None:
        raise StepFailed(f"{step}: the sender got an error: {err}")
    say(f"{step}: ok — delivered")


def send(sender, receiver, body, extra=None):
    m = sender.x.make_message(mto=receiver.x.boundjid.bare, mbody=body, mtype="chat")
    if extra is not None:
        m.xml.append(extra)
    m.send()


async def iq(client, step, xml, t, itype="get", to=DOMAIN):
    request = client.x.make_iq(ito=to, itype=itype)
    request.append(ET.fromstring(xml))
    try:
        return await request.send(timeout=t)
    except Exception as e:  # noqa: BLE001
        raise StepFailed(f"{step}: iq failed: {e!r}") from e


def form_fields(query, form_type):
    for x in query.findall(f"{{{DATA}}}x"):
        fields = {}
        for f in x.findall(f"{{{DATA}}}field"):
            fields[f.get("var")] = [v.text or "" for v in f.findall(f"{{{DATA}}}value")]
        if fields.get("FORM_TYPE") == [form_type]:
            return fields
    return None


async def full(args):
    t = args.timeout
    alice, bob, carol = user("alice", args), user("bob", args), user("carol", args)
    await alice.login("1 login alice", t)
    await bob.login("2 login bob", t)
    await carol.login("3 login carol", t)

    step = "4 bob adds carol to his roster"
    await iq(bob, step, f"<query xmlns='{ROSTER}'><item jid='carol@{DOMAIN}' name='Carol'/></query>", t, itype="set", to=None)
    say(f"{step}: ok")

    await expect_reject("5 a matching message is refused", alice, bob, "Hello! BUY NOW, limited offer", "spam-1", t)
    await expect_deliver("6 a clean message is delivered", alice, bob, "Hello Bob, lunch tomorrow?", t)
    await expect_reject("7 strangers-only rule refuses a stranger", alice, bob, "great crypto opportunity", "cold-1", t)
    await expect_deliver("8 strangers-only rule lets a contact through", carol, bob, "great crypto opportunity", t)
    await expect_reject("9 full-width letters", alice, bob, "ＢＵＹ　ＮＯＷ", "spam-1", t)
    await expect_reject("10 zero-width characters", alice, bob, "bu\u200by n\u00adow please", "spam-1", t)
    await expect_reject("11 Cyrillic, upper case", alice, bob, "КУПИТЬ СЕЙЧАС", "ru-1", t)
    await expect_reject("12 CJK, half-width katakana", alice, bob, "今すぐｶｲﾀｲ", "cjk-1", t)
    await expect_reject("13 CJK inside a sentence", alice, bob, "请立即购买吧", "cjk-1", t)
    await expect_reject("14 separated letters", alice, bob, "s.p.a.m.m.e.r here", "sep-1", t)

    step = "15 an OMEMO message is not inspected"
    encrypted = ET.fromstring(f"<encrypted xmlns='{OMEMO}'><header sid='1'><key rid='2'>AAAA</key><iv>AAAA</iv></header>"
                              f"<payload>AAAA</payload></encrypted>")
    await expect_deliver(step, alice, bob,
                         "I sent you an OMEMO encrypted message but your client doesn't seem to support that. buy now",
                         t, extra=encrypted)

    step = "16 disco announces the digest of the published document"
    result = await iq(alice, step, f"<query xmlns='{DISCO_INFO}'/>", t)
    query = result.xml.find(f"{{{DISCO_INFO}}}query")
    policy = form_fields(query, "urn:xmpp:candor:policy:0")
    if policy is None:
        raise StepFailed(f"{step}: no urn:xmpp:candor:policy:0 form in {result}")
    digest, url = policy.get("sha-256", [None])[0], policy.get("url", [None])[0]
    if not digest or not url:
        raise StepFailed(f"{step}: the form lacks sha-256 or url: {policy}")
    with urllib.request.urlopen(url, timeout=t) as response:
        document = response.read()
        content_type = response.headers.get("Content-Type")
    served = hashlib.sha256(document).hexdigest()
    if served != digest:
        raise StepFailed(f"{step}: disco says {digest}, the document at {url} hashes to {served}")
    if not content_type.startswith("application/json"):
        raise StepFailed(f"{step}: {url} served {content_type}")
    say(f"{step}: ok — {url} hashes to the announced {digest}")

    step = "17 the XEP-0504 data policy form"
    data_policy = form_fields(query, "urn:xmpp:data-policy:0")
    if data_policy is None:
        raise StepFailed(f"{step}: no urn:xmpp:data-policy:0 form")
    for var, value in (("encryption_at_rest", "true"), ("auth_data", "plain"), ("data_retention", "infinite")):
        if data_policy.get(var) != [value]:
            raise StepFailed(f"{step}: {var} is {data_policy.get(var)}, expected {value}")
    say(f"{step}: ok — {sorted(k for k in data_policy if k != 'FORM_TYPE')}")

    for c in (alice, bob, carol):
        await c.logout("18 log out", t)


async def single(args):
    t = args.timeout
    alice, bob = user("alice", args), user("bob", args)
    await alice.login("1 login alice", t)
    await bob.login("2 login bob", t)
    if args.mode == "reject":
        await expect_reject("3 refused", alice, bob, args.text, args.rule, t)
    else:
        await expect_deliver("3 delivered", alice, bob, args.text, t)
    await alice.logout("4 log out", t)
    await bob.logout("4 log out", t)


if __name__ == "__main__":
    arguments = parse_args()
    run(lambda: full(arguments) if arguments.mode == "full" else single(arguments))
