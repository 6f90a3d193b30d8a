#!/usr/bin/python3
"""Ask the server's disco#info (XEP-0030) for its features, as clients that probe for private XML
storage (XEP-0049) do.

    /usr/bin/python3 server_disco.py HOST PORT JID PASSWORD
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, run_with_account, say  # noqa: E402

PRIVATE = "jabber:iq:private"


async def main(args):
    client = Client("disco", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    client.x.register_plugin("xep_0030")
    await client.login("1 login", 20)
    domain = client.x.boundjid.domain
    try:
        info = await asyncio.wait_for(client.x["xep_0030"].get_info(jid=domain), 15)
    except Exception as e:  # noqa: BLE001
        raise StepFailed(f"2 disco#info of {domain} failed: {e!r}") from e
    features = info["disco_info"]["features"]
    say(f"2 {domain} announces {sorted(features)}")
    if PRIVATE not in features:
        raise StepFailed(f"2 {domain}'s disco#info does not list {PRIVATE}")

    await client.logout("3 logout", 15)


if __name__ == "__main__":
    run_with_account(main, __doc__)
