#!/usr/bin/python3
"""Fetch every legacy OMEMO bundle an account publishes and verify its signed pre-key signature with python-xeddsa
the way XEdDSA specifies (the Ed25519 key mapped from the published Curve25519 identity key with sign bit 0).

    /usr/bin/python3 omemo_xeddsa_check.py HOST PORT JID PASSWORD OWNER --devices N

Prints "XEDDSA OK <device>" per bundle; fails unless the legacy device list names N devices and all verify.
"""

import base64
import os
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True  # keep the scripts folder clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, account_arguments, run, say  # noqa: E402

import xeddsa  # noqa: E402  (Debian python3-xeddsa, installed with python3-oldmemo)

LEGACY = "eu.siacs.conversations.axolotl"
PUBSUB = "http://jabber.org/protocol/pubsub"


async def item(c, owner, node, step):
    iq = c.x.make_iq_get(ito=owner)
    ET.SubElement(ET.SubElement(iq.xml, f"{{{PUBSUB}}}pubsub"), f"{{{PUBSUB}}}items", node=node)
    try:
        result = await iq.send(timeout=15)
    except Exception as e:  # noqa: BLE001 - an error reply or a timeout fails the step
        raise StepFailed(f"{step}: {e!r}") from e
    found = result.xml.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}items/{{{PUBSUB}}}item")
    if found is None or len(found) == 0:
        raise StepFailed(f"{step}: no item in {node}: {result}")
    return found[0]


async def main(args):
    c = Client("checker", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    await c.login("1 login", 15)
    devices = [d.get("id") for d in (await item(c, args.owner, f"{LEGACY}.devicelist", "2 device list")).findall(f"{{{LEGACY}}}device")]
    if len(devices) != args.devices:
        raise StepFailed(f"2 device list: expected {args.devices} devices, got {devices}")
    for device in devices:
        step = f"3 bundle of device {device}"
        bundle = await item(c, args.owner, f"{LEGACY}.bundles:{device}", step)
        identity = base64.b64decode(bundle.findtext(f"{{{LEGACY}}}identityKey"))
        spk = base64.b64decode(bundle.findtext(f"{{{LEGACY}}}signedPreKeyPublic"))
        signature = base64.b64decode(bundle.findtext(f"{{{LEGACY}}}signedPreKeySignature"))
        if len(identity) != 33 or identity[0] != 5:
            raise StepFailed(f"{step}: the identity key is not 0x05 and 32 bytes")
        ed = xeddsa.curve25519_pub_to_ed25519_pub(identity[1:], False)
        if not xeddsa.ed25519_verify(signature, ed, spk):
            raise StepFailed(f"{step}: the signature fails XEdDSA verification (sign bit of the signature: {signature[63] >> 7})")
        say(f"XEDDSA OK {device}")
    await c.logout("4 log out", 15)


if __name__ == "__main__":
    parser = account_arguments(__doc__)
    parser.add_argument("owner")
    parser.add_argument("--devices", type=int, required=True)
    arguments = parser.parse_args()
    run(lambda: main(arguments))
