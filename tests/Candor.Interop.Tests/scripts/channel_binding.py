#!/usr/bin/python3
"""Log in letting slixmpp choose its SASL mechanism, and check how channel binding went.

slixmpp 1.8 prefers SCRAM-*-PLUS and always binds with tls-unique; it does not read the XEP-0440
<sasl-channel-binding/> feature. Candor binds to tls-server-end-point (announced with XEP-0440), so each
-PLUS attempt must be refused at once with <malformed-request/> naming the RFC 5802 error
unsupported-channel-binding-type (never <not-authorized/>, which says "wrong password"), and slixmpp must
then log in on the same stream with plain SCRAM. A -PLUS success (a client that binds right) passes too.

    /usr/bin/python3 channel_binding.py HOST PORT JID PASSWORD
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, run_with_account, say  # noqa: E402


async def main(args):
    client = Client("cb", args.jid, args.password, args.host, args.port, None)
    await client.login("1 login with slixmpp's own choice of mechanism", 30)
    offered = sorted(client.x["feature_mechanisms"].mech_list)
    say(f"2 server offered {offered}; failures before success: {client.failed_mechanisms or 'none'}; "
        f"logged in with {client.used_mechanism}")
    for mechanism, condition, text in client.failed_mechanisms:
        if mechanism is None or not mechanism.endswith("-PLUS"):
            raise StepFailed(f"2 a mechanism without channel binding failed: {mechanism} {condition} {text!r}")
        if condition != "malformed-request" or not text.startswith("unsupported-channel-binding-type"):
            raise StepFailed(f"2 {mechanism} failed with <{condition}/> {text!r}, expected <malformed-request/> "
                             "naming unsupported-channel-binding-type")
    if len(client.failed_mechanisms) > 2:
        raise StepFailed(f"2 more failures than -PLUS mechanisms offered: {client.failed_mechanisms}")
    if client.used_mechanism not in ("SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"):
        raise StepFailed(f"2 logged in with {client.used_mechanism}, expected SCRAM")
    await client.logout("3 logout", 15)


if __name__ == "__main__":
    run_with_account(main, __doc__)
