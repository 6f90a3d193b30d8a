#!/usr/bin/python3
"""Holds COUNT half-open connections to HOST:PORT, each from its own loopback address 127.OCTET.y.z (Linux
routes all of 127.0.0.0/8 to the loopback interface), the way a small botnet would. With --xmpp a third send
nothing, a third a stream header cut short and then one byte every two seconds, a third a whole header and
then nothing; without it every connection is silent. Whenever the server closes one, it is opened again from
the same address, so the flood keeps its size. Prints READY once every connection has been opened once, a
STATS line every second, and stops by itself after --seconds.

    half_open_flood.py HOST PORT COUNT --octet 10 [--xmpp] [--seconds 120]
"""
import argparse
import asyncio
import sys

PARTIAL = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' ")
FULL = PARTIAL + b"version='1.0'>"

stats = {"open": 0, "connects": 0, "closed": 0, "failures": 0}


async def hold(host, port, address, kind):
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port, local_addr=(address, 0))
        except OSError:
            stats["failures"] += 1
            await asyncio.sleep(0.1)
            continue
        stats["connects"] += 1
        stats["open"] += 1
        try:
            if kind == 1:
                writer.write(PARTIAL)
            elif kind == 2:
                writer.write(FULL)
            while True:
                if kind == 1:
                    try:
                        data = await asyncio.wait_for(reader.read(4096), 2)
                    except asyncio.TimeoutError:
                        writer.write(b" ")
                        continue
                else:
                    data = await reader.read(4096)
                if not data:
                    break
        except OSError:
            pass
        finally:
            stats["open"] -= 1
            stats["closed"] += 1
            writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--octet", type=int, default=10)
    parser.add_argument("--xmpp", action="store_true")
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()
    assert args.count <= 62500
    tasks = [asyncio.ensure_future(hold(args.host, args.port,
                                        f"127.{args.octet}.{slot // 250}.{slot % 250 + 1}",
                                        slot % 3 if args.xmpp else 0))
             for slot in range(args.count)]
    ready = False
    loop = asyncio.get_running_loop()
    end = loop.time() + args.seconds
    while loop.time() < end:
        await asyncio.sleep(1)
        if not ready and stats["connects"] + stats["failures"] >= args.count:
            ready = True
            print("READY", flush=True)
        print("STATS open={open} connects={connects} closed={closed} failures={failures}".format(**stats), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
