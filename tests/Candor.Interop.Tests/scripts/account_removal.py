#!/usr/bin/python3
"""Issue 18: an account removes itself with slixmpp's in-band registration plugin (XEP-0077), confirming with its
password. cancel_registration() (a bare <remove/>) gets the cancellation form in a not-allowed error (XEP-0077 §3.2);
the form submitted with a wrong password gets not-authorized and the session goes on; submitted with the right
password the removal succeeds and the server ends the stream. Prints "STREAM ERROR <text>" with the server's reason.

    /usr/bin/python3 account_removal.py HOST PORT JID PASSWORD
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, run_with_account, say  # noqa: E402
from slixmpp.exceptions import IqError  # noqa: E402

CANCEL = "jabber:iq:register:cancel"


async def submit(client, password):
    """The cancellation form, filled in as XEP-0077's example does (the bare JID as username)."""
    iq = client.x.Iq()
    iq["type"] = "set"
    form = iq["register"]["form"]
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden", value=CANCEL)
    form.add_field(var="username", value=client.x.boundjid.bare)
    form.add_field(var="password", ftype="text-private", value=password)
    return await iq.send(timeout=20)


async def main(args):
    client = Client("leaver", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    for plugin in ("xep_0004", "xep_0066", "xep_0077", "xep_0199"):
        client.x.register_plugin(plugin)
    await client.login("1 login", 20)

    try:
        await client.x["xep_0077"].cancel_registration(timeout=20)
        raise StepFailed("2 remove: a bare <remove/> removed the account without asking for the password")
    except IqError as e:
        condition = e.iq["error"]["condition"]
        form = e.iq["register"]["form"]
        fields = form.get_fields()
        form_type = form.get_values().get("FORM_TYPE")
        if isinstance(form_type, list):  # slixmpp reads the hidden field as a list of values
            form_type = form_type[0] if form_type else None
        if condition != "not-allowed" or form_type != CANCEL or "password" not in fields:
            raise StepFailed(f"2 remove: expected not-allowed with the {CANCEL} form, got {condition}: {e.iq}")
        if fields["password"]["type"] != "text-private" or not fields["password"]["required"]:
            raise StepFailed(f"2 remove: the password field is not a required text-private field: {fields['password']}")
    say(f"2 ok — <remove/> answered with the form {form['title']!r} (fields {sorted(fields)})")

    try:
        await submit(client, "not-the-password")
        raise StepFailed("3 wrong password: the account was removed")
    except IqError as e:
        if e.iq["error"]["condition"] != "not-authorized":
            raise StepFailed(f"3 wrong password: expected not-authorized, got {e.iq['error']['condition']}: {e.iq}")
    try:
        await client.x["xep_0199"].ping(jid=client.x.boundjid.domain, timeout=15)
    except Exception as e:  # noqa: BLE001
        raise StepFailed(f"3 wrong password: the session did not go on: {e!r}") from e
    say("3 ok — a wrong password is not-authorized, the session goes on")

    client.markers = []
    result = await submit(client, args.password)
    if result["type"] != "result":
        raise StepFailed(f"4 remove: {result}")

    def ended():
        for event, data in client.markers:
            if event == "stream_error":
                return f"STREAM ERROR {data['condition']}: {data['text']}"
            if event == "disconnected":
                return "DISCONNECTED"
        return None
    end = await client._wait("4 stream end", 20, ended)
    say("4 ok — removed; the server ended the stream")
    print(end, flush=True)


if __name__ == "__main__":
    run_with_account(main, __doc__)
