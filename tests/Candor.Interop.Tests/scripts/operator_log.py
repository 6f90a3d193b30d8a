#!/usr/bin/python3
"""Issue 18, the user's side, through slixmpp's ad-hoc plugin (XEP-0050): the account lists the server's commands,
runs "What did the operator do with my account?" and finds the entry that created it with its inclusion proof, then
puts a contact in its roster and a vCard on the server, runs "Export my data" and reads both back from the XEP-0227
file it gets (a download link, or in-band in the result form). Prints "EXPORT ENTRY N", the log entry the export cites.

    /usr/bin/python3 operator_log.py HOST PORT JID PASSWORD --created-entry N
"""

import argparse
import asyncio
import os
import re
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, run, say  # noqa: E402

PIE = "{urn:xmpp:pie:0}"
ROSTER = "{jabber:iq:roster}"
VCARD = "{vcard-temp}"


async def command(client, step, node):
    domain = client.x.boundjid.domain
    try:
        iq = await client.x["xep_0050"].send_command(domain, node, timeout=30)
    except Exception as e:  # noqa: BLE001
        raise StepFailed(f"{step}: executing {node} failed: {e!r}") from e
    if iq["command"]["status"] != "completed":
        raise StepFailed(f"{step}: {node} ended with status {iq['command']['status']!r}, not completed")
    notes = "\n".join(text for _kind, text in iq["command"]["notes"])
    return iq, notes


async def main(args):
    client = Client("owner", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    for plugin in ("xep_0030", "xep_0004", "xep_0050", "xep_0054"):
        client.x.register_plugin(plugin)
    await client.login("1 login", 20)
    account = client.x.boundjid.bare

    items = await client.x["xep_0050"].get_commands(client.x.boundjid.domain, timeout=15)
    nodes = {node: name for _jid, node, name in items["disco_items"]["items"]}
    for node in ("operator-log", "export-my-data"):
        if node not in nodes:
            raise StepFailed(f"2 commands: {node} is not among the server's commands {nodes}")
    say(f"2 ok — the server offers {nodes['operator-log']!r} and {nodes['export-my-data']!r}")

    _iq, notes = await command(client, "3 operator log", "operator-log")
    created = [line for line in notes.split("\n")
               if re.match(rf"\s*{args.created_entry}\s", line) and "account.create" in line and account in line]
    if not created:
        raise StepFailed(f"3 operator log: no entry {args.created_entry} account.create {account} in:\n{notes}")
    if "inclusion proof in the head of size" not in notes or "Signed tree head" not in notes:
        raise StepFailed(f"3 operator log: the entries come without inclusion proofs or head:\n{notes}")
    say(f"3 ok — {created[0].strip()}")

    client.x.update_roster("friend@localhost", name="Friend", groups=["Pals"])
    vcard = client.x["xep_0054"].make_vcard()
    vcard["FN"] = "Owner Example"
    try:
        await client.x["xep_0054"].publish_vcard(vcard, timeout=15)
    except Exception as e:  # noqa: BLE001
        raise StepFailed(f"4 vCard: {e!r}") from e
    await client.x.get_roster()
    say("4 ok — a contact and a vCard stored")

    iq, notes = await command(client, "5 export", "export-my-data")
    form = iq["command"]["form"]
    values = form.get_values()
    if values.get("url"):
        import aiohttp
        import ssl
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        async with aiohttp.ClientSession() as session:
            async with session.get(values["url"], ssl=context) as response:
                if response.status != 200:
                    raise StepFailed(f"5 export: downloading {values['url']} answered {response.status}")
                text = (await response.read()).decode("utf-8")
        how = f"downloaded from {values['url']}"
    elif values.get("xep0227"):
        text = values["xep0227"] if isinstance(values["xep0227"], str) else "\n".join(values["xep0227"])
        how = "in-band"
    else:
        raise StepFailed(f"5 export: the result form has neither url nor xep0227: {form}")
    root = ET.fromstring(text.encode("utf-8"))
    user = root.find(f"{PIE}host/{PIE}user")
    if root.tag != f"{PIE}server-data" or user is None or f"{user.get('name')}@localhost" != account:
        raise StepFailed(f"5 export: not a XEP-0227 file of {account}:\n{text[:500]}")
    contact = user.find(f"{ROSTER}query/{ROSTER}item[@jid='friend@localhost']")
    if contact is None or contact.get("name") != "Friend" or [g.text for g in contact.findall(f"{ROSTER}group")] != ["Pals"]:
        raise StepFailed(f"5 export: the roster item is missing or wrong:\n{text}")
    if user.findtext(f"{VCARD}vCard/{VCARD}FN") != "Owner Example":
        raise StepFailed(f"5 export: the vCard is missing:\n{text}")
    if user.find("{urn:xmpp:pie:0#scram}scram-credentials") is not None:
        raise StepFailed("5 export: the user's own export carries the SCRAM credentials")
    cited = re.search(r"operator log entry #(\d+)", notes)
    if not cited:
        raise StepFailed(f"5 export: the note cites no operator log entry: {notes}")
    say(f"5 ok — XEP-0227 file {how}, {len(text)} characters, roster and vCard in it; {notes}")
    print(f"EXPORT ENTRY {cited.group(1)}", flush=True)
    await client.logout("6 logout", 15)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("jid")
    p.add_argument("password")
    p.add_argument("--created-entry", type=int, required=True)
    arguments = p.parse_args()
    run(lambda: main(arguments))
