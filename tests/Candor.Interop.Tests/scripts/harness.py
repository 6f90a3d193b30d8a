"""Small step-by-step harness around slixmpp for the interop scripts.

Run the scripts with the Debian interpreter (/usr/bin/python3, package python3-slixmpp).
Every step has a timeout; a failed step raises StepFailed, and main() prints which step
failed and exits with status 1.
"""

import argparse
import asyncio
import logging
import ssl
import sys
import time

try:
    import slixmpp
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import StanzaPath
except ImportError as e:  # pragma: no cover - environment problem, reported clearly
    print(f"FAIL: cannot import slixmpp ({e}); install the Debian package python3-slixmpp "
          f"and run this script with /usr/bin/python3", flush=True)
    sys.exit(2)

DELAY_NS = "urn:xmpp:delay"


class StepFailed(Exception):
    pass


def say(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


class Client:
    """One XMPP client connection that records everything it receives.

    Stanzas are kept in an inbox so a step can wait for something that arrived before the
    step started (no races between sending and registering a waiter).
    """

    def __init__(self, name, jid, password, host, port, mechanism):
        self.name = name
        self.host = host
        self.port = port
        self.mechanism = mechanism
        x = slixmpp.ClientXMPP(jid, password, sasl_mech=mechanism)
        # Test servers use self-signed certificates: accept any certificate, but TLS itself
        # is mandatory (force_starttls in connect()).
        x.ssl_context.check_hostname = False
        x.ssl_context.verify_mode = ssl.CERT_NONE
        # Subscriptions are answered by the script itself, explicitly, step by step.
        x.roster.auto_authorize = None
        x.roster.auto_subscribe = False
        x.whitespace_keepalive = False
        self.x = x
        self.inbox = []          # (kind, stanza) in arrival order
        self.markers = []        # (event name, data)
        self.changed = asyncio.Event()
        self.used_mechanism = None
        self.failed_mechanisms = []  # (mechanism, condition, text) of each SASL failure
        self.tls = False
        x.register_handler(Callback("harness message", StanzaPath("message"),
                                    lambda s: self._record("message", s)))
        x.register_handler(Callback("harness presence", StanzaPath("presence"),
                                    lambda s: self._record("presence", s)))
        for event in ("session_start", "disconnected", "failed_all_auth", "failed_auth", "no_auth",
                      "connection_failed", "stream_error", "ssl_invalid_chain", "auth_success",
                      "tls_success", "ssl_cert", "session_bind"):
            x.add_event_handler(event, self._marker_handler(event))

    # ------------------------------------------------------------------ recording
    def _marker_handler(self, event):
        def handler(data=None):
            if event == "auth_success":
                mech = self.x["feature_mechanisms"].mech
                self.used_mechanism = getattr(mech, "name", None)
            if event == "failed_auth":
                # slixmpp fires this before choosing its next mechanism: mech is still the one that failed.
                mech = getattr(self.x["feature_mechanisms"].mech, "name", None)
                self.failed_mechanisms.append((mech, str(data["condition"]), str(data["text"])))
            if event in ("tls_success", "ssl_cert"):
                self.tls = True
            self.markers.append((event, data))
            self.changed.set()
        return handler

    def _record(self, kind, stanza):
        self.inbox.append((kind, stanza))
        self.changed.set()

    async def _wait(self, step, timeout, check):
        """Wait until check() returns something other than None; return it."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result is not None:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StepFailed(f"{step}: timed out after {timeout:.0f}s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def take(self, kind, predicate):
        for i, (k, s) in enumerate(self.inbox):
            if k == kind and predicate(s):
                del self.inbox[i]
                return s
        return None

    async def wait_stanza(self, step, kind, predicate, timeout, what=None):
        """Wait for a stanza of this kind matching predicate; on timeout, say what did arrive."""
        try:
            return await self._wait(step, timeout, lambda: self.take(kind, predicate))
        except StepFailed as e:
            others = [str(s) for k, s in self.inbox if k == kind][-5:]
            seen = "\n    ".join(others) if others else "(none)"
            raise StepFailed(f"{e}: {self.name} was waiting for {what or kind}; "
                             f"other {kind} stanzas it received:\n    {seen}") from None

    def _fatal_marker(self):
        for event, data in self.markers:
            if event in ("failed_all_auth", "no_auth", "connection_failed", "stream_error",
                         "ssl_invalid_chain", "disconnected"):
                return event, data
        return None

    # ------------------------------------------------------------------ actions
    async def login(self, step, timeout):
        say(f"{step}: {self.name} connects to {self.host}:{self.port} as {self.x.boundjid.bare} "
            f"(STARTTLS, {self.mechanism or 'mechanism of its own choice'})")
        self.x.connect((self.host, self.port), force_starttls=True)

        def check():
            fatal = self._fatal_marker()
            if fatal:
                offered = sorted(self.x["feature_mechanisms"].mech_list)
                failures = [str(d["condition"]) for e, d in self.markers if e == "failed_auth"]
                detail = f", SASL failure: {', '.join(failures)}" if failures else ""
                raise StepFailed(f"{step}: {self.name} got '{fatal[0]}' before the session started"
                                 f"{detail}; server offered SASL mechanisms {offered}"
                                 f"{'' if self.tls else ' (TLS not negotiated)'}")
            if any(e == "session_start" for e, _ in self.markers):
                return True
            return None
        await self._wait(step, timeout, check)
        if not self.tls:
            raise StepFailed(f"{step}: {self.name} session started without TLS")
        if self.mechanism is not None and self.used_mechanism is not None and self.used_mechanism != self.mechanism:
            raise StepFailed(f"{step}: {self.name} authenticated with {self.used_mechanism}, "
                             f"expected {self.mechanism}")
        # Standard client start: fetch the roster, then send initial presence.
        try:
            await asyncio.wait_for(self.x.get_roster(), timeout)
        except Exception as e:  # noqa: BLE001 - report any failure as the step's failure
            raise StepFailed(f"{step}: {self.name} roster get failed: {e!r}") from e
        self.x.send_presence()
        # The server reflects initial presence to its sender (RFC 6121 §4.2.2): once it is back, the session is
        # available, so a message another client sends next is delivered live, not raced into offline storage.
        me = self.x.boundjid.full
        await self._wait(f"{step} (own presence back)", timeout, lambda: True if any(
            k == "presence" and str(st["from"]) == me and st["type"] in ("available", "") for k, st in self.inbox) else None)
        say(f"{step}: ok — {self.name} is {self.x.boundjid.full}, TLS on, "
            f"SASL {self.used_mechanism or '(mechanism not reported)'}")

    async def logout(self, step, timeout):
        self.markers = [(e, d) for e, d in self.markers if e != "disconnected"]
        self.x.disconnect(wait=min(timeout, 5))

        def check():
            return True if any(e == "disconnected" for e, _ in self.markers) else None
        await self._wait(step, timeout, check)

    def send_message(self, to, body):
        self.x.send_message(mto=to, mbody=body, mtype="chat")

    def send_presence(self, to, ptype):
        self.x.send_presence(pto=to, ptype=ptype)


async def exchange_messages(a, b, a_bare, b_bare, tag, timeout):
    """Steps 7 and 8 of the two-user scenarios: a chat message A -> B (non-ASCII and markup), and B's reply to
    the full JID it came from."""
    def chat_from(jid_bare, body):
        return lambda s: s["from"].bare == jid_bare and s["body"] == body

    step = "7 message A -> B"
    body = f"hello B from A {tag} — ünïcödé <&>"
    a.send_message(b_bare, body)
    m = await b.wait_stanza(step, "message", chat_from(a_bare, body), timeout, f"a message from A with body {body!r}")
    say(f"{step}: ok — B received {m['body']!r} from {m['from']}")

    step = "8 message B -> A"
    body = f"hello A from B {tag}"
    b.send_message(m["from"], body)
    m = await a.wait_stanza(step, "message", chat_from(b_bare, body), timeout, f"a message from B with body {body!r}")
    say(f"{step}: ok — A received {m['body']!r} from {m['from']}")


def account_arguments(doc):
    """An argument parser for a script's usage doc, with the HOST PORT JID PASSWORD every account script starts with."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("host", "port", "jid", "password"):
        p.add_argument(name, type=int if name == "port" else str)
    return p


def bare(jid):
    return slixmpp.JID(jid).bare


def describe(stanza):
    return str(stanza)


def run_with_account(main, description):
    """Parse HOST PORT JID PASSWORD from the command line and run main(args) like run() does."""
    arguments = account_arguments(description).parse_args()
    run(lambda: main(arguments))


def two_accounts_parser(description):
    """An argument parser for HOST PORT JID_A PASSWORD_A JID_B PASSWORD_B; the caller adds its options."""
    p = argparse.ArgumentParser(description=description)
    for name, kind in (("host", str), ("port", int), ("jid_a", str), ("password_a", str), ("jid_b", str), ("password_b", str)):
        p.add_argument(name, type=kind)
    return p


def run(main_coro_factory):
    """Run main(loop) and turn StepFailed into exit status 1 with a clear message."""
    logging.basicConfig(level=logging.ERROR, format="slixmpp %(levelname)s %(name)s: %(message)s")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    status = 0
    try:
        loop.run_until_complete(main_coro_factory())
        say("PASS")
    except StepFailed as e:
        say(f"FAIL: {e}")
        status = 1
    except Exception as e:  # noqa: BLE001
        say(f"FAIL: unexpected error {e!r}")
        status = 1
        raise
    finally:
        _cancel_pending(loop)
    sys.exit(status)


def _cancel_pending(loop):
    """Cancel slixmpp's background tasks so the interpreter exits quietly."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
