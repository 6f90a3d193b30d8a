#!/usr/bin/python3
"""Requests HTTP File Upload slots (XEP-0363) for bench/upload.sh and prints one line per slot:
PUT-URL TAB GET-URL TAB header lines joined by TAB ("Name: value").

  upload_slots.py HOST PORT JID PASSWORD SERVICE COUNT SIZE CONTENT-TYPE

Plain-text c2s with PLAIN (both benchmark servers allow it on loopback only)."""
import asyncio
import sys

import slixmpp

host, port, jid, password, service, count, size, ctype = sys.argv[1:9]


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(jid, password)
        self.register_plugin('xep_0363')
        self['feature_mechanisms'].unencrypted_plain = True
        self.add_event_handler('session_start', self.start)
        self.failed = None

    async def start(self, _):
        try:
            for i in range(int(count)):
                iq = await self['xep_0363'].request_slot(slixmpp.JID(service), f'bench-{i}.bin', int(size), ctype, timeout=30)
                slot = iq['http_upload_slot']
                headers = [f"{h['name']}: {h['value']}" for h in slot['put']['headers']]
                print('\t'.join([slot['put']['url'], slot['get']['url'], *headers]), flush=True)
        except Exception as e:  # reported, and the exit code says it failed
            self.failed = e
        self.disconnect()


client = Client()
client.connect((host, int(port)), disable_starttls=True)
asyncio.get_event_loop().run_until_complete(client.disconnected)
if client.failed is not None:
    sys.exit(f'slot request failed: {client.failed!r}')
