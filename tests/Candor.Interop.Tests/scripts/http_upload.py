#!/usr/bin/python3
"""Upload a file with slixmpp's XEP-0363 plugin (service discovery, slot, PUT over HTTPS) and download it again.
Run with SSL_CERT_FILE naming the server's certificate: the HTTPS connections verify it.

    /usr/bin/python3 http_upload.py HOST PORT FULL_JID PASSWORD
"""

import io
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, StepFailed, run_with_account, say  # noqa: E402

import aiohttp  # noqa: E402

# Content the test looks for on disk after the server stops: it must not be there in plaintext.
CONTENT = b"CANDOR-UPLOAD-PLAINTEXT-" * 8000


async def main(args):
    client = Client("uploader", args.jid, args.password, args.host, args.port, "SCRAM-SHA-256")
    client.x.register_plugin("xep_0363")
    await client.login("1 login", 20)
    upload = client.x["xep_0363"]
    # The plugin's own discovery (find_upload_service) hands coroutines to asyncio.wait, which Python 3.12 refuses:
    # the same walk, disco#items of the server then disco#info of each item, done here; slot and PUT are the plugin's.
    items = await client.x["xep_0030"].get_items(jid=client.x.boundjid.domain, timeout=10)
    for jid, _node, _name in items["disco_items"]["items"]:
        info = await client.x["xep_0030"].get_info(jid=jid, timeout=10)
        if ("store", "file") in [(i[0], i[1]) for i in info["disco_info"]["identities"]] \
                and "urn:xmpp:http:upload:0" in info["disco_info"]["features"]:
            upload.upload_service = info["from"]
            for form in info["disco_info"].iterables:
                if form["values"].get("FORM_TYPE") == ["urn:xmpp:http:upload:0"]:
                    upload.max_file_size = int(form["values"]["max-file-size"])
    if upload.upload_service is None or upload.max_file_size < len(CONTENT):
        raise StepFailed(f"2 discovery: service {upload.upload_service}, largest file {upload.max_file_size}")
    say(f"2 ok — {upload.upload_service} takes files up to {upload.max_file_size} bytes")
    try:
        url = await client.x["xep_0363"].upload_file(
            "picture.png", input_file=io.BytesIO(CONTENT), size=len(CONTENT), content_type="image/png", timeout=30)
    except Exception as e:  # noqa: BLE001
        raise StepFailed(f"3 upload: {e!r}") from e
    say(f"3 ok — uploaded {len(CONTENT)} bytes to {client.x['xep_0363'].upload_service}: {url}")
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            body = await response.read()
            if response.status != 200 or body != CONTENT:
                raise StepFailed(f"4 download: status {response.status}, {len(body)} bytes, same content: {body == CONTENT}")
            say(f"4 ok — downloaded the same {len(body)} bytes as {response.headers.get('Content-Type')}")
    print(f"URL {url}", flush=True)
    await client.logout("5 logout", 15)


if __name__ == "__main__":
    run_with_account(main, __doc__)
