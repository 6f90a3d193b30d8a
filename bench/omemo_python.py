#!/usr/bin/python3
"""python-omemo's cost for what OmemoBenchmarks measures (docs/PERFORMANCE.md, "OMEMO"): twomemo's Double Ratchet
(DoubleRatchetImpl with its KDFs and AEAD) encrypting and decrypting a 48-byte key per device, plus the payload's
HKDF + AES-CBC + HMAC through twomemo's own crypto provider. One-way and ping-pong, as in the C# benchmark. With
"legacy", oldmemo's (eu.siacs.conversations.axolotl: libsignal framing, AES-128-GCM payload as oldmemo does it).

    /usr/bin/python3 bench/omemo_python.py [SECONDS] [legacy]
"""
import asyncio
import os
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from doubleratchet.recommended import diffie_hellman_ratchet_curve25519 as dh
from doubleratchet.recommended.crypto_provider_impl import CryptoProviderImpl
from doubleratchet.recommended import HashFunction

LEGACY = len(sys.argv) > 2 and sys.argv[2] == "legacy"
if LEGACY:
    from oldmemo.oldmemo import AEADImpl, DoubleRatchetImpl, MessageChainKDFImpl, RootChainKDFImpl
else:
    from twomemo.twomemo import AEADImpl, DoubleRatchetImpl, MessageChainKDFImpl, RootChainKDFImpl

AD = os.urandom(66 if LEGACY else 64)
PLAINTEXT = os.urandom(260)


async def legacy_payload_round_trip():
    key, iv = os.urandom(16), os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, PLAINTEXT, None)
    AESGCM(key).decrypt(iv, sealed, None)
    return key + sealed[-16:]


async def payload_round_trip():
    if LEGACY:
        return await legacy_payload_round_trip()
    key = os.urandom(32)
    material = await CryptoProviderImpl.hkdf_derive(HashFunction.SHA_256, 80, b"\0" * 32, b"OMEMO Payload", key)
    ciphertext = await CryptoProviderImpl.aes_cbc_encrypt(material[:32], material[64:], PLAINTEXT)
    tag = (await CryptoProviderImpl.hmac_calculate(material[32:64], HashFunction.SHA_256, ciphertext))[:16]
    material = await CryptoProviderImpl.hkdf_derive(HashFunction.SHA_256, 80, b"\0" * 32, b"OMEMO Payload", key)
    assert (await CryptoProviderImpl.hmac_calculate(material[32:64], HashFunction.SHA_256, ciphertext))[:16] == tag
    await CryptoProviderImpl.aes_cbc_decrypt(material[:32], material[64:], ciphertext)
    return key + tag


async def pair():
    shared = os.urandom(32)
    bob_priv = dh.DiffieHellmanRatchet._generate_priv()
    bob_pub = dh.DiffieHellmanRatchet._derive_pub(bob_priv)
    args = (dh.DiffieHellmanRatchet, RootChainKDFImpl, MessageChainKDFImpl, DoubleRatchetImpl.MESSAGE_CHAIN_CONSTANT, 1000, 1000, AEADImpl)
    alice, first = await DoubleRatchetImpl.encrypt_initial_message(*args, shared, bob_pub, os.urandom(32 if LEGACY else 48), AD)
    bob, _ = await DoubleRatchetImpl.decrypt_initial_message(*args, shared, bob_priv, first, AD)
    return alice, bob


async def measure(name, seconds, step):
    rounds, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        await step()
        rounds += 1
    print(f"{name}: {(time.perf_counter() - start) / rounds * 1e6:.0f} µs per round ({rounds} rounds)")


async def main(seconds):
    alice, bob = await pair()

    async def one_way():
        key = await payload_round_trip()
        await bob.decrypt_message(await alice.encrypt_message(key, AD), AD)

    async def ping_pong():
        await bob.decrypt_message(await alice.encrypt_message(await payload_round_trip(), AD), AD)
        await alice.decrypt_message(await bob.encrypt_message(await payload_round_trip(), AD), AD)

    name = "oldmemo" if LEGACY else "twomemo"
    await measure(f"python-omemo ({name}) one-way, 1 device", seconds, one_way)
    await measure(f"python-omemo ({name}) ping-pong, 1 device", seconds, ping_pong)


asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 5))
